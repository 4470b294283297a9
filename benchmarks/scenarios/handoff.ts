/**
 * `handoff`: a 3-node cluster built directly on disk with 200,000 keys; a 4th, empty node
 * joins (staged, committed) while a steady write load runs through the three. Measured: the
 * transfers' MB/s and keys/s, the handoff's wall time, and the write latency during the
 * handoff against the same load just before it.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { RinglogAdmin } from "../../src/sdk/admin.ts";
import { buildDataset, replicaBytes } from "../lib/dataset.ts";
import { type Child, freePort, logTail, running, waitHttpOk } from "../lib/procs.ts";
import { bar } from "../lib/report.ts";
import type { ScenarioContext, ScenarioResult } from "../lib/scenario.ts";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
const PARTITIONS = 64;
const RATE = 400;
const WORKERS = 16;
const BASELINE_MS = 15_000;

interface Sample {
  at: number;
  ms: number;
  ok: boolean;
}

/** Steady writes at RATE/s over WORKERS connections until stopped; every answer is recorded. */
function steadyWrites(urls: string[], keys: number): { samples: Sample[]; stop: () => Promise<void> } {
  const samples: Sample[] = [];
  let stopped = false;
  const value = randomBytes(100);
  const gap = (1000 * WORKERS) / RATE;
  const workers = Array.from({ length: WORKERS }, async (_, w) => {
    for (let i = 0; !stopped; i++) {
      const next = performance.now() + gap;
      const url = urls[(w + i) % urls.length]!;
      const t = performance.now();
      let ok = false;
      try {
        const r = await fetch(`${url}/kv/load/${Math.floor(Math.random() * keys)}`, { method: "PUT", body: value, signal: AbortSignal.timeout(10_000) });
        await r.arrayBuffer();
        ok = r.status === 204;
      } catch {
        ok = false;
      }
      samples.push({ at: t, ms: performance.now() - t, ok });
      const wait = next - performance.now();
      if (wait > 0) await Bun.sleep(wait);
    }
  });
  return {
    samples,
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
    },
  };
}

const p99 = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] ?? 0;
};

interface TransferView {
  id: string;
  status: string;
  keysSent: number;
  bytesSent: number;
}

