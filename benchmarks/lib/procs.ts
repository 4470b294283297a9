/**
 * The processes and temp folders one benchmark run creates, so that every one of them is
 * stopped and removed at the end, also when the run fails or is interrupted.
 */
import type { Subprocess } from "bun";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Child {
  name: string;
  proc: Subprocess;
  /** Where its stdout and stderr go (inside a temp folder of this run). */
  logFile: string;
}

/** A child that has neither exited nor been killed. */
export function running(c: Child): boolean {
  return c.proc.exitCode === null && c.proc.signalCode === null;
}

/** The end of a child's log, for error messages. */
export function logTail(c: Child, lines = 20): string {
  try {
    return readFileSync(c.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

export class Procs {
  private readonly procs = new Set<Subprocess>();
  private readonly dirs: string[] = [];

  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), `ringlog-bench-${prefix}-`));
    this.dirs.push(dir);
    return dir;
  }

  /** Starts a process whose output goes to `<logDir>/<name>.log`. */
  spawn(name: string, cmd: string[], opts: { logDir: string; env?: Record<string, string> }): Child {
    const logFile = join(opts.logDir, `${name}.log`);
    const log = openSync(logFile, "a");
    const proc = Bun.spawn(cmd, { env: { ...process.env, ...opts.env }, stdin: "ignore", stdout: log, stderr: log });
    // The child has its own copy of the descriptor now.
    closeSync(log);
    this.procs.add(proc);
    return { name, proc, logFile };
  }

  /**
   * Runs a process to completion and returns its stdout and the CPU time it used; it is killed
   * after `timeoutMs`.
   */
  async output(name: string, cmd: string[], opts: { stdin?: Blob; env?: Record<string, string | undefined>; timeoutMs: number }): Promise<{ out: string; cpuSec: number }> {
    const proc = Bun.spawn(cmd, { stdin: opts.stdin ?? "ignore", stdout: "pipe", stderr: "pipe", env: opts.env ?? process.env });
    this.procs.add(proc);
    const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs);
    try {
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      if (code !== 0) throw new Error(`${name} exited with ${code ?? proc.signalCode}: ${err.trim().slice(-2000)}`);
      return { out, cpuSec: Number(proc.resourceUsage()?.cpuTime.total ?? 0n) / 1e6 };
    } finally {
      clearTimeout(timer);
      this.procs.delete(proc);
    }
  }

  /** SIGTERM, then SIGKILL for whatever has not exited within `graceMs`; then removes the temp folders. */
  async stopAll(graceMs = 5000): Promise<void> {
    const live = [...this.procs].filter((p) => p.exitCode === null && p.signalCode === null);
    for (const p of live) p.kill("SIGTERM");
    const timer = setTimeout(() => {
      for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    }, graceMs);
    await Promise.all(live.map((p) => p.exited));
    clearTimeout(timer);
    this.procs.clear();
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

/** Polls `url` until it answers 200; fails early, with the log, if the child exits. */
export async function waitHttpOk(url: string, child: Child, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!running(child)) throw new Error(`${child.name} exited (${child.proc.exitCode ?? child.proc.signalCode}):\n${logTail(child)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await Bun.sleep(50);
  }
  throw new Error(`${child.name}: ${url} not ready after ${timeoutMs} ms:\n${logTail(child)}`);
}

/** Sends a signal to a child and waits until it is gone. */
export async function stop(child: Child, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (running(child)) child.proc.kill(signal);
  await child.proc.exited;
}
