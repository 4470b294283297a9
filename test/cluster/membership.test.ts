/** Gossip, failure detection and transport behaviour on real node processes. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestCluster, eventually } from "../support/cluster.ts";

describe("membership and transport", () => {
  let c: TestCluster;
  beforeAll(async () => {
    // Production defaults for detection, so the timing bars are measured as shipped.
    c = await TestCluster.start({ env: { RINGLOG_GOSSIP_INTERVAL_MS: "1000", RINGLOG_DOWN_AFTER_MS: "3000" } });
  });
  afterAll(async () => {
    await c?.destroy();
  });

  test("/cluster shows every member up, the ring epoch and a balanced ownership", async () => {
    const body = (await (await fetch(`${c.nodes[0]!.url}/cluster`)).json()) as {
      members: { id: string; status: string }[];
      ring: { epoch: number; partitions: number; owners: string[] };
    };
    expect(body.members.map((m) => [m.id, m.status])).toEqual([["n1", "up"], ["n2", "up"], ["n3", "up"]]);
    expect(body.ring.epoch).toBe(1);
    expect(body.ring.owners.length).toBe(64);
    const counts = ["n1", "n2", "n3"].map((id) => body.ring.owners.filter((o) => o === id).length);
    for (const n of counts) expect([21, 22]).toContain(n);
  });

  test("a killed node is marked down within 5 s, and up within 5 s of its return", async () => {
    const n2 = c.node("n2");
    await n2.kill("SIGKILL");
    const killedAt = Date.now();
    await eventually("n2 down on n1 and n3", async () => {
      const views = await Promise.all([c.members(c.node("n1")), c.members(c.node("n3"))]);
      return views.every((v) => v.find((m) => m.id === "n2")?.status === "down");
    }, 10_000);
    expect(Date.now() - killedAt).toBeLessThan(5_000);

    await n2.restart();
    const backAt = Date.now();
    await eventually("n2 up on n1 and n3", async () => {
      const views = await Promise.all([c.members(c.node("n1")), c.members(c.node("n3"))]);
      return views.every((v) => v.find((m) => m.id === "n2")?.status === "up");
    }, 10_000);
    expect(Date.now() - backAt).toBeLessThan(5_000);
  }, 60_000);

  test("internal routes refuse a missing or wrong cluster secret with 401", async () => {
    const url = c.nodes[0]!.url;
    for (const headers of [{}, { "x-ringlog-secret": "wrong" }] as Record<string, string>[]) {
      for (const route of ["/internal/read", "/internal/apply", "/internal/gossip"]) {
        const r = await fetch(url + route, { method: "POST", headers: { "content-type": "application/msgpack", ...headers }, body: new Uint8Array([0x90]) });
        expect(r.status).toBe(401);
        expect(((await r.json()) as { code: string }).code).toBe("unauthorized");
      }
    }
  });

  test("under concurrent load, replica traffic is coalesced: far fewer internal calls than writes", async () => {
    const url = c.nodes[0]!.url;
    const before = await c.counters(c.nodes[0]!);
    const writes = 3000;
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < writes) {
          const i = next++;
          const r = await fetch(`${url}/kv/load/${i}`, { method: "PUT", body: `v${i}` });
          expect(r.status).toBe(204);
        }
      }),
    );
    const after = await c.counters(c.nodes[0]!);
    const calls = after.applyCalls! - before.applyCalls!;
    // Each write goes to the two other replicas; without coalescing that is 2 calls per write.
    expect(calls).toBeLessThan(writes / 4);
    expect(after.eventsAppended! - before.eventsAppended!).toBeGreaterThanOrEqual(writes);
  }, 60_000);
});
