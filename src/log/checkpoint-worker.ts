/**
 * The checkpointer's thread: its own connection to the node's database, copying WAL frames
 * into the database file (and syncing it) away from the thread that commits writes.
 *
 * A PASSIVE checkpoint never blocks the writer, but under steady writes it never catches up
 * with the end of the WAL either, so the WAL would never restart from its beginning. Once
 * the WAL holds `restartPages`, a RESTART checkpoint follows the passive one: it holds
 * writers off only while it copies the few frames committed since, and the next commit
 * then rewinds the WAL (journal_size_limit trims the file).
 *
 * Before a RESTART the thread asks the node's writer to hold its commits and waits for the
 * answer. A commit that instead ran into the RESTART would block the event loop inside
 * SQLite's busy handler, whose growing sleeps stretched a 20 ms checkpoint into 40–90 ms
 * stalls of every request; held commits simply queue while reads go on being served.
 *
 * A RESTART also waits for every reader to finish, and keeps new writers out while it does.
 * A reader from outside the node (a backup through the sqlite3 shell, say) can last minutes,
 * and with a long wait the held commits were released into a RESTART still waiting on it:
 * the next commit blocked the event loop for 3 s, at every RESTART while the reader lasted.
 * So a RESTART is not started while a reader pins frames a PASSIVE pass could not copy, and
 * one started anyway (a reader came in between) waits `restartWaitMs` at most, then gives up
 * until a later tick. The WAL keeps growing for as long as such a reader lasts.
 */
import { Database } from "bun:sqlite";

declare const self: Worker;

interface Start {
  type: "start";
  path: string;
  intervalMs: number;
  restartPages: number;
  restartWaitMs: number;
}

interface Pass {
  /** Nonzero when the checkpoint could not finish (a RESTART that gave up waiting). */
  busy: number;
  log: number;
  checkpointed: number;
}

const MAX_CATCH_UP = 16;
const FEW_FRAMES = 64;

let db: Database | undefined;
let timer: ReturnType<typeof setInterval> | undefined;
/** A RESTART is due and waits for the writer to hold its commits. */
let restartDue = false;
const stats = { passive: 0, restarts: 0, restartsDeferred: 0, restartsGivenUp: 0, failures: 0, framesCopied: 0, lastMs: 0, maxMs: 0 };

function checkpoint(mode: "PASSIVE" | "RESTART"): Pass {
  return db!.query<Pass, []>(`PRAGMA wal_checkpoint(${mode})`).get()!;
}

/**
 * A checkpoint that fails (the disk full, say) is counted and tried again at the next tick.
 * Thrown out of the timer it would end this thread, and with it every checkpoint until the
 * node restarts.
 */
function tick(restartPages: number): void {
  if (restartDue) return;
  const started = performance.now();
  try {
    const passive = checkpoint("PASSIVE");
    stats.passive++;
    stats.framesCopied += Math.max(0, passive.checkpointed);
    if (passive.log >= restartPages) {
      const last = catchUp(passive);
      if (last.log - last.checkpointed > FEW_FRAMES) {
        stats.restartsDeferred++;
      } else {
        restartDue = true;
        self.postMessage({ type: "hold-commits" });
      }
    }
  } catch {
    stats.failures++;
  }
  finish(started);
}

/**
 * Passes until one starts with few frames new since the previous one. A pass copies what was
 * committed during the one before, so the frames left when writers are held are the few of
 * a short pass and the message round trip, not what a long pass let pile up. What stays
 * behind is what the held RESTART copies and syncs: its sync grows with the frames copied
 * (20–50 µs a frame measured), and writers wait for all of it.
 */
function catchUp(first: Pass): Pass {
  let last = first;
  for (let pass = 0; pass < MAX_CATCH_UP; pass++) {
    const p = checkpoint("PASSIVE");
    const fresh = p.log - last.log;
    last = p;
    if (fresh <= FEW_FRAMES) break;
  }
  return last;
}

function restart(): void {
  const started = performance.now();
  try {
    if (checkpoint("RESTART").busy) stats.restartsGivenUp++;
    else stats.restarts++;
  } catch {
    stats.failures++;
  } finally {
    restartDue = false;
    self.postMessage({ type: "release-commits" });
  }
  finish(started);
}

function finish(started: number): void {
  stats.lastMs = performance.now() - started;
  stats.maxMs = Math.max(stats.maxMs, stats.lastMs);
  self.postMessage({ type: "stats", stats });
}

self.onmessage = (event: MessageEvent<Start | { type: "stop" } | { type: "commits-held" }>) => {
  const msg = event.data;
  if (msg.type === "commits-held") {
    if (db && restartDue) restart();
    return;
  }
  if (msg.type === "start") {
    db = new Database(msg.path, { strict: true });
    // Only a RESTART waits in the busy handler (PASSIVE never does): this bounds its wait.
    db.exec(`PRAGMA busy_timeout = ${msg.restartWaitMs}`);
    timer = setInterval(() => tick(msg.restartPages), msg.intervalMs);
    self.postMessage({ type: "started" });
    return;
  }
  if (timer) clearInterval(timer);
  db?.close();
  db = undefined;
  self.postMessage({ type: "stopped" });
};
