/**
 * The checkpointer's thread: its own connection to the node's database, copying WAL frames
 * into the database file (and syncing it) away from the thread that commits writes.
 *
 * A PASSIVE checkpoint never blocks the writer, but under steady writes it never catches up
 * with the end of the WAL either, so the WAL would never restart from its beginning. Once
 * the WAL holds `restartPages`, a RESTART checkpoint follows the passive one: it holds
 * writers off only while it copies the few frames committed since, and the next commit
 * then rewinds the WAL (journal_size_limit trims the file).
 */
import { Database } from "bun:sqlite";

declare const self: Worker;

interface Start {
  type: "start";
  path: string;
  intervalMs: number;
  restartPages: number;
}

const MAX_CATCH_UP = 8;
const RESTART_WHEN_BEHIND = 64;

let db: Database | undefined;
let timer: ReturnType<typeof setInterval> | undefined;
const stats = { passive: 0, restarts: 0, framesCopied: 0, lastMs: 0, maxMs: 0 };

function checkpoint(mode: "PASSIVE" | "RESTART"): { log: number; checkpointed: number } {
  const row = db!.query<{ busy: number; log: number; checkpointed: number }, []>(`PRAGMA wal_checkpoint(${mode})`).get()!;
  return { log: row.log, checkpointed: row.checkpointed };
}

function tick(restartPages: number): void {
  const started = performance.now();
  const passive = checkpoint("PASSIVE");
  stats.passive++;
  stats.framesCopied += Math.max(0, passive.checkpointed);
  if (passive.log >= restartPages) {
    // Catch up first without blocking anyone, so the RESTART that holds writers off has
    // only a few frames left to copy and sync.
    let behind = passive.log - passive.checkpointed;
    for (let pass = 0; pass < MAX_CATCH_UP && behind > RESTART_WHEN_BEHIND; pass++) {
      const p = checkpoint("PASSIVE");
      behind = p.log - p.checkpointed;
    }
    checkpoint("RESTART");
    stats.restarts++;
  }
  stats.lastMs = performance.now() - started;
  stats.maxMs = Math.max(stats.maxMs, stats.lastMs);
  self.postMessage({ type: "stats", stats });
}

self.onmessage = (event: MessageEvent<Start | { type: "stop" }>) => {
  const msg = event.data;
  if (msg.type === "start") {
    db = new Database(msg.path, { strict: true });
    db.exec("PRAGMA busy_timeout = 5000");
    timer = setInterval(() => tick(msg.restartPages), msg.intervalMs);
    self.postMessage({ type: "started" });
    return;
  }
  if (timer) clearInterval(timer);
  db?.close();
  db = undefined;
  self.postMessage({ type: "stopped" });
};
