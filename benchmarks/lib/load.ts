/**
 * Runs one load in its own process and reads its figures: through wrk (wrk.ts) or through
 * benchmarks/load.mjs (autocannon under node). Only autocannon can send each key of a list
 * once and report which keys got a 2xx, so key-list and tracked loads always go through it.
 */
import { join } from "node:path";
import { type CpuShare, cpuMark, cpuShare } from "./cpu.ts";
import type { Procs } from "./procs.ts";
import { StallWatch } from "./stall.ts";
import { runWrk } from "./wrk.ts";

export type LoadTool = "wrk" | "autocannon";

const LOAD_SCRIPT = join(import.meta.dir, "..", "load.mjs");

export interface LoadConfig {
  tool: LoadTool;
  urls: string[];
  connections: number;
  method: "GET" | "PUT";
  keyPrefix: string;
  keyCount: number;
  /** Run for this long with random keys… */
  seconds?: number;
  /** …or send each of these keys once. */
  keyList?: number[];
  valueBytes?: number;
  contentType?: string;
  track?: boolean;
}

export interface Latency {
  mean: number;
  p50: number;
  p99: number;
  p99_9: number;
  max: number;
}

export interface LoadResult {
  durationSec: number;
  /** Responses of any status. */
  completed: number;
  /** 2xx responses; the throughput figures count only these. */
  ok: number;
  okPerSec: number;
  /** As measured, one sample per response. wrk records microseconds; autocannon whole milliseconds, so its small figures are coarse. */
  latencyMs: Latency;
  /** wrk only: its own figures, with samples added for coordinated omission (see latency.ts). */
  correctedLatencyMs?: Latency;
  statusCounts: Record<string, number>;
  non2xx: number;
  /** Socket errors and timeouts (a timeout counts as an error too). */
  errors: number;
  timeouts: number;
  /** With `track`: bit n set when key n got a 2xx. */
  written?: string;
  /** Where the machine's CPU went while the load ran, in cores. */
  cpu: CpuShare;
  /** The longest the runner's own timer was late while the load ran (see stall.ts), in milliseconds. */
  stallMs: number;
}

/** What load.mjs prints. */
type LoadOutput = Omit<LoadResult, "cpu" | "stallMs">;

/** Slack on top of the planned duration before the load process is killed as hung. */
const HANG_SLACK_MS = 60_000;
/** A run through a key list stops itself after this long (load.mjs's guard); the kill comes after. */
const KEY_LIST_MAX_SECONDS = 120;

export async function runLoad(procs: Procs, config: LoadConfig): Promise<LoadResult> {
  const plan = config.keyList ? `${config.keyList.length} keys` : `${config.seconds} s`;
  const tool = config.keyList || config.track ? "autocannon" : config.tool;
  // Progress on stderr: a full scenario runs for minutes.
  process.stderr.write(`load (${tool}): ${config.method} ${plan}, ${config.connections} connections → ${config.urls.join(" ")} … `);
  const watch = new StallWatch().start();
  const result = { ...(tool === "wrk" ? await runWrk(procs, { ...config, seconds: config.seconds! }) : await runAutocannon(procs, config)), stallMs: watch.stop() };
  process.stderr.write(
    `${Math.round(result.okPerSec)} 2xx/s, p99 ${result.latencyMs.p99} ms, ${result.non2xx} non-2xx, ${result.errors} errors; ` +
      `cores busy: load tool ${result.cpu.loadTool}, servers ${result.cpu.servers}, other ${result.cpu.other}\n`,
  );
  return result;
}

async function runAutocannon(procs: Procs, config: LoadConfig): Promise<Omit<LoadResult, "stallMs">> {
  const maxSeconds = config.seconds ?? KEY_LIST_MAX_SECONDS;
  const input = new Blob([JSON.stringify({ ...config, maxSeconds: maxSeconds + 5 })]);
  const before = cpuMark();
  const { out, cpuSec } = await procs.output("load", ["node", LOAD_SCRIPT], { stdin: input, timeoutMs: maxSeconds * 1000 + HANG_SLACK_MS });
  return { ...(JSON.parse(out) as LoadOutput), cpu: cpuShare(before, cpuMark(), cpuSec) };
}

/** Which of the keys [0, count) have been written, merged from the bitmaps of tracked loads. */
export class WrittenKeys {
  private readonly bits: Uint8Array;

  constructor(readonly count: number) {
    this.bits = new Uint8Array(Math.ceil(count / 8));
  }

  add(result: LoadResult): void {
    if (!result.written) throw new Error("the load was not tracked");
    const other = Buffer.from(result.written, "base64");
    for (let i = 0; i < this.bits.length; i++) this.bits[i]! |= other[i] ?? 0;
  }

  missing(): number[] {
    const out: number[] = [];
    for (let n = 0; n < this.count; n++) if (!(this.bits[n >> 3]! & (1 << (n & 7)))) out.push(n);
    return out;
  }
}
