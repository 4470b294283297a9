/**
 * What a data folder is: which node it belongs to, its partition count, and the actor id
 * its writes are stamped with. The actor is minted when the folder is created, so a node
 * whose data was wiped comes back as a new actor and can never reuse an old dot.
 */
import type { Database } from "bun:sqlite";
import { readMeta, writeMeta } from "./meta.ts";

export interface Identity {
  nodeId: string;
  actor: string;
  partitions: number;
}

export class IdentityMismatchError extends Error {}

export function loadIdentity(db: Database, nodeId: string, partitions: number, random: () => number): Identity {
  const get = (name: string) => readMeta(db, name);
  const set = (name: string, value: string) => writeMeta(db, name, value);

  const storedNode = get("node_id");
  if (storedNode === undefined) {
    const epoch = Math.floor(random() * 36 ** 6).toString(36).padStart(6, "0");
    db.transaction(() => {
      set("node_id", nodeId);
      set("partitions", String(partitions));
      set("actor", `${nodeId}.${epoch}`);
    })();
  } else if (storedNode !== nodeId) {
    throw new IdentityMismatchError(`data folder belongs to node "${storedNode}", not "${nodeId}"`);
  }
  const storedQ = Number(get("partitions"));
  if (storedQ !== partitions) {
    throw new IdentityMismatchError(
      `data folder was created with ${storedQ} partitions; the setting says ${partitions}. The partition count is fixed for a cluster's life.`,
    );
  }
  return { nodeId, actor: get("actor")!, partitions };
}
