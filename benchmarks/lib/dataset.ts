/**
 * Builds nodes' data folders directly with the storage layer (as src/node.ts opens them),
 * so a benchmark can start a cluster on a million keys without writing them over HTTP.
 * Every node gets the same replicated versions; `missingOn` lists keys one node lacks.
 */
import { randomBytes } from "node:crypto";
import { Database } from "bun:sqlite";
import { SingleBar, Presets } from "cli-progress";
import { EMPTY_STATE, applyEvent } from "../../src/clock/fold.ts";
import { emptyContext } from "../../src/clock/context.ts";
import { loadSettings } from "../../src/config/settings.ts";
import { databasePath, openDatabase } from "../../src/log/database.ts";
import { loadIdentity } from "../../src/log/identity.ts";
import type { LogEntry } from "../../src/log/entry.ts";
import { LogStore } from "../../src/log/store.ts";
import { vnodeOf } from "../../src/ring/partition.ts";

export interface DatasetOptions {
  dirs: string[];
  nodeIds: string[];
  keys: number;
  keyPrefix: string;
  valueBytes: number;
  partitions: number;
  /** Index of the node that lacks the keys in `missing`. */
  lacking?: number;
  missing?: Set<number>;
}

const BATCH = 5_000;

export async function buildDataset(o: DatasetOptions): Promise<{ ms: number }> {
  const started = performance.now();
  const settings = loadSettings({ dataDir: o.dirs[0]!, partitions: o.partitions }, {});
  const stores = o.dirs.map((dir, i) => {
    const db = openDatabase(dir, settings);
    loadIdentity(db, o.nodeIds[i]!, o.partitions, Math.random);
    return new LogStore(db, { groupCommitMaxBatch: BATCH, snapshotEvery: settings.snapshotEvery, snapshotTailRatio: settings.snapshotTailRatio, projectionFlushKeys: settings.projectionFlushKeys, projectionFlushMs: settings.projectionFlushMs, busyWaitMs: settings.storageBusyWaitMs, now: Date.now });
  });
  const value = randomBytes(o.valueBytes);
  const bar = new SingleBar({ format: "  building {bar} {value}/{total} keys × {nodes} nodes", hideCursor: true }, Presets.legacy);
  bar.start(o.keys, 0, { nodes: o.dirs.length });
  for (let from = 0; from < o.keys; from += BATCH) {
    const byVnode = new Map<number, { i: number; entry: LogEntry }[]>();
    for (let i = from; i < Math.min(o.keys, from + BATCH); i++) {
      const key = `${o.keyPrefix}${i}`;
      const state = applyEvent(EMPTY_STATE, { key, dot: { actor: "bench.000000", counter: 1 }, context: emptyContext(), value, contentType: "application/octet-stream", ts: Date.now() });
      const v = vnodeOf(key, o.partitions);
      const list = byVnode.get(v) ?? [];
      list.push({ i, entry: { kind: "state", key, state } });
      byVnode.set(v, list);
    }
    await Promise.all(
      stores.flatMap((store, n) =>
        [...byVnode].map(([v, list]) => store.applyEntries(v, list.filter((x) => n !== o.lacking || !o.missing?.has(x.i)).map((x) => x.entry))),
      ),
    );
    bar.update(Math.min(o.keys, from + BATCH));
  }
  bar.stop();
  for (const s of stores) {
    await s.settled();
    await s.close();
  }
  return { ms: performance.now() - started };
}

/** Logical size of one replica: key and stored state bytes of every key. */
export function replicaBytes(dir: string): { keys: number; bytes: number } {
  const db = new Database(databasePath(dir), { readonly: true });
  try {
    const r = db.query<{ n: number; b: number }, []>("SELECT COUNT(*) AS n, SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(state)) AS b FROM projection").get()!;
    return { keys: r.n, bytes: r.b };
  } finally {
    db.close();
  }
}
