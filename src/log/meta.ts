/** Small named facts about a data folder (identity, ring state), in the meta table. */
import type { Database } from "bun:sqlite";

export function readMeta(db: Database, name: string): string | undefined {
  return db.query<{ value: string }, [string]>("SELECT value FROM meta WHERE name = ?").get(name)?.value;
}

export function writeMeta(db: Database, name: string, value: string): void {
  db.query("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value").run(name, value);
}