export async function handoffScenario({ procs, options }: ScenarioContext): Promise<ScenarioResult> {
  const keys = options.keys ?? 200_000;
  const ids = ["n1", "n2", "n3", "n4"];
  const dirs = ids.map((id) => procs.tempDir(`handoff-${id}`));
  process.stdout.write(`handoff: building ${keys.toLocaleString("en-US")} keys on n1..n3\n`);
  const build = await buildDataset({ dirs: dirs.slice(0, 3), nodeIds: ids.slice(0, 3), keys, keyPrefix: "pre/", valueBytes: 100, partitions: PARTITIONS });
  const data = replicaBytes(dirs[0]!);

  const ports = await Promise.all(ids.map(() => freePort()));
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const secret = randomBytes(16).toString("hex");
  const base = { RINGLOG_LOG_LEVEL: "warn", RINGLOG_CLUSTER_SECRET: secret, RINGLOG_PARTITIONS: String(PARTITIONS) };
  const clusterEnv = { ...base, RINGLOG_SEEDS: urls.slice(0, 3).join(","), RINGLOG_INITIAL_MEMBERS: ids.slice(0, 3).join(",") };
  const children: Child[] = ids.map((id, i) =>
    procs.spawn(id, [process.execPath, CLI, "node", "--data", dirs[i]!, "--port", String(ports[i]), "--node-id", id], { logDir: dirs[i]!, env: i < 3 ? clusterEnv : base }),
  );
  await Promise.all(urls.map((u, i) => waitHttpOk(`${u}/readyz`, children[i]!, 300_000)));

  const load = steadyWrites(urls.slice(0, 3), keys);
  await Bun.sleep(BASELINE_MS);
  const joinAt = performance.now();
  await new RinglogAdmin({ baseUrl: urls[3]!, secret }).join(urls[0]!);
  const plan = await new RinglogAdmin({ baseUrl: urls[0]!, secret }).commit();

  // Only the sender of a transfer reports its progress, and transfers vanish from /cluster
  // at the flip, so every node is polled and the last figure per transfer kept.
  const last = new Map<string, TransferView>();
  const deadline = Date.now() + 15 * 60_000;
  let flippedAt = 0;
  for (;;) {
    for (const c of children) if (!running(c)) throw new Error(`${c.name} exited:\n${logTail(c)}`);
    const views = await Promise.all(urls.map((u) => fetch(`${u}/cluster`).then((r) => r.json() as Promise<{ ring: { owners: string[] }; handoff?: { committed: boolean; transfers: TransferView[] } }>)));
    for (const v of views) for (const t of v.handoff?.transfers ?? []) if (t.keysSent >= (last.get(t.id)?.keysSent ?? 0)) last.set(t.id, t);
    if (views.every((v) => !v.handoff?.committed && v.ring.owners.includes("n4"))) {
      flippedAt = performance.now();
      break;
    }
    if (Date.now() > deadline) throw new Error("the handoff did not finish within 15 minutes");
    await Bun.sleep(250);
  }
  await Bun.sleep(2_000);
  await load.stop();

  const wallS = (flippedAt - joinAt) / 1000;
  const keysSent = [...last.values()].reduce((s, t) => s + t.keysSent, 0);
  const bytesSent = [...last.values()].reduce((s, t) => s + t.bytesSent, 0);
  const before = load.samples.filter((s) => s.at < joinAt && s.at >= joinAt - BASELINE_MS + 3_000);
  const during = load.samples.filter((s) => s.at >= joinAt && s.at <= flippedAt);
  const errors = during.filter((s) => !s.ok).length + before.filter((s) => !s.ok).length;
  const p99Before = p99(before.map((s) => s.ms));
  const p99During = p99(during.map((s) => s.ms));

  return {
    config: {
      nodes: "3 built on disk, then an empty 4th joins (N=3, R=2, W=2)",
      keys,
      partitions: PARTITIONS,
      "write load": `${RATE} PUT/s of 100-byte values over ${WORKERS} connections, round-robin over n1..n3, random keys of the data set`,
      RINGLOG_HANDOFF_CONCURRENCY: "2 (default), RINGLOG_HANDOFF_BATCH 500 (default)",
    },
    phases: [],
    figures: {
      "data set (one replica: keys + stored states)": `${(data.bytes / 2 ** 20).toFixed(1)} MiB in ${data.keys.toLocaleString("en-US")} keys`,
      "build time (storage layer, 3 folders)": `${(build.ms / 1000).toFixed(1)} s`,
      transfers: plan.transfers.length,
      "handoff wall time (commit → every node flipped)": `${wallS.toFixed(1)} s`,
      "entries shipped (snapshot keys + log entries)": keysSent.toLocaleString("en-US"),
      "bytes shipped": `${(bytesSent / 2 ** 20).toFixed(1)} MiB`,
      "transfer rate": `${(bytesSent / 2 ** 20 / wallS).toFixed(2)} MB/s, ${Math.round(keysSent / wallS).toLocaleString("en-US")} keys/s`,
      "write p99 before the join (12 s)": `${p99Before.toFixed(1)} ms over ${before.length} writes`,
      "write p99 during the handoff": `${p99During.toFixed(1)} ms over ${during.length} writes`,
      "write p99 during / before": (p99During / p99Before).toFixed(2),
    },
    bars: [bar("failed writes (before and during)", errors, "==", 0), bar("transfers done", last.size, "==", plan.transfers.length)],
    notes: [
      "MB/s and keys/s are the sum over all transfers of what the senders report (segment bytes as msgpack), divided by the wall time from commit to the flip on every node.",
      "Latency is measured by the load generator in this process (performance.now around each fetch), at a fixed offered rate, so the two p99 figures compare the same load with and without a handoff.",
      "The machine's two cores are shared by the four nodes and the load generator.",
    ],
  };
}
