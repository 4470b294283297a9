/**
 * The join/leave admin surface on real processes, through the real command line: refusals
 * (wrong secret, a node with data, nothing staged), then a one-node cluster growing to two
 * with `ringlog join --commit` and `ringlog status --watch` showing it through to the flip.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { liveSiblings } from "../../src/clock/fold.ts";
import { NodeProcess } from "../support/node-process.ts";
import { eventually, readReplica } from "../support/cluster.ts";

const BIN = join(import.meta.dir, "..", "..", "bin", "ringlog");
const secret = randomBytes(12).toString("hex");
const env = { RINGLOG_CLUSTER_SECRET: secret, RINGLOG_GOSSIP_INTERVAL_MS: "300", RINGLOG_HANDOFF_INTERVAL_MS: "200" };
let a: NodeProcess;
let b: NodeProcess;
let withData: NodeProcess;

async function cli(args: string[], url: string, extraEnv: Record<string, string> = {}) {
  const proc = Bun.spawn([BIN, "--url", url, ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, RINGLOG_URL: "", RINGLOG_API_TOKEN: "", RINGLOG_CLUSTER_SECRET: secret, ...extraEnv },
    timeout: 90_000,
    killSignal: "SIGKILL",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { out, err, code };
}

async function replica(n: NodeProcess, key: string): Promise<string[]> {
  return liveSiblings(await readReplica(n, secret, key)).map((v) => new TextDecoder().decode(v.value!));
}

beforeAll(async () => {
  [a, b, withData] = await Promise.all([
    NodeProcess.start({ nodeId: "a", env }),
    NodeProcess.start({ nodeId: "b", env }),
    NodeProcess.start({ nodeId: "c", env }),
  ]);
  for (let i = 0; i < 300; i++) expect((await fetch(`${a.url}/kv/before/${i}`, { method: "PUT", body: `v${i}` })).status).toBe(204);
  expect((await fetch(`${withData.url}/kv/mine`, { method: "PUT", body: "x" })).status).toBe(204);
}, 60_000);

afterAll(async () => {
  await Promise.all([a, b, withData].map((n) => n?.destroy()));
});

describe("admin routes and CLI", () => {
  test("refusals: no or wrong secret 401, a node holding data cannot join, nothing staged cannot be committed", async () => {
    expect((await fetch(`${a.url}/admin/plan`)).status).toBe(401);
    expect((await fetch(`${a.url}/admin/commit`, { method: "POST", headers: { "x-ringlog-secret": "wrong" } })).status).toBe(401);

    const refused = await cli(["join", a.url], withData.url);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain("cluster_change_refused");
    expect(refused.err).toContain("holds data");

    const nothing = await fetch(`${a.url}/admin/commit`, { method: "POST", headers: { "x-ringlog-secret": secret } });
    expect(nothing.status).toBe(409);
    expect(((await nothing.json()) as { code: string }).code).toBe("cluster_change_refused");

    const bad = await fetch(`${b.url}/admin/join`, { method: "POST", headers: { "x-ringlog-secret": secret, "content-type": "application/json" }, body: JSON.stringify({ seed: "not a url" }) });
    expect(bad.status).toBe(400);

    const leaveAlone = await cli(["leave"], a.url);
    expect(leaveAlone.code).toBe(2);
    expect(leaveAlone.err).toContain("last member");
  });

  test("ringlog join --commit grows a one-node cluster to two; status --watch follows it to the flip; the data moved", async () => {
    const joined = await cli(["join", a.url, "--commit"], b.url);
    expect(joined.code).toBe(0);
    expect(joined.out).toContain("committed, being carried out");
    expect(joined.out).toMatch(/vnodes per node after: a=32 b=32/);

    const watched = await cli(["status", "--watch", "--timeout", "60"], a.url);
    expect(watched.code).toBe(0);
    expect(watched.out).toContain("member  status  vnodes  address");

    await eventually("both nodes to flip", async () => {
      const views = await Promise.all([a, b].map(async (n) => (await (await fetch(`${n.url}/cluster`)).json()) as { ring: { owners: string[] }; handoff?: unknown }));
      return views.every((v) => v.handoff === undefined && new Set(v.ring.owners).size === 2);
    });
    const status = await cli(["status"], b.url);
    expect(status.out).toMatch(/^a +up +32 /m);
    expect(status.out).toMatch(/^b +up +32 /m);

    // N grew from 1 to 2, so b received every vnode: every key written before is on b's own replica.
    const missing: string[] = [];
    for (let i = 0; i < 300; i++) if ((await replica(b, `before/${i}`)).join() !== `v${i}`) missing.push(`before/${i}`);
    expect(missing).toEqual([]);
  }, 120_000);
});
