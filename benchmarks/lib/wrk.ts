/**
 * Runs one load through wrk (benchmarks/wrk.lua) and reads its figures.
 *
 * wrk is the default load tool because on this 2-core machine the load tool takes its CPU from
 * the servers under test: autocannon spent 64-76 µs of CPU per request against a 3-node
 * cluster (0.3-0.4 cores) and capped the bare Bun.serve hello-world at 31k/s with the server
 * 60% idle, while wrk spent 13-17 µs per request with one thread per target (30-45 µs with
 * 64 threads against the cluster) and drove the same server to 83-107k/s. wrk is a Debian
 * package, not an npm one: when it is missing the run stops and says how to get it.
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

/**
 * wrk splits its connections evenly over its threads and a thread talks to one address, so an
 * even spread over several targets takes one thread per target, or one per connection when the
 * connections do not divide evenly (then thread i goes to target i mod count, round-robin).
 */
function wrkThreads(connections: number, targets: number): number {
  return connections % targets === 0 ? targets : connections;
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

export async function runWrk(procs: Procs, config: LoadConfig & { seconds: number }): Promise<Omit<LoadResult, "stallMs">> {
  const targets = config.urls.map((u) => new URL(u).host);
  const threads = wrkThreads(config.connections, targets.length);
  const histogramFile = join(procs.tempDir("wrk"), "histogram");
  const env = {
    ...process.env,
    RINGLOG_WRK_TARGETS: targets.join(","),
    RINGLOG_WRK_METHOD: config.method,
    RINGLOG_WRK_PREFIX: config.keyPrefix,
    RINGLOG_WRK_KEYS: String(config.keyCount),
    RINGLOG_WRK_VALUE_BYTES: String(config.valueBytes ?? 0),
    RINGLOG_WRK_CONTENT_TYPE: config.contentType ?? "application/octet-stream",
    RINGLOG_WRK_HISTOGRAM: histogramFile,
  };
  const cmd = [wrkPath(), `-t${threads}`, `-c${config.connections}`, `-d${config.seconds}s`, `--timeout`, `${TIMEOUT_SEC}s`, "-s", SCRIPT, config.urls[0]!];
  const before: CpuMark = cpuMark();
  const { out, cpuSec } = await procs.output("wrk", cmd, { env, timeoutMs: config.seconds * 1000 + HANG_SLACK_MS });
  const line = out.split("\n").find((l) => l.startsWith("RINGLOG_WRK "));
  if (!line) throw new Error(`wrk printed no figures: ${out.slice(-2000)}`);
  const w = JSON.parse(line.slice("RINGLOG_WRK ".length)) as WrkOutput;
  const corrected = readHistogram(histogramFile);
  const measured = summarize(wrkUncorrect(corrected, wrkInterval(w.durationUs, w.completed, config.connections)));
  // wrk counts the response that ends a thread's run without timing it: up to one per thread has no sample.
  if (measured.samples > w.completed || w.completed - measured.samples > threads) {
    throw new Error(`wrk's histogram gave back ${measured.samples} samples for ${w.completed} responses over ${threads} threads: its layout is not what wrk.lua expects`);
  }
  const durationSec = w.durationUs / 1e6;
  // wrk counts 3xx as success along with 2xx; Ringlog's KV routes answer none.
  const ok = w.completed - w.non2xx;
  return {
    durationSec,
    completed: w.completed,
    ok,
    okPerSec: durationSec > 0 ? ok / durationSec : 0,
    latencyMs: measured,
    correctedLatencyMs: summarize(corrected),
    statusCounts: { "2xx": ok, other: w.non2xx },
    non2xx: w.non2xx,
    errors: w.connectErrors + w.readErrors + w.writeErrors + w.timeouts,
    timeouts: w.timeouts,
    cpu: cpuShare(before, cpuMark(), cpuSec),
  };
}
