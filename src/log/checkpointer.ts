/**
 * Runs WAL checkpoints on a worker thread with its own connection, so a commit never pays
 * for copying the WAL into the database file (with SQLite's automatic checkpoints it does:
 * the commit that crosses the threshold runs the whole checkpoint and its fsync).
 */
export interface CheckpointStats {
  passive: number;
  restarts: number;
  framesCopied: number;
  lastMs: number;
  maxMs: number;
}

export interface CheckpointerOptions {
  intervalMs: number;
  /** WAL pages at which a RESTART checkpoint rewinds the WAL. */
  restartPages: number;
}

export class Checkpointer {
  private readonly worker: Worker;
  stats: CheckpointStats = { passive: 0, restarts: 0, framesCopied: 0, lastMs: 0, maxMs: 0 };
  private stopped: Promise<void> | undefined;

  private constructor(worker: Worker) {
    this.worker = worker;
  }

  static async start(path: string, opts: CheckpointerOptions): Promise<Checkpointer> {
    const worker = new Worker(new URL("./checkpoint-worker.ts", import.meta.url));
    const c = new Checkpointer(worker);
    await new Promise<void>((resolve, reject) => {
      worker.onerror = (e) => reject(new Error(`checkpointer failed to start: ${e.message}`));
      worker.onmessage = (e: MessageEvent<{ type: string; stats?: CheckpointStats }>) => {
        if (e.data.type === "started") resolve();
        if (e.data.type === "stats" && e.data.stats) c.stats = e.data.stats;
      };
      worker.postMessage({ type: "start", path, ...opts });
    });
    // The worker must not keep a stopping node alive.
    worker.unref();
    return c;
  }

  /** Stops the thread after its current checkpoint; its connection is closed. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      const done = () => {
        this.worker.terminate();
        resolve();
      };
      const timer = setTimeout(done, 2_000);
      this.worker.onmessage = (e: MessageEvent<{ type: string }>) => {
        if (e.data.type === "stopped") {
          clearTimeout(timer);
          done();
        }
      };
      this.worker.postMessage({ type: "stop" });
    });
    return this.stopped;
  }
}
