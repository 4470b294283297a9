/** What a scenario gets and gives back; run.ts adds the date, commit and machine. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type BenchOptions, WORKLOAD } from "./options.ts";
import type { Procs } from "./procs.ts";
import type { Report } from "./report.ts";
import type { Memory } from "./rss.ts";
import { wrkVersion } from "./wrk.ts";

export interface ScenarioContext {
  procs: Procs;
  options: BenchOptions;
}

export type ScenarioResult = Pick<Report, "config" | "phases" | "figures" | "bars" | "notes">;

export type Scenario = (ctx: ScenarioContext) => Promise<ScenarioResult>;

const autocannonVersion = (JSON.parse(readFileSync(join(import.meta.dir, "..", "..", "node_modules", "autocannon", "package.json"), "utf8")) as { version: string }).version;
const AUTOCANNON = `autocannon ${autocannonVersion} under node, one process, pipelining 1`;

function loadToolConfig(options: BenchOptions): string {
  if (options.loadTool === "autocannon") return `${AUTOCANNON}; its connections go round-robin over the target nodes`;
  return (
    `wrk ${wrkVersion()}, one process per target node, each with one thread and its share of the connections (as even as they divide: 64 over 3 nodes is 22, 21, 21), pipelining 1; ` +
    `the unmeasured preload goes through ${AUTOCANNON}`
  );
}

/** The settings every Ringlog load shares, for the report. */
export function workloadConfig(options: BenchOptions): Record<string, string | number> {
  return {
    "load tool": loadToolConfig(options),
    connections: options.connections,
    "seconds per phase": options.seconds,
    "warm-up": options.warmup > 0 ? `${options.warmup} s of PUTs to ${WORKLOAD.warmupKeyPrefix}<n> on each freshly started node, before its first measured phase; not counted` : "none",
    keys: `${WORKLOAD.keyPrefix}<n>, n uniform in [0, ${WORKLOAD.keyCount.toLocaleString("en-US")})`,
    "value size": `${WORKLOAD.valueBytes} random bytes, ${WORKLOAD.contentType}`,
    RINGLOG_FSYNC: options.fsync,
    RINGLOG_RESOLVERS: `${WORKLOAD.resolvers} (blind PUTs replace the value instead of adding siblings)`,
    CPUs: options.cpus === undefined ? "all" : `${options.cpus} only (--cpus: every process of the run, servers and load tool alike, pinned with taskset)`,
  };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** A process's memory for the report: its peak, and what its resident set is made of at the end. */
export const describeMemory = (m: Memory) => `${mib(m.peak)} peak (at the end: ${mib(m.anon)} anonymous, ${mib(m.file)} file-backed)`;

/** Notes every Ringlog scenario's report carries. */
export const commonNotes = (options: BenchOptions) => [
  "Throughput counts 2xx answers only: 2xx responses / phase duration.",
  options.loadTool === "wrk"
    ? "Latency comes from wrk's histogram, which records microseconds, as measured: one sample per response. wrk's own figures add made-up samples for coordinated omission, as if each connection had meant to keep a fixed schedule; this closed-loop load has none, so they are shown apart (the wrk-corrected p99 column) and no bar uses them (benchmarks/lib/latency.ts)."
    : "Latency comes from autocannon's histogram, which records whole milliseconds.",
  "The runner stall column is the longest the benchmark runner's own 50 ms timer was late during the phase. The runner is idle while a load runs, so on a busy machine it is late by tens of milliseconds; seconds would mean the whole machine stopped (a host pausing or snapshotting this virtual machine), and then the phase's latencies are the host's, not the servers'.",
  "The load tool and the servers share the machine's cores, as they do for the hello-world baselines. " +
    "The cores column splits the CPU used during each phase between the load tool, the servers under test and anything else on the machine; " +
    "a share of more than a few hundredths for `other` means the figures were disturbed.",
];
