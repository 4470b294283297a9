/**
 * Runs WAL checkpoints on a worker thread with its own connection, so a commit never pays
 * for copying the WAL into the database file (with SQLite's automatic checkpoints it does:
 * the commit that crosses the threshold runs the whole checkpoint and its fsync).
 */
export interface CheckpointStats {
  passive: number;
  restarts: number;
  /** RESTARTs not started because a reader pinned older WAL frames (it would only have waited on it). */
  restartsDeferred: number;
  /** RESTARTs that waited restartWaitMs on a reader and gave up; commits were released then. */
  restartsGivenUp: number;
  /** Checkpoints that failed (a full disk, say), tried again at the next tick. */
  failures: number;
  framesCopied: number;
  lastMs: number;
  maxMs: number;
}

export interface CheckpointerOptions {
  intervalMs: number;
  /** WAL pages at which a RESTART checkpoint rewinds the WAL. */
  restartPages: number;
  /** Longest a RESTART waits on readers (its connection's busy timeout), commits held meanwhile. */
  restartWaitMs: number;
}

/** The node's committer, held while a RESTART checkpoint runs (see checkpoint-worker.ts). */
export interface CommitHold {
  holdCommits(): void;
  releaseCommits(): void;
}

/** Commits are released after this even if the checkpointer never says it is done. */
const MAX_HOLD_MS = 2_000;

export class Checkpointer {
  private readonly worker: Worker;
  stats: CheckpointStats = { passive: 0, restarts: 0, restartsDeferred: 0, restartsGivenUp: 0, failures: 0, framesCopied: 0, lastMs: 0, maxMs: 0 };
  private stopped: Promise<void> | undefined;
  /** Set once the store exists; until then a RESTART simply waits for the lock in SQLite. */
  committer: CommitHold | undefined;
  private holdTimer: ReturnType<typeof setTimeout> | undefined;
  /** The committer this checkpointer holds right now, if any. */
  private holding: CommitHold | undefined;

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
        if (e.data.type === "hold-commits") c.hold();
        if (e.data.type === "release-commits") c.release();
      };
      worker.postMessage({ type: "start", path, ...opts });
    });
    // The worker must not keep a stopping node alive.
    worker.unref();
    return c;
  }

  /**
   * Message handlers run between turns of the event loop, never inside a commit, so once
   * the committer is held no transaction of the main connection is open.
   */
  private hold(): void {
    this.holding = this.committer;
    this.holding?.holdCommits();
    this.holdTimer = setTimeout(() => this.release(), MAX_HOLD_MS);
    this.worker.postMessage({ type: "commits-held" });
  }

  private release(): void {
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.holding?.releaseCommits();
    this.holding = undefined;
  }

  /** Stops the thread after its current checkpoint; its connection is closed. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      const done = () => {
        this.worker.terminate();
        this.release();
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
