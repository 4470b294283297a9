/**
 * Join a 4th node under continuous writes, then make another node leave: the fault checker
 * finds no lost acknowledged write, every transfer finishes, ownership ends balanced, and
 * the node that left can be switched off without losing anything.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RinglogAdmin } from "../../src/sdk/admin.ts";
import { liveSiblings } from "../../src/clock/fold.ts";
import { TestCluster, eventually } from "../support/cluster.ts";
import { check, formatViolation } from "../faults/checker.ts";
import { WorkloadClient } from "../faults/client.ts";
import { converge, seeded } from "../faults/harness.ts";
import type { Op } from "../faults/history.ts";

const PRELOADED = 3_000;
const SEED = 5;

let cluster: TestCluster;
const admin = (id: string) => new RinglogAdmin({ baseUrl: cluster.node(id).url, secret: cluster.secret });
const log = (line: string) => process.stdout.write(`  [join-leave] ${line}\n`);

async function flipped(expectOwners: string[]): Promise<void> {
  await eventually(
    `every node to flip to owners ${expectOwners.join(",")}`,
    async () => {
      const rings = await Promise.all(cluster.nodes.map((n) => cluster.ring(n)));
      return rings.every((r) => !r.handingOff && [...new Set(r.owners)].sort().join() === expectOwners.join() && r.epoch === rings[0]!.epoch);
    },
    90_000,
  );
}

beforeAll(async () => {
  // Anti-entropy is off, so only the handoff can have put the data on the nodes that gained vnodes.
  cluster = await TestCluster.start({ env: { RINGLOG_HANDOFF_INTERVAL_MS: "200", RINGLOG_HANDOFF_BATCH: "200", RINGLOG_AAE_INTERVAL_MS: "0" } });
  // Data the transfers have to carry: a snapshot, a log tail, and later what arrives meanwhile.
  const url = cluster.node("n1").url;
  for (let i = 0; i < PRELOADED; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, (_, j) => fetch(`${url}/kv/pre/${i + j}?w=all`, { method: "PUT", body: `v${i + j}` }).then((r) => expect(r.status).toBe(204))),
    );
  }
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
});

describe("join and leave under load", () => {
  test(
    "a 4th node joins and n2 leaves while clients write: no lost write, all transfers done, ownership balanced",
    async () => {
      await cluster.addNode("n4");
      const keys = Array.from({ length: 40 }, (_, i) => `jl/k${i}`);
      const history: Op[] = [];
      let joined = false;
      let nextId = 0;
      const startedAt = Date.now();
      const clients = Array.from(
        { length: 4 },
        (_, p) =>
          new WorkloadClient({
            process: p,
            keys,
            // n4 takes client traffic only once it is a member; n2 keeps taking it until it is switched off.
            nodes: () => cluster.nodes.filter((n) => n.nodeId !== "n4" || joined).map((n) => ({ id: n.nodeId, url: n.url })),
            rng: seeded(SEED * 1000 + p),
            startedAt,
            blindRatio: 0,
            timeoutMs: 4_000,
            record: (op) => history.push(op),
            nextId: () => nextId++,
          }),
      );
      const workload = Promise.all(clients.map((c) => c.runUntil(Date.now() + 600_000).then(() => undefined)));

      await Bun.sleep(1_500);
      const staged = await admin("n4").join(cluster.node("n1").url);
      expect(staged.committed).toBe(false);
      expect(staged.staged.join).toEqual(["n4"]);
      expect(staged.transfers.length).toBeGreaterThan(0);
      const committed = await admin("n1").commit();
      expect(committed.committed).toBe(true);
      log(`join committed: ${committed.transfers.length} transfers, target ${JSON.stringify(committed.owners.target)}`);
      joined = true;
      await flipped(["n1", "n2", "n3", "n4"]);
      log(`join done after ${Date.now() - startedAt} ms`);

      await Bun.sleep(1_000);
      const leave = await admin("n3").leave("n2");
      expect(leave.staged.leave).toEqual(["n2"]);
      const committedLeave = await admin("n3").commit();
      log(`leave committed: ${committedLeave.transfers.length} transfers, target ${JSON.stringify(committedLeave.owners.target)}`);
      await flipped(["n1", "n3", "n4"]);
      log(`leave done after ${Date.now() - startedAt} ms`);
      await Bun.sleep(1_000);
      for (const c of clients) c.stop();
      await workload;

      // Once n2 has left, it can be switched off: everything it held lives on elsewhere.
      await cluster.removeNode("n2");
      const ring = await cluster.ring(cluster.node("n1"));
      expect(ring.removed).toEqual(["n2"]);
      const counts = new Map<string, number>();
      for (const o of ring.owners) counts.set(o, (counts.get(o) ?? 0) + 1);
      expect([...counts.keys()].sort()).toEqual(["n1", "n3", "n4"]);
      for (const c of counts.values()) expect(c === 21 || c === 22).toBe(true);
      await eventually("n2 to disappear from the members", async () => (await cluster.members(cluster.node("n1"))).every((m) => m.id !== "n2"), 10_000);

      const { final, replicas } = await converge(cluster, keys);
      const violations = check({ history, final, replicas, faultFree: false, maxSiblings: 8 });
      const acked = history.filter((op) => op.type !== "read" && op.outcome === "ok").length;
      log(`${history.length} operations, ${acked} acked writes, ${violations.length} violations`);
      for (const v of violations.slice(0, 5)) log(formatViolation(v));
      expect(acked).toBeGreaterThan(100);
      expect(violations).toEqual([]);

      // Every preloaded key is on each remaining replica's own copy (read directly, no quorum).
      const missing: string[] = [];
      for (const node of cluster.nodes) {
        for (let i = 0; i < PRELOADED; i += 100) {
          const got = await Promise.all(
            Array.from({ length: 100 }, async (_, j) => {
              const state = await cluster.replica(node, `pre/${i + j}`);
              const values = liveSiblings(state).map((v) => new TextDecoder().decode(v.value!));
              return values.length === 1 && values[0] === `v${i + j}` ? null : `${node.nodeId}:pre/${i + j}`;
            }),
          );
          missing.push(...got.filter((x): x is string => x !== null));
        }
      }
      expect(missing).toEqual([]);
    },
    300_000,
  );
});
