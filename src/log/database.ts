/**
 * Opens a node's SQLite database (WAL) and brings its schema up to date from the numbered
 * files in migrations/. A database written by a newer build is refused rather than guessed at.
 */
import { Database } from "bun:sqlite";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { FsyncPolicy } from "../config/settings.ts";

export const MIGRATIONS_DIR = join(import.meta.dir, "..", "..", "migrations");

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export class SchemaTooNewError extends Error {}

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .flatMap((file) => {
      const m = /^(\d+)_([\w-]+)\.sql$/.exec(file);
      return m ? [{ version: Number(m[1]), name: m[2]!, sql: readFileSync(join(dir, file), "utf8") }] : [];
    })
    .sort((a, b) => a.version - b.version);
}

const SYNCHRONOUS: Record<FsyncPolicy, string> = { full: "FULL", normal: "NORMAL", off: "OFF" };

export interface DatabaseTuning {
  fsync: FsyncPolicy;
  /**
   * WAL pages at which the background checkpointer rewinds the WAL. SQLite's own automatic
   * checkpoint, which would run on the commit path, is only a safety net at four times that.
   */
  walCheckpointPages: number;
  mmapBytes: number;
}

export const databasePath = (dataDir: string) => join(dataDir, "ringlog.db");

/** Longest one statement of the node's connection waits on a lock inside SQLite. */
export const BUSY_SLICE_MS = 5;

/** The error SQLite gives when another connection holds the lock a statement needs. */
export const isBusy = (err: unknown) => (err as { code?: string }).code === "SQLITE_BUSY";

export function openDatabase(dataDir: string, tuning: DatabaseTuning, migrations = readMigrations()): Database {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(databasePath(dataDir), { create: true, strict: true });
  // Compaction frees pages all the time; incremental auto-vacuum lets the file give them
  // back. It can only be chosen before the first table exists.
  db.exec("PRAGMA auto_vacuum = INCREMENTAL");
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(`PRAGMA synchronous = ${SYNCHRONOUS[tuning.fsync]}`);
  db.exec(`PRAGMA wal_autocheckpoint = ${tuning.walCheckpointPages * 4}`);
  // After a checkpoint the WAL file is cut back to this, so it stays bounded on disk.
  db.exec(`PRAGMA journal_size_limit = ${tuning.walCheckpointPages * 4096}`);
  db.exec(`PRAGMA mmap_size = ${tuning.mmapBytes}`);
  // A lock held by another connection is waited for in the event loop (see the store's
  // commits), not in SQLite's busy handler, which would block every request meanwhile.
  db.exec(`PRAGMA busy_timeout = ${BUSY_SLICE_MS}`);
  db.exec("PRAGMA cache_size = -65536");
  try {
    migrate(db, migrations);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

export function migrate(db: Database, migrations: Migration[]): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const row = db.query("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null };
  const current = row.v ?? 0;
  const known = migrations.at(-1)?.version ?? 0;
  if (current > known) {
    throw new SchemaTooNewError(
      `database schema is at version ${current}, but this build knows migrations only up to ${known}: ` +
        `it was written by a newer Ringlog. Run that version, or restore a backup made for this one.`,
    );
  }
  const applied: number[] = [];
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(m.version, m.name, Date.now());
    })();
    applied.push(m.version);
  }
  return applied;
}
