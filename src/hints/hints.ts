/**
 * Durable hint queues on a fallback node: entries held for an owner that was unreachable,
 * stored in the node's database (so they survive its restart) and removed only after the
 * owner acknowledged them.
 */
import type { Database } from "bun:sqlite";
import { type LogEntry, decodeEntry, encodeEntry } from "../log/entry.ts";

export interface Hint {
  id: number;
  vnode: number;
  entry: LogEntry;
}

export interface HintQueue {
  target: string;
  count: number;
  oldestAgeMs: number;
}

export class HintStore {
  delivered = 0;
  failedDeliveries = 0;

  constructor(
    private readonly db: Database,
    private readonly now: () => number,
  ) {}

  add(target: string, vnode: number, entries: readonly LogEntry[]): void {
    const insert = this.db.query("INSERT INTO hints (target, vnode, body, created_at) VALUES (?, ?, ?, ?)");
    const ts = this.now();
    this.db.transaction(() => {
      for (const e of entries) insert.run(target, vnode, encodeEntry(e), ts);
    }).immediate();
  }

  /** The oldest hints for a target, in the order they were stored. */
  next(target: string, limit: number): Hint[] {
    return this.db
      .query<{ id: number; vnode: number; body: Uint8Array }, [string, number]>("SELECT id, vnode, body FROM hints WHERE target = ? ORDER BY id LIMIT ?")
      .all(target, limit)
      .map((r) => ({ id: r.id, vnode: r.vnode, entry: decodeEntry(r.body) }));
  }

  remove(ids: readonly number[]): void {
    const del = this.db.query("DELETE FROM hints WHERE id = ?");
    this.db.transaction(() => {
      for (const id of ids) del.run(id);
    }).immediate();
    this.delivered += ids.length;
  }

  queues(): HintQueue[] {
    const now = this.now();
    return this.db
      .query<{ target: string; n: number; oldest: number }, []>("SELECT target, COUNT(*) AS n, MIN(created_at) AS oldest FROM hints GROUP BY target ORDER BY target")
      .all()
      .map((r) => ({ target: r.target, count: r.n, oldestAgeMs: now - r.oldest }));
  }

  vnodes(): number[] {
    return this.db.query<{ vnode: number }, []>("SELECT DISTINCT vnode FROM hints").all().map((r) => r.vnode);
  }

  total(): number {
    return this.db.query<{ n: number }, []>("SELECT COUNT(*) AS n FROM hints").get()?.n ?? 0;
  }
}
