/** Readiness means the node holds the cluster's ring state: a node with peers waits for gossip. */
import { afterAll, expect, test } from "bun:test";
import { NodeProcess, freePort } from "../support/node-process.ts";
import { eventually } from "../support/cluster.ts";

const nodes: NodeProcess[] = [];
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.destroy()));
});

test("/readyz is 503 not_ready until the node has exchanged gossip with another member, then 200", async () => {
  const ports = [await freePort(), await freePort()];
  const env = {
    RINGLOG_CLUSTER_SECRET: "readiness-secret",
    RINGLOG_INITIAL_MEMBERS: "n1,n2",
    RINGLOG_SEEDS: ports.map((p) => `http://127.0.0.1:${p}`).join(","),
    RINGLOG_GOSSIP_INTERVAL_MS: "200",
  };
  const n1 = await NodeProcess.start({ nodeId: "n1", port: ports[0]!, env, waitReady: false });
  nodes.push(n1);
  await eventually("n1 to listen", async () => (await fetch(`${n1.url}/healthz`).catch(() => null))?.status === 200);
  const deadline = Date.now() + 1_500;
  while (Date.now() < deadline) {
    const res = await fetch(`${n1.url}/readyz`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe("not_ready");
    await Bun.sleep(200);
  }
  nodes.push(await NodeProcess.start({ nodeId: "n2", port: ports[1]!, env }));
  await eventually("n1 to be ready", async () => (await fetch(`${n1.url}/readyz`)).status === 200, 10_000);
}, 30_000);
