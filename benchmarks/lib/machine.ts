/** What a result was measured on: the commit and the machine. */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * `git rev-parse --short HEAD`, with `-dirty` when tracked files outside benchmarks/results/
 * have changes. Untracked files do not count (as with `git describe --dirty`), nor do earlier
 * runs' results: each run rewrites the tracked `<scenario>-latest.md`, which marked every
 * later run of a series dirty although no code had changed.
 */
export function commitId(): string {
  const head = run("git", ["rev-parse", "--short", "HEAD"]);
  return run("git", ["status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results"]) === "" ? head : `${head}-dirty`;
}

export interface Machine {
  cpu: string;
  cores: number;
  /** The cores this run's processes may use (fewer than `cores` under --cpus). */
  coresUsed: number;
  memoryGiB: number;
  kernel: string;
  bun: string;
  node: string;
  /** 1-minute load average when the run began: other work on the machine skews every figure. */
  loadAverage: number;
}

export function machineInfo(): Machine {
  const model = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.+)$/m);
  return {
    cpu: model?.[1]?.trim() ?? "unknown",
    cores: cpus().length,
    // nproc reads the affinity mask now; Bun's availableParallelism() keeps the one it started with.
    coresUsed: Number(run("nproc", [])),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    bun: Bun.version,
    node: run("node", ["--version"]),
    loadAverage: loadavg()[0]!,
  };
}

/**
 * Confines this process, all its threads, and so every process it starts afterwards (they
 * inherit the mask), to the CPUs of a taskset list. Running the same scenario on fewer cores
 * shows how its figures scale with the cores the servers and the load tool share.
 */
export function pinToCpus(list: string): void {
  run("taskset", ["--all-tasks", "--pid", "--cpu-list", list, String(process.pid)]);
}

const YARDSTICK_BYTES = 16 * 2 ** 20;
const YARDSTICK_RECORDS = 20_000;
const YARDSTICK_ROUNDS = 5;

/**
 * Milliseconds for a fixed piece of CPU work on one core (a SHA-256 of 16 MiB and a JSON
 * round trip of 20,000 small records), best of five. On a shared host the same machine runs
 * the same work at different speeds from one hour to the next; taken at the start and end
 * of a run, it lets runs be compared for how fast the machine itself was.
 */
export function yardstickMs(): number {
  const bytes = new Uint8Array(YARDSTICK_BYTES).fill(7);
  const records = Array.from({ length: YARDSTICK_RECORDS }, (_, i) => ({ key: `bench/${i}`, seq: i, tags: ["a", "b"] }));
  let best = Infinity;
  for (let round = 0; round < YARDSTICK_ROUNDS; round++) {
    const started = performance.now();
    createHash("sha256").update(bytes).digest();
    if ((JSON.parse(JSON.stringify(records)) as unknown[]).length !== YARDSTICK_RECORDS) throw new Error("yardstick: JSON round trip lost records");
    best = Math.min(best, performance.now() - started);
  }
  return Math.round(best * 10) / 10;
}
