/** Starts Ringlog nodes as real processes, alone or as a cluster, and watches their membership. */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { type Fsync, WORKLOAD } from "./options.ts";
import { type Child, type Procs, freePort, logTail, running, waitHttpOk } from "./procs.ts";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");

export interface RinglogNode {
  id: string;
  url: string;
  child: Child;
}

/** Starts one node on a fresh data folder and waits for /readyz. */
export async function startNode(procs: Procs, id: string, env: Record<string, string>, port?: number): Promise<RinglogNode> {
  const data = procs.tempDir(id);
  const p = port ?? (await freePort());
  const child = procs.spawn(id, [process.execPath, CLI, "node", "--data", data, "--port", String(p), "--node-id", id], {
    logDir: data,
    env: { RINGLOG_LOG_LEVEL: "warn", ...env },
  });
  const url = `http://127.0.0.1:${p}`;
  await waitHttpOk(`${url}/readyz`, child);
  return { id, url, child };
}

/** Starts n1..n<size> as one cluster (random secret) and waits until each sees every member up. */
export async function startCluster(procs: Procs, size: number, env: Record<string, string>): Promise<RinglogNode[]> {
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const ports = await Promise.all(ids.map(() => freePort()));
  const clusterEnv = {
    ...env,
    RINGLOG_CLUSTER_SECRET: randomBytes(16).toString("hex"),
    RINGLOG_SEEDS: ports.map((p) => `http://127.0.0.1:${p}`).join(","),
    RINGLOG_INITIAL_MEMBERS: ids.join(","),
  };
  const nodes = await Promise.all(ids.map((id, i) => startNode(procs, id, clusterEnv, ports[i])));
  await waitMembers(nodes, Object.fromEntries(ids.map((id) => [id, "up"])));
  return nodes;
}

type Status = "up" | "down";

async function members(node: RinglogNode): Promise<Record<string, Status>> {
  const r = await fetch(`${node.url}/cluster`, { signal: AbortSignal.timeout(2000) });
  const body = (await r.json()) as { members: { id: string; status: Status }[] };
  return Object.fromEntries(body.members.map((m) => [m.id, m.status]));
}

/**
 * Waits until every node in `observers` reports exactly the `expected` members with those
 * statuses; returns how long that took, in milliseconds.
 */
export async function waitMembers(observers: RinglogNode[], expected: Record<string, Status>, timeoutMs = 20_000): Promise<number> {
  const start = Date.now();
  const want = JSON.stringify(Object.entries(expected).sort());
  let last = "";
  while (Date.now() - start < timeoutMs) {
    for (const n of observers) if (!running(n.child)) throw new Error(`${n.id} exited:\n${logTail(n.child)}`);
    const views = await Promise.all(observers.map((n) => members(n).catch((err: Error) => ({ error: err.message }))));
    last = JSON.stringify(views);
    if (views.every((v) => JSON.stringify(Object.entries(v).sort()) === want)) return Date.now() - start;
    await Bun.sleep(100);
  }
  throw new Error(`membership did not settle to ${want} within ${timeoutMs} ms; last views: ${last}`);
}

/** The environment every benchmarked node gets, on top of its cluster settings. */
export function benchEnv(fsync: Fsync): Record<string, string> {
  return { RINGLOG_FSYNC: fsync, RINGLOG_RESOLVERS: WORKLOAD.resolvers };
}

async function debugJson<T>(node: RinglogNode, path: string): Promise<T> {
  const r = await fetch(`${node.url}${path}`, { signal: AbortSignal.timeout(5000) });
  return (await r.json()) as T;
}

/** Total hints a node holds for peers (GET /debug/hints). */
export async function hintTotal(node: RinglogNode): Promise<number> {
  return (await debugJson<{ total: number }>(node, "/debug/hints")).total;
}

/** Vnode snapshots the node has taken since it started (GET /debug/counters). */
export async function snapshotsTaken(node: RinglogNode): Promise<number> {
  return (await debugJson<{ snapshots: number }>(node, "/debug/counters")).snapshots;
}

/**
 * Runs a phase and counts the snapshots each node took during it: a snapshot and the log
 * compaction after it cost a node CPU and checkpoint I/O, so a phase that met many of them
 * was measured on busier nodes.
 */
export async function countingSnapshots<T>(nodes: RinglogNode[], phase: () => Promise<T>): Promise<[T, string]> {
  const before = await Promise.all(nodes.map(snapshotsTaken));
  const result = await phase();
  const after = await Promise.all(nodes.map(snapshotsTaken));
  return [result, nodes.map((n, i) => `${n.id} ${after[i]! - before[i]!}`).join(", ")];
}
