/**
 * One process per data folder. Two nodes on one folder would each keep their own log heads
 * and projection in memory and write over each other's: duplicate log positions, a projection
 * marked current while the other process still holds newer states, lost writes, all silent.
 * A second `npm start`, or a pod rescheduled while the old one still runs, is enough.
 *
 * The lock is a SQLite database held in exclusive locking mode: SQLite keeps its OS file lock
 * for as long as the connection is open, the kernel drops it when the process dies (kill -9
 * included), and SQLite also sees it from a second connection in the same process. A PID file
 * promises none of that, and node:fs has no flock.
 */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { isBusy } from "./database.ts";

const LOCK_FILE = "node.lock";

export class DataDirInUseError extends Error {}

export interface DataDirLock {
  release(): void;
}

export function lockDataDir(dataDir: string, holder: { nodeId: string; pid: number; now: number }): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, LOCK_FILE);
  const db = new Database(path, { create: true, strict: true });
  try {
    db.exec("PRAGMA busy_timeout = 0");
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    db.exec("PRAGMA journal_mode = MEMORY");
    // The first write takes the exclusive lock, which exclusive locking mode never gives back.
    db.transaction(() => {
      db.exec("CREATE TABLE IF NOT EXISTS holder (node_id TEXT NOT NULL, pid INTEGER NOT NULL, since INTEGER NOT NULL)");
      db.exec("DELETE FROM holder");
      db.query("INSERT INTO holder (node_id, pid, since) VALUES (?, ?, ?)").run(holder.nodeId, holder.pid, holder.now);
    }).exclusive();
  } catch (err) {
    db.close();
    if (isBusy(err)) {
      throw new DataDirInUseError(
        `data folder ${dataDir} is in use by another Ringlog process (it holds ${path}); stop that process or give this one its own --data`,
      );
    }
    throw err;
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      db.close();
    },
  };
}
