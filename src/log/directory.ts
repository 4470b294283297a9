/**
 * Where each vnode's log lives in the append-only events table: the row id of every entry,
 * by sequence number. A vnode's entries always hold the contiguous sequence numbers after
 * what compaction removed, so an entry's place in its vnode's list is its sequence number.
 *
 * It replaces a per-vnode B-tree index on the table. Every group commit touched one leaf of
 * that index for each vnode it wrote to, and each of those leaves is one more page in the
 * write-ahead log: without them, a third fewer pages per entry were written (3.3 to 2.2). The
 * directory is rebuilt from the table at start-up (one pass over the row ids) and holds one
 * number per entry in memory; compaction keeps the entries to a bounded tail per vnode.
 */
export class LogDirectory {
  private readonly logs = new Map<number, { first: number; ids: number[] }>();

  /** Records the row of the vnode's next entry; sequence numbers must come in order. */
  append(vnode: number, seq: number, id: number): void {
    const log = this.logs.get(vnode);
    if (!log || log.ids.length === 0) {
      this.logs.set(vnode, { first: seq, ids: [id] });
      return;
    }
    if (seq !== log.first + log.ids.length) throw new Error(`vnode ${vnode}: log entry ${seq} does not follow ${log.first + log.ids.length - 1}`);
    log.ids.push(id);
  }

  /** Row ids of the vnode's entries with afterSeq < seq ≤ uptoSeq, at most `limit`, in log order. */
  rows(vnode: number, afterSeq: number, uptoSeq: number, limit = Infinity): number[] {
    const log = this.logs.get(vnode);
    if (!log) return [];
    const from = Math.max(0, afterSeq + 1 - log.first);
    const to = Math.min(log.ids.length, uptoSeq + 1 - log.first, from + limit);
    return to > from ? log.ids.slice(from, to) : [];
  }

  /** Forgets the vnode's entries up to and including `seq` (they were compacted away). */
  dropThrough(vnode: number, seq: number): void {
    const log = this.logs.get(vnode);
    if (!log || seq < log.first) return;
    const n = Math.min(log.ids.length, seq + 1 - log.first);
    log.ids.splice(0, n);
    log.first += n;
  }

  /** The lowest row id any vnode's log still holds, and that vnode; undefined when every log is empty. */
  oldest(): { vnode: number; row: number } | undefined {
    let found: { vnode: number; row: number } | undefined;
    for (const [vnode, log] of this.logs) {
      const row = log.ids[0];
      if (row !== undefined && (found === undefined || row < found.row)) found = { vnode, row };
    }
    return found;
  }

  /** The vnode's first entry still in the log, or undefined when its log is empty. */
  first(vnode: number): number | undefined {
    const log = this.logs.get(vnode);
    return log && log.ids.length > 0 ? log.first : undefined;
  }

  length(vnode: number): number {
    return this.logs.get(vnode)?.ids.length ?? 0;
  }

  /** Entries in every vnode's log. */
  total(): number {
    let n = 0;
    for (const log of this.logs.values()) n += log.ids.length;
    return n;
  }

  vnodes(): number[] {
    return [...this.logs.keys()].filter((v) => this.length(v) > 0);
  }
}
