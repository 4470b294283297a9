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
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type CpuMark, cpuMark, cpuShare } from "./cpu.ts";
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

interface WrkOutput {
  durationUs: number;
  completed: number;
  non2xx: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  timeouts: number;
  meanUs: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

export async function runWrk(procs: Procs, config: LoadConfig & { seconds: number }): Promise<LoadResult> {
  const targets = config.urls.map((u) => new URL(u).host);
  const threads = wrkThreads(config.connections, targets.length);
  const env = {
    ...process.env,
    RINGLOG_WRK_TARGETS: targets.join(","),
    RINGLOG_WRK_METHOD: config.method,
    RINGLOG_WRK_PREFIX: config.keyPrefix,
    RINGLOG_WRK_KEYS: String(config.keyCount),
    RINGLOG_WRK_VALUE_BYTES: String(config.valueBytes ?? 0),
    RINGLOG_WRK_CONTENT_TYPE: config.contentType ?? "application/octet-stream",
  };
  const cmd = [wrkPath(), `-t${threads}`, `-c${config.connections}`, `-d${config.seconds}s`, `--timeout`, `${TIMEOUT_SEC}s`, "-s", SCRIPT, config.urls[0]!];
  const before: CpuMark = cpuMark();
  const { out, cpuSec } = await procs.output("wrk", cmd, { env, timeoutMs: config.seconds * 1000 + HANG_SLACK_MS });
  const line = out.split("\n").find((l) => l.startsWith("RINGLOG_WRK "));
  if (!line) throw new Error(`wrk printed no figures: ${out.slice(-2000)}`);
  const w = JSON.parse(line.slice("RINGLOG_WRK ".length)) as WrkOutput;
  const durationSec = w.durationUs / 1e6;
  // wrk counts 3xx as success along with 2xx; Ringlog's KV routes answer none.
  const ok = w.completed - w.non2xx;
  return {
    durationSec,
    completed: w.completed,
    ok,
    okPerSec: durationSec > 0 ? ok / durationSec : 0,
    latencyMs: { mean: w.meanUs / 1000, p50: w.p50Us / 1000, p99: w.p99Us / 1000, p99_9: w.p999Us / 1000, max: w.maxUs / 1000 },
    statusCounts: { "2xx": ok, other: w.non2xx },
    non2xx: w.non2xx,
    errors: w.connectErrors + w.readErrors + w.writeErrors + w.timeouts,
    timeouts: w.timeouts,
    cpu: cpuShare(before, cpuMark(), cpuSec),
  };
}
