/**
 * The Jepsen-style harness: concurrent clients record a history against a real cluster while
 * a nemesis plays its fault; then the cluster is healed, brought to convergence, and the
 * checker judges the history against the final state of every replica.
 */
import { createHash } from "node:crypto";
import { encodeState, liveSiblings } from "../../src/clock/fold.ts";
import { vnodeOf } from "../../src/ring/partition.ts";
import { preferenceList } from "../../src/ring/ring.ts";
import { type TestCluster, eventually } from "../support/cluster.ts";
import { type CheckInput, type Violation, check } from "./checker.ts";
import { WorkloadClient } from "./client.ts";
import type { Op } from "./history.ts";
import type { Nemesis } from "./nemesis.ts";

/** Mulberry32: a small seeded generator, so a seed replays the same plan and choices. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface PhaseOptions {
  name: string;
  nemesis?: Nemesis;
  seed: number;
  clients: number;
  keys: number;
  /** Workload before, during and after the fault. */
  quietMs: number;
  faultMs: number;
  blindRatio: number;
  log?: (line: string) => void;
}

export interface PhaseResult {
  name: string;
  seed: number;
  plan: string[];
  history: Op[];
  violations: Violation[];
  ops: number;
  ackedWrites: number;
}

/** The state digest of every primary of the key (under the first node's ring): what must converge. */
async function digestOf(cluster: TestCluster, key: string): Promise<Map<string, string>> {
  const ring = await cluster.ring(cluster.nodes[0]!);
  const n = Math.min(3, new Set(ring.owners).size);
  const primaries = new Set(preferenceList(ring, vnodeOf(key, ring.owners.length), n).primaries);
  const out = new Map<string, string>();
  for (const node of cluster.nodes.filter((x) => primaries.has(x.nodeId))) {
    out.set(node.nodeId, createHash("sha1").update(encodeState(await cluster.replica(node, key, ring.owners.length))).digest("hex"));
  }
  return out;
}

/** Heals everything, waits for hints to drain, then reads every key at r=all until replicas agree. */
export async function converge(cluster: TestCluster, keys: string[]): Promise<{ final: Map<string, string[]>; replicas: Map<string, Map<string, string>> }> {
  await cluster.heal();
  for (const n of cluster.nodes) await cluster.setClock(n.nodeId, 0);
  await cluster.waitAllUp([], 30_000);
  await eventually("hint queues to drain", async () => (await Promise.all(cluster.nodes.map((n) => cluster.hintTotal(n)))).every((t) => t === 0), 60_000);
  const replicas = new Map<string, Map<string, string>>();
  for (let round = 0; round < 10; round++) {
    for (const key of keys) await fetch(`${cluster.nodes[0]!.url}/kv/${key}?r=all`).then((r) => r.arrayBuffer());
    await Bun.sleep(200);
    let agreed = true;
    for (const key of keys) {
      const d = await digestOf(cluster, key);
      replicas.set(key, d);
      if (new Set(d.values()).size > 1) agreed = false;
    }
    if (agreed) break;
  }
  const final = new Map<string, string[]>();
  for (const key of keys) {
    const primary = cluster.node([...replicas.get(key)!.keys()][0]!);
    const state = await cluster.replica(primary, key, (await cluster.ring(primary)).owners.length);
    final.set(key, liveSiblings(state).map((v) => new TextDecoder().decode(v.value!)));
  }
  return { final, replicas };
}

export async function runPhase(cluster: TestCluster, o: PhaseOptions): Promise<PhaseResult> {
  const rng = seeded(o.seed);
  const plan: string[] = [];
  const log = (line: string) => {
    plan.push(line);
    o.log?.(`  [${o.name}] ${line}`);
  };
  const keys = Array.from({ length: o.keys }, (_, i) => `${o.name}/k${i}`);
  const history: Op[] = [];
  let nextId = 0;
  const startedAt = Date.now();
  const live = () => cluster.nodes.map((n) => ({ id: n.nodeId, url: n.url }));
  const deadline = startedAt + 2 * o.quietMs + o.faultMs;
  const clients = Array.from(
    { length: o.clients },
    (_, p) =>
      new WorkloadClient({
        process: p,
        keys,
        nodes: live,
        rng: seeded(o.seed * 1000 + p + 1),
        startedAt,
        blindRatio: o.blindRatio,
        timeoutMs: 4_000,
        record: (op) => history.push(op),
        nextId: () => nextId++,
      }),
  );
  const workload = Promise.all(clients.map((c) => c.runUntil(deadline)));
  const ctx = { cluster, rng, log };
  if (o.nemesis) {
    await Bun.sleep(o.quietMs);
    log(`start ${o.nemesis.name} at ${Date.now() - startedAt} ms`);
    await o.nemesis.start(ctx);
    await Bun.sleep(o.faultMs);
    await o.nemesis.stop(ctx);
    log(`stop ${o.nemesis.name} at ${Date.now() - startedAt} ms`);
  }
  await workload;
  const { final, replicas } = await converge(cluster, keys);
  const input: CheckInput = {
    history,
    final,
    replicas,
    faultFree: !o.nemesis,
    // Read-modify-write keeps at most one live version per writer; a write whose outcome was
    // unknown to its client can add one more per writer.
    maxSiblings: o.blindRatio > 0 ? Number.POSITIVE_INFINITY : o.nemesis ? 2 * o.clients : o.clients,
  };
  return {
    name: o.name,
    seed: o.seed,
    plan,
    history,
    violations: check(input),
    ops: history.length,
    ackedWrites: history.filter((op) => op.type !== "read" && op.outcome === "ok").length,
  };
}
