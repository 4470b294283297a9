/**
 * A sender dies in the middle of a handoff: the vnode's other current primaries take its
 * transfers over, every transfer finishes, ownership flips, and the joining node holds all
 * the data of the vnodes it now replicates.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { liveSiblings } from "../../src/clock/fold.ts";
import { vnodeOf } from "../../src/ring/partition.ts";
import { preferenceList } from "../../src/ring/ring.ts";
import { RinglogAdmin } from "../../src/sdk/admin.ts";
import { TestCluster, eventually } from "../support/cluster.ts";

const KEYS = 2_000;
let cluster: TestCluster;

beforeAll(async () => {
  // Small batches and one transfer at a time per sender, so n1 is killed with transfers left.
  cluster = await TestCluster.start({ env: { RINGLOG_HANDOFF_INTERVAL_MS: "100", RINGLOG_HANDOFF_BATCH: "20", RINGLOG_HANDOFF_CONCURRENCY: "1", RINGLOG_AAE_INTERVAL_MS: "0" } });
  const url = cluster.node("n2").url;
  for (let i = 0; i < KEYS; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => fetch(`${url}/kv/f/${i + j}?w=all`, { method: "PUT", body: `v${i + j}` }).then((r) => expect(r.status).toBe(204))));
  }
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
});

test("transfers whose sender was killed are taken over; the flip happens and the new node has every key it replicates", async () => {
  await cluster.addNode("n4");
  // n1's calls to n4 are slowed, so n1 is still in the middle of its transfers when it dies.
  await cluster.setFaults("n1", [{ peer: "n4", action: "delay", delayMs: 300 }]);
  await new RinglogAdmin({ baseUrl: cluster.node("n4").url, secret: cluster.secret }).join(cluster.node("n2").url);
  const plan = await new RinglogAdmin({ baseUrl: cluster.node("n2").url, secret: cluster.secret }).commit();
  expect(plan.transfers.some((t) => t.from === "n1")).toBe(true);
  await eventually("n1 to be sending", async () => {
    const c = (await (await fetch(`${cluster.node("n1").url}/cluster`)).json()) as { handoff?: { transfers: { status: string }[] } };
    return c.handoff?.transfers.some((t) => t.status === "running");
  });
  await cluster.node("n1").kill();

  await eventually(
    "the survivors to flip without n1",
    async () => {
      const rings = await Promise.all(["n2", "n3", "n4"].map((id) => cluster.ring(cluster.node(id))));
      return rings.every((r) => !r.handingOff && r.owners.includes("n4"));
    },
    60_000,
  );

  const ring = await cluster.ring(cluster.node("n4"));
  const missing: string[] = [];
  for (let i = 0; i < KEYS; i++) {
    const key = `f/${i}`;
    if (!preferenceList(ring, vnodeOf(key, 64), 3).primaries.includes("n4")) continue;
    const values = liveSiblings(await cluster.replica(cluster.node("n4"), key)).map((v) => new TextDecoder().decode(v.value!));
    if (values.join() !== `v${i}`) missing.push(key);
  }
  expect(missing).toEqual([]);

  // n1 comes back and learns the new ring.
  await cluster.node("n1").restart();
  await eventually("n1 to adopt the flipped ring", async () => (await cluster.ring(cluster.node("n1"))).owners.includes("n4"), 20_000);
}, 120_000);
