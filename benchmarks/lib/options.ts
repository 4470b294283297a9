/** The command-line settings every scenario shares, and the fixed workload. */
import { parseArgs } from "node:util";
import type { LoadTool } from "./load.ts";

export type Fsync = "full" | "normal" | "off";

export interface BenchOptions {
  /** Length of each measured phase. */
  seconds: number;
  /** Total client connections of each phase. */
  connections: number;
  /** RINGLOG_FSYNC of every Ringlog node. */
  fsync: Fsync;
  /** PUT load on fresh Ringlog nodes before their first measured phase (0: none). */
  warmup: number;
  /** What sends the measured load (the preload always goes through autocannon). */
  loadTool: LoadTool;
  /** Data set size for the aae and handoff scenarios (each has its own default). */
  keys?: number;
  /** A taskset CPU list every process of the run is confined to (default: all CPUs). */
  cpus?: string;
}

/** The workload of the issue: 100-byte values over 100,000 keys. */
export const WORKLOAD = {
  keyPrefix: "bench/",
  keyCount: 100_000,
  valueBytes: 100,
  contentType: "application/octet-stream",
  /** Repeated blind PUTs of one key would pile up siblings; under lww each one replaces the last. */
  resolvers: "bench/=lww",
  /** Warm-up keys: under the same resolver rule, never among the measured keys. */
  warmupKeyPrefix: "bench/warmup-",
} as const;

export class UsageError extends Error {}

/** taskset's list form: CPU numbers and ranges, comma-separated. */
const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

export const OPTIONS_USAGE = "[--seconds N (20)] [--warmup N (10)] [--connections N (64)] [--fsync full|normal|off (normal)] [--load-tool wrk|autocannon (wrk)] [--keys N (aae, handoff)] [--cpus LIST (all)]";

function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer`);
  return n;
}

export function parseOptions(args: string[]): BenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        seconds: { type: "string" },
        warmup: { type: "string" },
        connections: { type: "string" },
        fsync: { type: "string" },
        "load-tool": { type: "string" },
        keys: { type: "string" },
        cpus: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const fsync = values.fsync ?? "normal";
  if (fsync !== "full" && fsync !== "normal" && fsync !== "off") throw new UsageError("--fsync must be full, normal or off");
  const loadTool = values["load-tool"] ?? "wrk";
  if (loadTool !== "wrk" && loadTool !== "autocannon") throw new UsageError("--load-tool must be wrk or autocannon");
  if (values.cpus !== undefined && !CPU_LIST.test(values.cpus)) throw new UsageError("--cpus must be a CPU list such as 0, 0,1 or 0-1");
  return {
    seconds: positiveInt("seconds", values.seconds, 20),
    warmup: values.warmup === "0" ? 0 : positiveInt("warmup", values.warmup, 10),
    connections: positiveInt("connections", values.connections, 64),
    fsync,
    loadTool,
    ...(values.keys !== undefined ? { keys: positiveInt("keys", values.keys, 0) } : {}),
    ...(values.cpus !== undefined ? { cpus: values.cpus } : {}),
  };
}
