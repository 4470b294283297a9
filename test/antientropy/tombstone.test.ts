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

test("each vnode's states are searched for tombstones once; deletes after that are tracked from the changes and still collected", async () => {
  const c = await TestCluster.start({ env: { RINGLOG_TOMBSTONE_GRACE_MS: "1500", RINGLOG_AAE_INTERVAL_MS: "10" } });
  try {
    const n1 = c.node("n1");
    const roundsFrom = async (n: number) => {
      const from = (await c.aae(n1)).rounds;
      await eventually(`${n} anti-entropy rounds`, async () => (await c.aae(n1)).rounds >= from + n, 30_000);
      return c.aae(n1);
    };
    const put = async (i: number) => expect((await fetch(`${n1.url}/kv/scan/k${i}?w=3`, { method: "PUT", body: `v${i}` })).status).toBe(204);
    for (let i = 0; i < 20; i++) await put(i);
    const settled = await roundsFrom(2);
    expect(settled.tombstoneScans).toBeGreaterThan(0);
    expect(settled.tombstoneScans).toBeLessThanOrEqual(settled.vnodes.length);
    // Writes, deletes, their collection and further rounds: no vnode is searched again.
    for (let i = 20; i < 30; i++) await put(i);
    for (const i of [0, 1, 2]) expect((await fetch(`${n1.url}/kv/scan/k${i}?w=3`, { method: "DELETE" })).status).toBe(204);
    await eventually("the tombstones to be collected", async () => (await c.aae(n1)).tombstonesCollected >= 3, 30_000);
    const after = await roundsFrom(2);
    expect(after.tombstoneScans).toBe(settled.tombstoneScans);
    for (const n of ["n1", "n2", "n3"].map((id) => c.node(id))) {
      for (const i of [0, 1, 2]) expect(isEmpty(await c.replica(n, `scan/k${i}`))).toBe(true);
      expect(await (await fetch(`${n.url}/kv/scan/k3`)).text()).toBe("v3");
    }
    // A tombstone that a later write replaced is no longer one: it stays as the live value.
    expect((await fetch(`${n1.url}/kv/scan/k4?w=3`, { method: "DELETE" })).status).toBe(204);
    await put(4);
    await roundsFrom(3);
    expect(await (await fetch(`${n1.url}/kv/scan/k4?r=3`)).text()).toBe("v4");
  } finally {
    await c.destroy();
  }
}, 120_000);

test("after a restart the first pass finds tombstones written before it, a bounded step at a time, and they are collected", async () => {
  const c = await TestCluster.start({ env: { RINGLOG_PARTITIONS: "4", RINGLOG_TOMBSTONE_GRACE_MS: "300", RINGLOG_AAE_INTERVAL_MS: "10" } });
  try {
    const [n1, n3] = [c.node("n1"), c.node("n3")];
    // About 650 keys per vnode: more than one step of the first pass (512 states).
    const keys = Array.from({ length: 2600 }, (_, i) => `many/k${i}`);
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(keys.slice(i, i + 100).map(async (k) => expect((await fetch(`${n1.url}/kv/${k}?w=3`, { method: "PUT", body: "v" })).status).toBe(204)));
    }
    await n3.kill("SIGKILL");
    await c.waitAllUp(["n3"]);
    const doomed = keys.filter((_, i) => i % 500 === 7);
    for (const k of doomed) expect((await fetch(`${n1.url}/kv/${k}`, { method: "DELETE" })).status).toBe(204);
    await n1.restart();
    await n3.restart();
    await c.waitAllUp();
    await eventually("the tombstones to be collected on every replica", async () => {
      for (const n of ["n1", "n2", "n3"].map((id) => c.node(id))) {
        for (const k of doomed) if (!isEmpty(await c.replica(n, k, 4))) return false;
      }
      return true;
    }, 60_000);
    const aae = await c.aae(n1);
    expect(aae.tombstoneScans).toBe(4);
    expect(aae.tombstonesCollected).toBe(doomed.length);
    for (const k of [keys[0]!, keys[8]!, keys[2599]!]) expect(await (await fetch(`${n1.url}/kv/${k}?r=3`)).text()).toBe("v");
  } finally {
    await c.destroy();
  }
}, 180_000);
