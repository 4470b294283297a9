/** The cluster, on real node processes: quorum replication, sloppy quorum and hints, repair. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { liveSiblings } from "../../src/clock/fold.ts";
import { TestCluster, eventually } from "../support/cluster.ts";

const text = (v: Uint8Array | null) => (v === null ? null : new TextDecoder().decode(v));

async function put(url: string, key: string, value: string, query = "", context?: string): Promise<Response> {
  return fetch(`${url}/kv/${key}${query}`, { method: "PUT", body: value, headers: { "content-type": "text/plain", ...(context ? { "x-ringlog-context": context } : {}) } });
}

describe("a 3-node cluster", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await TestCluster.start();
  });
  afterAll(async () => {
    await c?.destroy();
  });

  test("a write through n1 is read through n2 and n3, with a consistency report", async () => {
    const [n1, n2, n3] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
    const w = await put(n1.url, "greeting", "hello");
    expect(w.status).toBe(204);
    expect(w.headers.get("x-ringlog-replicas-answered")!.split(",").length).toBeGreaterThanOrEqual(2);
    for (const n of [n2, n3]) {
      const r = await fetch(`${n.url}/kv/greeting`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe("hello");
      expect(r.headers.get("x-ringlog-replicas-asked")!.split(",").sort()).toEqual(["n1", "n2", "n3"]);
      expect(r.headers.get("x-ringlog-siblings")).toBe("1");
    }
    for (const n of c.nodes) expect(text((await c.replica(n, "greeting")).siblings[0]!.value)).toBe("hello");
  });

  test("r/w/pr/pw out of range get 400", async () => {
    const r = await fetch(`${c.nodes[0]!.url}/kv/x?r=4`);
    expect(r.status).toBe(400);
    expect(((await r.json()) as { code: string }).code).toBe("invalid_request");
    expect((await put(c.nodes[0]!.url, "x", "v", "?w=zero")).status).toBe(400);
  });

  test("with one node killed, w=2 writes succeed and pw=3 fails with 503; on return its replica holds every write and hints drain — also after the hint holder restarted", async () => {
    const [n1, n2, n3] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
    await n3.kill("SIGKILL");
    await c.waitAllUp(["n3"]);

    const keys = Array.from({ length: 40 }, (_, i) => `while-down-${i}`);
    for (const [i, key] of keys.entries()) {
      const coordinator = i % 2 === 0 ? n1 : n2;
      const r = await put(coordinator.url, key, `v${i}`, "?w=2");
      expect(r.status).toBe(204);
    }
    const strict = await put(n1.url, "strict", "v", "?pw=3");
    expect(strict.status).toBe(503);
    const body = (await strict.json()) as { code: string; details: { answered: string[]; asked: string[] } };
    expect(body.code).toBe("quorum_unavailable");
    expect(body.details.answered).not.toContain("n3");

    expect((await c.hintTotal(n1)) + (await c.hintTotal(n2))).toBeGreaterThanOrEqual(keys.length);
    // The holder of half the hints restarts before the owner is back: hints are durable.
    await n1.restart();
    await n3.restart();
    await c.waitAllUp();

    await eventually("hint queues to drain", async () => (await c.hintTotal(n1)) === 0 && (await c.hintTotal(n2)) === 0 && (await c.hintTotal(n3)) === 0);
    for (const [i, key] of keys.entries()) {
      const s = await c.replica(n3, key);
      expect(liveSiblings(s).map((v) => text(v.value))).toEqual([`v${i}`]);
    }
  });

  test("a delete while a replica is down stays deleted on every replica once it is back", async () => {
    const [n1, , n3] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
    expect((await put(n1.url, "doomed", "x", "?w=3")).status).toBe(204);
    await n3.kill("SIGKILL");
    await c.waitAllUp(["n3"]);
    const d = await fetch(`${n1.url}/kv/doomed`, { method: "DELETE" });
    expect(d.status).toBe(204);
    await n3.restart();
    await c.waitAllUp();
    await eventually("hints to drain", async () => (await Promise.all(c.nodes.map((n) => c.hintTotal(n)))).every((t) => t === 0));
    for (const n of c.nodes) expect(liveSiblings(await c.replica(n, "doomed"))).toEqual([]);
    const r = await fetch(`${n3.url}/kv/doomed?r=3`);
    expect(r.status).toBe(404);
    expect(r.headers.get("x-ringlog-context")).not.toBeNull();
  });

  test("two coordinators partitioned apart both accept a write; after healing a read returns both as siblings, and a write with that context leaves one", async () => {
    const [n1, n2, n3] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
    await c.partition("n1", "n2");
    await c.partition("n1", "n3");
    await c.waitAllUp(["n1"]).catch(() => undefined);
    expect((await put(n1.url, "split", "left", "?w=1")).status).toBe(204);
    expect((await put(n2.url, "split", "right", "?w=2")).status).toBe(204);
    await c.heal();
    await c.waitAllUp();

    const read = await eventually("both sides to meet", async () => {
      const r = await fetch(`${n3.url}/kv/split?r=3`);
      return r.status === 300 ? r : undefined;
    });
    const list = (await read.json()) as { siblings: { value: string }[]; context: string };
    expect(list.siblings.map((s) => Buffer.from(s.value, "base64").toString()).sort()).toEqual(["left", "right"]);

    expect((await put(n3.url, "split", "merged", "?w=3", list.context)).status).toBe(204);
    for (const n of c.nodes) {
      const r = await fetch(`${n.url}/kv/split`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe("merged");
    }
  });

  test("interleaved read-modify-write by 4 clients on one key for 20 s keeps siblings ≤ 4", async () => {
    const until = Date.now() + 20_000;
    let maxSiblings = 0;
    let writes = 0;
    await Promise.all(
      [0, 1, 2, 3].map(async (client) => {
        const url = c.nodes[client % c.nodes.length]!.url;
        while (Date.now() < until) {
          const r = await fetch(`${url}/kv/contended`);
          maxSiblings = Math.max(maxSiblings, Number(r.headers.get("x-ringlog-siblings") ?? 0));
          const ctx = r.headers.get("x-ringlog-context") ?? undefined;
          await r.arrayBuffer();
          const w = await put(url, "contended", `c${client}-${writes}`, "", ctx);
          expect(w.status).toBe(204);
          maxSiblings = Math.max(maxSiblings, Number(w.headers.get("x-ringlog-siblings")));
          writes++;
        }
      }),
    );
    expect(writes).toBeGreaterThan(100);
    expect(maxSiblings).toBeGreaterThanOrEqual(1);
    expect(maxSiblings).toBeLessThanOrEqual(4);
  }, 60_000);
});

describe("read repair", () => {
  let c: TestCluster;
  beforeAll(async () => {
    // Hints are held back so only a read can bring the stale replica up to date.
    c = await TestCluster.start({ env: { RINGLOG_HINT_INTERVAL_MS: "600000" } });
  });
  afterAll(async () => {
    await c?.destroy();
  });

  test("a replica made stale is repaired by one read; the next read repairs nothing", async () => {
    const [n1, , n3] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
    await c.partition("n3", "n1");
    await c.partition("n3", "n2");
    expect((await put(n1.url, "stale", "fresh", "?w=2")).status).toBe(204);
    expect(liveSiblings(await c.replica(n3, "stale"))).toEqual([]);
    await c.heal();
    await c.waitAllUp();

    const before = (await c.counters(n1)).readRepairs!;
    const r1 = await fetch(`${n1.url}/kv/stale?r=3`);
    expect(await r1.text()).toBe("fresh");
    await eventually("n3 to be repaired", async () => liveSiblings(await c.replica(n3, "stale")).length === 1);
    expect((await c.counters(n1)).readRepairs).toBe(before + 1);
    expect(text(liveSiblings(await c.replica(n3, "stale"))[0]!.value)).toBe("fresh");

    const r2 = await fetch(`${n1.url}/kv/stale?r=3`);
    expect(await r2.text()).toBe("fresh");
    await Bun.sleep(300);
    expect((await c.counters(n1)).readRepairs).toBe(before + 1);
  });
});
