/**
 * Where the machine's CPU went during a phase: the load tool, this run's servers, or anything
 * else. On a shared 2-core machine the last share tells whether a figure was disturbed, and the
 * first two tell which side was the bottleneck.
 */
import { readFileSync, readdirSync } from "node:fs";

/** Linux reports CPU times in USER_HZ ticks, which the kernel ABI fixes at 100 per second. */
const TICKS_PER_SEC = 100;

/**
 * Busy CPU seconds of the whole machine since boot: user, nice, system and steal (time the
 * hypervisor gave to someone else). Interrupt time is left out because on loopback it is mostly
 * this benchmark's own network traffic, which no process is charged for.
 */
function machineBusySec(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , , , steal = 0] = fields;
  return (user + nice + system + steal) / TICKS_PER_SEC;
}

/** CPU seconds used so far by `root` and its living descendants. */
function treeCpuSec(root: number): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // The command name may hold spaces and parentheses; the fields after its last ")" do not.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    parent.set(Number(name), Number(f[1]));
    cpu.set(Number(name), (Number(f[11]) + Number(f[12])) / TICKS_PER_SEC);
  }
  let total = 0;
  for (const [pid, sec] of cpu) {
    for (let p: number | undefined = pid; p !== undefined && p > 0; p = parent.get(p)) {
      if (p === root) {
        total += sec;
        break;
      }
    }
  }
  return total;
}

export interface CpuMark {
  wallSec: number;
  machineSec: number;
  oursSec: number;
}

export function cpuMark(): CpuMark {
  return { wallSec: performance.now() / 1000, machineSec: machineBusySec(), oursSec: treeCpuSec(process.pid) };
}

/** Average cores busy between two marks, split three ways. */
export interface CpuShare {
  /** The load process, which had exited by the second mark and reports its own CPU time. */
  loadTool: number;
  /** This benchmark's own processes: the servers under test (the orchestrator idles meanwhile). */
  servers: number;
  /** Everything else on the machine. */
  other: number;
}

export function cpuShare(from: CpuMark, to: CpuMark, loadToolSec: number): CpuShare {
  const wall = to.wallSec - from.wallSec;
  const servers = to.oursSec - from.oursSec;
  const other = Math.max(0, to.machineSec - from.machineSec - servers - loadToolSec);
  const round = (sec: number) => Math.round((sec / wall) * 100) / 100;
  return { loadTool: round(loadToolSec), servers: round(servers), other: round(other) };
}
