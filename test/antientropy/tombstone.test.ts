/** Tombstone GC: collected only once every replica is known to hold the tombstone. */
import { expect, test } from "bun:test";
import { isEmpty, liveSiblings } from "../../src/clock/fold.ts";
import { TestCluster, eventually } from "../support/cluster.ts";

test("a delete with a replica down is not collected until that replica is back and holds it; then it is collected everywhere and nothing resurrects", async () => {
  const c = await TestCluster.start({ env: { RINGLOG_TOMBSTONE_GRACE_MS: "300", RINGLOG_AAE_INTERVAL_MS: "10" } });
  try {
    const [n1, n2, n3] = ["n1", "n2", "n3"].map((id) => c.node(id)) as [ReturnType<typeof c.node>, ReturnType<typeof c.node>, ReturnType<typeof c.node>];
    expect((await fetch(`${n1.url}/kv/gc/doomed?w=3`, { method: "PUT", body: "old value" })).status).toBe(204);
    await n3.kill("SIGKILL");
    await c.waitAllUp(["n3"]);
    expect((await fetch(`${n1.url}/kv/gc/doomed`, { method: "DELETE" })).status).toBe(204);

    // Several anti-entropy rounds pass while n3 is down: the tombstone must stay.
    const rounds = (await c.aae(n1)).rounds;
    await eventually("a few anti-entropy rounds", async () => (await c.aae(n1)).rounds >= rounds + 3, 30_000);
    for (const n of [n1, n2]) {
      const s = await c.replica(n, "gc/doomed");
      expect(s.siblings.length).toBe(1);
      expect(liveSiblings(s)).toEqual([]);
    }
    expect((await c.aae(n1)).tombstonesCollected).toBe(0);

    await n3.restart();
    await c.waitAllUp();
    await eventually("the tombstone to be collected on every replica", async () => {
      const states = await Promise.all([n1, n2, n3].map((n) => c.replica(n, "gc/doomed")));
      return states.every(isEmpty);
    }, 60_000);
    expect((await c.aae(n1)).tombstonesCollected).toBeGreaterThan(0);

    // Nothing brings the old value back: not reads, not further rounds of anti-entropy.
    const after = (await c.aae(n1)).rounds;
    await eventually("two more rounds", async () => (await c.aae(n1)).rounds >= after + 2, 30_000);
    for (const n of [n1, n2, n3]) {
      expect((await fetch(`${n.url}/kv/gc/doomed?r=3`)).status).toBe(404);
      expect(liveSiblings(await c.replica(n, "gc/doomed"))).toEqual([]);
    }
    expect((await fetch(`${n2.url}/kv/gc/doomed`, { method: "PUT", body: "new life" })).status).toBe(204);
    expect(await (await fetch(`${n3.url}/kv/gc/doomed`)).text()).toBe("new life");
  } finally {
    await c.destroy();
  }
}, 180_000);

test("a vnode's states are scanned for tombstones again only after its root changed or a tombstone it holds came due", async () => {
  const c = await TestCluster.start({ env: { RINGLOG_TOMBSTONE_GRACE_MS: "1500", RINGLOG_AAE_INTERVAL_MS: "10" } });
  try {
    const n1 = c.node("n1");
    const roundsFrom = async (n: number) => {
      const from = (await c.aae(n1)).rounds;
      await eventually(`${n} anti-entropy rounds`, async () => (await c.aae(n1)).rounds >= from + n, 30_000);
      return c.aae(n1);
    };
    for (let i = 0; i < 20; i++) expect((await fetch(`${n1.url}/kv/scan/k${i}?w=3`, { method: "PUT", body: `v${i}` })).status).toBe(204);
    const settled = await roundsFrom(2);
    expect(settled.tombstoneScans).toBeGreaterThan(0);
    // Nothing changes and no tombstone exists: further rounds scan nothing.
    expect((await roundsFrom(3)).tombstoneScans).toBe(settled.tombstoneScans);

    expect((await fetch(`${n1.url}/kv/scan/k0?w=3`, { method: "DELETE" })).status).toBe(204);
    await eventually("the tombstone to be collected", async () => (await c.aae(n1)).tombstonesCollected > 0, 30_000);
    const collected = await roundsFrom(2);
    // The delete changed one root (a pass that finds the tombstone still in its grace period), the
    // tombstone came due (a pass that collects it), its removal changed the root again (a pass).
    expect(collected.tombstoneScans - settled.tombstoneScans).toBeGreaterThanOrEqual(2);
    expect(collected.tombstoneScans - settled.tombstoneScans).toBeLessThanOrEqual(4);
    expect((await roundsFrom(3)).tombstoneScans).toBe(collected.tombstoneScans);
    expect((await fetch(`${n1.url}/kv/scan/k0?r=3`)).status).toBe(404);
  } finally {
    await c.destroy();
  }
}, 120_000);
