/**
 * Starts real Ringlog node processes on 127.0.0.1 with their own data folders, for tests
 * that need real I/O: crashes, restarts, bad traffic.
 */
import type { Subprocess } from "bun";
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");

export function tempDir(prefix = "ringlog-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
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

export interface NodeOptions {
  dataDir?: string;
  port?: number;
  nodeId?: string;
  env?: Record<string, string>;
  /** Wait for /readyz before returning (default true). */
  waitReady?: boolean;
}

export class NodeProcess {
  proc!: Subprocess;
  readonly url: string;

  private constructor(
    readonly dataDir: string,
    readonly port: number,
    readonly nodeId: string,
    private readonly env: Record<string, string>,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(opts: NodeOptions = {}): Promise<NodeProcess> {
    const node = new NodeProcess(opts.dataDir ?? tempDir(), opts.port ?? (await freePort()), opts.nodeId ?? "n1", opts.env ?? {});
    await node.launch(opts.waitReady ?? true);
    return node;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get pid(): number {
    return this.proc.pid;
  }

  private async launch(waitReady = true): Promise<void> {
    const log = openSync(join(this.dataDir, "node.log"), "a");
    this.proc = Bun.spawn([process.execPath, CLI, "node", "--data", this.dataDir, "--port", String(this.port), "--node-id", this.nodeId], {
      env: { ...process.env, RINGLOG_LOG_LEVEL: "warn", ...this.env },
      stdout: log,
      stderr: log,
      stdin: "ignore",
    });
    if (waitReady) await this.waitReady();
  }

  async waitReady(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`node ${this.nodeId} exited with ${this.proc.exitCode}; see ${this.dataDir}/node.log`);
      try {
        const r = await fetch(`${this.url}/readyz`);
        if (r.ok) return;
      } catch {
        // not listening yet
      }
      await Bun.sleep(50);
    }
    throw new Error(`node ${this.nodeId} not ready after ${timeoutMs} ms`);
  }

  /** Sends a signal and waits for the process to be gone. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    this.proc.kill(signal);
    await this.proc.exited;
  }

  async restart(): Promise<void> {
    if (this.running) await this.kill("SIGTERM");
    await this.launch();
  }

  /** Stops the node and removes its data folder. */
  async destroy(): Promise<void> {
    if (this.running) await this.kill("SIGKILL");
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
