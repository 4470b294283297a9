/**
 * `aae`: a 3-node cluster (N=3) built directly on disk with 1,000,000 keys, 0.01% of which
 * (100 keys) one node lacks. The nodes start with anti-entropy on and nothing else to do;
 * measured: wall time until every replica of every vnode has the same Merkle root, and the
 * bytes anti-entropy sent by then as a fraction of the data set (one replica's keys and
 * stored states).
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { buildDataset, replicaBytes } from "../lib/dataset.ts";
import { type Child, freePort, logTail, running, waitHttpOk } from "../lib/procs.ts";
import { bar } from "../lib/report.ts";
import type { ScenarioContext, ScenarioResult } from "../lib/scenario.ts";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
const PARTITIONS = 64;

interface AaeView {
  exchanges: number;
  keysRepaired: number;
  bytesSent: number;
  bytesReceived: number;
  lastRebuildMs: number;
  vnodes: { vnode: number; root: string }[];
}

const aae = async (url: string) => (await (await fetch(`${url}/debug/aae`, { signal: AbortSignal.timeout(5000) })).json()) as AaeView;

export async function aaeScenario({ procs, options }: ScenarioContext): Promise<ScenarioResult> {
  const keys = options.keys ?? 1_000_000;
  const divergent = Math.max(1, Math.round(keys / 10_000));
  const ids = ["n1", "n2", "n3"];
  const dirs = ids.map((id) => procs.tempDir(`aae-${id}`));
  // Spread the divergent keys over the key space (and so over vnodes and leaves).
  const missing = new Set(Array.from({ length: divergent }, (_, i) => Math.floor((i * keys) / divergent)));
  process.stdout.write(`aae: building ${keys.toLocaleString("en-US")} keys on 3 nodes, ${divergent} missing on n3\n`);
  const build = await buildDataset({ dirs, nodeIds: ids, keys, keyPrefix: "aae/", valueBytes: 100, partitions: PARTITIONS, lacking: 2, missing });
  const data = replicaBytes(dirs[0]!);

  const ports = await Promise.all(ids.map(() => freePort()));
  const env = {
    RINGLOG_LOG_LEVEL: "warn",
    RINGLOG_CLUSTER_SECRET: randomBytes(16).toString("hex"),
    RINGLOG_SEEDS: ports.map((p) => `http://127.0.0.1:${p}`).join(","),
    RINGLOG_INITIAL_MEMBERS: ids.join(","),
    RINGLOG_PARTITIONS: String(PARTITIONS),
  };
  const started = performance.now();
  const children: Child[] = ids.map((id, i) =>
    procs.spawn(id, [process.execPath, CLI, "node", "--data", dirs[i]!, "--port", String(ports[i]), "--node-id", id], { logDir: dirs[i]!, env }),
  );
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  await Promise.all(urls.map((u, i) => waitHttpOk(`${u}/readyz`, children[i]!, 300_000)));
  const readyMs = performance.now() - started;

  let views: AaeView[] = [];
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    for (const c of children) if (!running(c)) throw new Error(`${c.name} exited:\n${logTail(c)}`);
    views = await Promise.all(urls.map(aae));
    const roots = views.map((v) => new Map(v.vnodes.map((x) => [x.vnode, x.root])));
    if (roots.every((r) => r.size === PARTITIONS && [...r].every(([v, root]) => roots[0]!.get(v) === root))) break;
    if (Date.now() > deadline) throw new Error("replicas did not converge within 15 minutes");
    await Bun.sleep(200);
  }
  const convergedMs = performance.now() - started;
  // Both directions of every anti-entropy call: request bodies sent and answers received.
  const bytesSent = views.reduce((s, v) => s + v.bytesSent + v.bytesReceived, 0);
  const repaired = views.reduce((s, v) => s + v.keysRepaired, 0);
  const fraction = bytesSent / data.bytes;

  return {
    config: {
      nodes: "3 (N=3, every node a replica of every vnode)",
      keys,
      "divergent keys": `${divergent} (${((divergent / keys) * 100).toFixed(3)}%), missing on n3`,
      "value size": "100 bytes",
      partitions: PARTITIONS,
      RINGLOG_AAE_INTERVAL_MS: "100 (default): one vnode visit per node every 100 ms; each round over the vnodes begins with one roots call per peer",
    },
    phases: [],
    figures: {
      "data set (one replica: keys + stored states)": `${(data.bytes / 2 ** 20).toFixed(1)} MiB in ${data.keys.toLocaleString("en-US")} keys`,
      "build time (storage layer, 3 folders)": `${(build.ms / 1000).toFixed(1)} s`,
      "start-up until every node is ready": `${(readyMs / 1000).toFixed(1)} s`,
      "Merkle rebuild at start-up (per node)": views.map((v, i) => `${ids[i]} ${v.lastRebuildMs} ms`).join(", "),
      "exchange wall time (start until every root agrees)": `${(convergedMs / 1000).toFixed(1)} s`,
      exchanges: views.reduce((s, v) => s + v.exchanges, 0),
      "keys repaired": repaired,
      "bytes on the wire for anti-entropy (requests + answers)": `${bytesSent.toLocaleString("en-US")} B`,
      "bytes sent / data set": `${(fraction * 100).toFixed(4)}%`,
    },
    bars: [bar("AAE bytes / data set", Number((fraction * 100).toFixed(4)), "<=", 1, "%"), bar("keys repaired", repaired, ">=", divergent)],
    notes: [
      "Bytes are the bodies of every anti-entropy call (requests and answers) from all three nodes, counted by each node's transport, from start-up until every root agreed; tree comparisons of vnodes that already agreed are included.",
      "The data set is built with the storage layer directly (same code path as replica writes), then the nodes are started on it: the figure is repair of a cold, never-read divergence.",
      "The machine's two cores are shared by the three nodes (and anything else running).",
    ],
  };
}
