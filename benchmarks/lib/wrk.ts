/**
 * Runs one load through wrk (benchmarks/wrk.lua) and reads its figures.
 *
 * wrk is the default load tool because on this 2-core machine the load tool takes its CPU from
 * the servers under test: autocannon spent 64-76 µs of CPU per request against a 3-node
 * cluster (0.3-0.4 cores) and capped the bare Bun.serve hello-world at 31k/s with the server
 * 60% idle, while wrk spent 13-17 µs per request with one thread per target and drove the
 * same server to 83-107k/s. wrk is a Debian package, not an npm one: when it is missing the
 * run stops and says how to get it.
 *
 * Several targets get one wrk process each, with one thread and its share of the connections.
 * One wrk cannot do that: it splits its connections evenly over its threads, and a thread
 * talks to one address, so 64 connections over 3 nodes took 64 threads of one connection.
 * Those cost 30-45 µs of CPU per request instead of 13-17, and the cluster's servers spent
 * more per request too: against one process per node, in three interleaved pairs, the
 * cluster's PUT rate was 21-29% lower and its PUT p99 18-41% higher (GETs: rate 0-13% lower,
 * p99 within the noise).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type CpuMark, cpuMark, cpuShare } from "./cpu.ts";
import { type Histogram, summarize, wrkInterval, wrkUncorrect } from "./latency.ts";
import type { LoadConfig, LoadResult } from "./load.ts";
import type { Procs } from "./procs.ts";

const SCRIPT = join(import.meta.dir, "..", "wrk.lua");
/** Where Debian's package puts it; the PATH is searched first. */
const FALLBACK = "/usr/bin/wrk";
/** A request unanswered for this long counts as a timeout, as with autocannon's default. */
const TIMEOUT_SEC = 10;
const HANG_SLACK_MS = 60_000;

function wrkPath(): string {
  const found = Bun.which("wrk") ?? (existsSync(FALLBACK) ? FALLBACK : null);
  if (!found) throw new Error("the load tool wrk is not installed: apt-get install wrk (or run with --load-tool autocannon)");
  return found;
}

export function wrkVersion(): string {
  const out = Bun.spawnSync([wrkPath(), "--version"]).stdout.toString();
  return /wrk (\S+)/.exec(out)?.[1] ?? "unknown version";
}

/** Connections per target, as even as the count allows (the first targets take one more). */
export function spreadConnections(connections: number, targets: number): number[] {
  return Array.from({ length: targets }, (_, i) => Math.floor(connections / targets) + (i < connections % targets ? 1 : 0));
}

/** What wrk.lua prints; the latencies come from the histogram file it writes. */
interface WrkOutput {
  durationUs: number;
  completed: number;
  non2xx: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  timeouts: number;
}

function readHistogram(path: string): Histogram {
  const h: Histogram = new Map();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line) continue;
    const [v, c] = line.split(" ").map(Number);
    h.set(v!, c!);
  }
  return h;
}

/** One wrk against one target: its figures, and its latency histogram as measured and as wrk corrected it. */
async function runOne(procs: Procs, config: LoadConfig & { seconds: number }, url: string, connections: number, seed: number) {
  const histogramFile = join(procs.tempDir("wrk"), "histogram");
  const env = {
    ...process.env,
    RINGLOG_WRK_METHOD: config.method,
    RINGLOG_WRK_PREFIX: config.keyPrefix,
    RINGLOG_WRK_KEYS: String(config.keyCount),
    RINGLOG_WRK_VALUE_BYTES: String(config.valueBytes ?? 0),
    RINGLOG_WRK_CONTENT_TYPE: config.contentType ?? "application/octet-stream",
    RINGLOG_WRK_SEED: String(seed),
    RINGLOG_WRK_HISTOGRAM: histogramFile,
  };
  const cmd = [wrkPath(), "-t1", `-c${connections}`, `-d${config.seconds}s`, `--timeout`, `${TIMEOUT_SEC}s`, "-s", SCRIPT, url];
  const { out, cpuSec } = await procs.output("wrk", cmd, { env, timeoutMs: config.seconds * 1000 + HANG_SLACK_MS });
  const line = out.split("\n").find((l) => l.startsWith("RINGLOG_WRK "));
  if (!line) throw new Error(`wrk printed no figures: ${out.slice(-2000)}`);
  const w = JSON.parse(line.slice("RINGLOG_WRK ".length)) as WrkOutput;
  const corrected = readHistogram(histogramFile);
  const measured = wrkUncorrect(corrected, wrkInterval(w.durationUs, w.completed, connections));
  const samples = [...measured.values()].reduce((a, b) => a + b, 0);
  // wrk counts the response that ends its thread's run without timing it: it may have no sample.
  if (samples > w.completed || w.completed - samples > 1) {
    throw new Error(`wrk's histogram gave back ${samples} samples for ${w.completed} responses: its layout is not what wrk.lua expects`);
  }
  return { w, cpuSec, measured, corrected };
}

function merge(histograms: Histogram[]): Histogram {
  const all: Histogram = new Map();
  for (const h of histograms) for (const [v, c] of h) all.set(v, (all.get(v) ?? 0) + c);
  return all;
}

export async function runWrk(procs: Procs, config: LoadConfig & { seconds: number }): Promise<Omit<LoadResult, "stallMs">> {
  const shares = spreadConnections(config.connections, config.urls.length);
  const before: CpuMark = cpuMark();
  const runs = await Promise.all(config.urls.map((url, i) => runOne(procs, config, url, shares[i]!, i)));
  const sum = (f: (w: WrkOutput) => number) => runs.reduce((a, r) => a + f(r.w), 0);
  const completed = sum((w) => w.completed);
  const non2xx = sum((w) => w.non2xx);
  // wrk counts 3xx as success along with 2xx; Ringlog's KV routes answer none.
  const okPerSec = sum((w) => (w.durationUs > 0 ? ((w.completed - w.non2xx) * 1e6) / w.durationUs : 0));
  const timeouts = sum((w) => w.timeouts);
  return {
    durationSec: Math.max(...runs.map((r) => r.w.durationUs)) / 1e6,
    completed,
    ok: completed - non2xx,
    okPerSec,
    latencyMs: summarize(merge(runs.map((r) => r.measured))),
    correctedLatencyMs: summarize(merge(runs.map((r) => r.corrected))),
    statusCounts: { "2xx": completed - non2xx, other: non2xx },
    non2xx,
    errors: sum((w) => w.connectErrors + w.readErrors + w.writeErrors) + timeouts,
    timeouts,
    cpu: cpuShare(before, cpuMark(), runs.reduce((a, r) => a + r.cpuSec, 0)),
  };
}
