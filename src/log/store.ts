/**
 * The node's storage: per-vnode append-only event logs, the projection derived from them,
 * and per-vnode snapshots that let the log be compacted.
 *
 * Writes are group-committed: every write queued while the previous transaction ran goes
 * into the next one, and a write's promise resolves only after its transaction commits, so
 * an acknowledged write survives kill -9.
 *
 * The log is the only thing a commit must write. The projection is written behind it, as
 * Cassandra writes memtables: a vnode's changed states stay in memory until enough of them
 * (or old enough ones) are there, then go to the stored projection in one sorted transaction
 * per vnode. Keyed randomly, each changed state otherwise dirtied a B-tree page of its own
 * in every commit, which the write-ahead log and the checkpoint each wrote out again.
 */
import type { Database } from "bun:sqlite";
import { SpanStatusCode, type Span } from "@opentelemetry/api";
import { type KeyState, EMPTY_STATE, decodeState, encodeState, isTombstone, statesEqual } from "../clock/fold.ts";
import { type LogEntry, applyEntry, decodeEntry, encodeEntry, entryKey } from "./entry.ts";
import { tracer } from "../telemetry/tracing.ts";
import { LogDirectory } from "./directory.ts";
import { isBusy } from "./database.ts";

/** What a write decides, given the key's current state inside the commit. */
export type Decision = { entry: LogEntry; next: KeyState } | { reject: Error } | { unchanged: true };

export interface WriteOutcome {
  vnode: number;
  state: KeyState;
  /** False when the event was already known (a duplicate delivery): nothing was appended. */
  appended: boolean;
}

interface Pending {
  vnode: number;
  key: string;
  /** When the write was queued. */
  since: number;
  decide: (state: KeyState) => Decision;
  resolve: (o: WriteOutcome) => void;
  reject: (e: Error) => void;
  span: Span;
}

/** A key whose stored state changed in a commit: its canonical state bytes before and after. */
export interface StateChange {
  vnode: number;
  key: string;
  before: Uint8Array | null;
  /** null when the key was removed (a collected tombstone). */
  after: Uint8Array | null;
  /** `after` holds only deletes (a tombstone that may later be collected). */
  tombstone: boolean;
}

export interface StoreOptions {
  groupCommitMaxBatch: number;
  snapshotEvery: number;
  /** A vnode is also compacted once its log tail exceeds this many times its key count. */
  snapshotTailRatio: number;
  /** Changed states a vnode keeps in memory before they are written; 0 writes them in every commit. */
  projectionFlushKeys: number;
  /** Longest a changed state waits in memory before its vnode is written. */
  projectionFlushMs: number;
  /** Longest queued writes wait for a write lock another connection holds. */
  busyWaitMs: number;
  now: () => number;
}

export interface StoreStats {
  commits: number;
  eventsAppended: number;
  snapshots: number;
  largestBatch: number;
  /** Transactions that wrote a vnode's changed states to the stored projection. */
  projectionWrites: number;
  /** Projection writes that failed (and were retried later). */
  projectionWriteFailures: number;
  /** Steps of background snapshot work that failed (and were retried later). */
  snapshotFailures: number;
  /** Commits tried again because another connection held the write lock. */
  commitBusyRetries: number;
  /** At start-up: vnodes whose stored projection lagged (a crash), and the log entries folded to catch them up. */
  catchUpVnodes: number;
  catchUpEntries: number;
}

const MIN_TAIL = 16;
const VACUUM_PAGES_PER_STEP = 256;
/** Keys copied into a snapshot per step: about 2 ms (median). */
const SNAPSHOT_KEYS_PER_STEP = 256;
/** Log rows one step deletes from the front of the table: neighbours, so a few pages. */
const SWEEP_ROWS_PER_STEP = 1024;
/** Log rows whose keys one step lists (a vnode's rows are spread over the table: a page each). */
const SNAPSHOT_ROWS_PER_STEP = 1024;
/**
 * Vnodes under a uniform load reach their limits (log tail, unwritten states) together; each
 * vnode's limits are stretched by up to this fraction so their snapshots and projection writes
 * spread out instead of queueing up.
 */
const LIMIT_SPREAD = 0.5;
/** Background work that failed (a projection write, a snapshot step) is tried again this much later. */
const RETRY_MS = 1_000;
/** A commit that met another connection's write lock is tried again this much later. */
const BUSY_RETRY_MS = 20;
/** The fixed factor, in [1, 1 + LIMIT_SPREAD), a vnode's limits are stretched by. */
const stretch = (vnode: number) => 1 + LIMIT_SPREAD * ((vnode * 0.6180339887) % 1);

/**
 * A snapshot being brought forward to `seq` a step at a time, between commits: first the log
 * tail's keys are listed, then their states copied. A commit that changes a key still pending
 * (or, while the listing runs, any key not yet kept) first copies the key's state as it was at
 * `seq`, so what the snapshot ends up holding is exactly the projection at `seq`.
 */
interface Building {
  vnode: number;
  seq: number;
  /** The log tail's rows, and how many of them have had their keys listed. */
  rows: number[];
  listed: number;
  /** Keys a commit changed while the listing ran: their state at `seq` is already kept. */
  kept: Set<string>;
  /** Keys the log tail touched whose state at `seq` is not copied yet. */
  pending: Set<string>;
  /** The tail's keys in key order, the order copies go in (neighbours share B-tree pages). */
  order: string[];
  copied: number;
  /** Keys with no state at `seq`: dropped from the snapshot when it is finished. */
  absent: string[];
}

/** A vnode's states committed to its log but not yet to the stored projection (null: no state). */
interface Unwritten {
  states: Map<string, Uint8Array | null>;
  /** When the oldest of them was committed. */
  since: number;
}

const utf8 = new TextEncoder();
/** SQLite's order of TEXT keys (their UTF-8 bytes), which JS string order differs from above U+FFFF. */
const byteOrder = (a: string, b: string) => Buffer.compare(utf8.encode(a), utf8.encode(b));

export class LogStore {
  private readonly queue: Pending[] = [];
  private flushScheduled = false;
  private readonly heads = new Map<number, number>();
  private readonly snapshotSeq = new Map<number, number>();
  private readonly snapshotDue = new Set<number>();
  /** Vnodes being handed off: their logs are not compacted until the transfer lets go. */
  private readonly holds = new Map<number, number>();
  /** Keys per vnode, so compaction can keep the log tail proportional to the live data. */
  private readonly keyCounts = new Map<number, number>();
  private building: Building | undefined;
  private readonly directory = new LogDirectory();
  /**
   * Log rows compaction has dropped from the directory but not yet deleted from the table.
   * They are deleted from the front of the table only, in row id order, up to the oldest row
   * any vnode still needs (see sweepStep).
   */
  private deadRows = 0;
  /**
   * Set by compaction, which is what moves the oldest row any vnode still needs (the only
   * thing that puts compacted rows below it); cleared by a sweep that finds no more there.
   */
  private sweepPending = false;
  /** Set by compaction, after which a vnode may be holding back too many rows (see unpinSweep). */
  private unpinCheckDue = false;
  private closed = false;
  /** Commits and snapshots wait while the checkpointer rewinds the WAL. */
  private held = false;
  /** The last commit found the write lock held by another connection. */
  private busy = false;
  private snapshotScheduled = false;
  /**
   * Per vnode, what the stored projection lacks. Each such vnode has a row in projection_lag
   * with the log position the stored projection reflects, written in the commit that made it
   * lag and deleted in the transaction that catches it up, so a crash loses nothing: start-up
   * folds the log after that position.
   */
  private readonly unwritten = new Map<number, Unwritten>();
  private readonly writeDue = new Set<number>();
  private writeScheduled = false;
  private ageTimer: ReturnType<typeof setTimeout> | undefined;
  readonly stats: StoreStats = { commits: 0, eventsAppended: 0, snapshots: 0, largestBatch: 0, projectionWrites: 0, projectionWriteFailures: 0, snapshotFailures: 0, commitBusyRetries: 0, catchUpVnodes: 0, catchUpEntries: 0 };
  /** Told of every committed state change, in commit order (anti-entropy keeps its trees with it). */
  onChange: ((changes: StateChange[]) => void) | undefined;

  private readonly selectState;
  private readonly insertEvent;
  private readonly upsertState;
  private readonly deleteState;
  private readonly upsertSnapshotState;
  private readonly deleteSnapshotState;
  private readonly copyStates;
  private readonly missingStates;
  private readonly sweepRows;
  private readonly rowKeys;
  private readonly rowEntries;
  private readonly insertLag;
  private readonly deleteLag;

  constructor(
    private readonly db: Database,
    private readonly opts: StoreOptions,
  ) {
    this.selectState = db.query<{ state: Uint8Array }, [number, string]>("SELECT state FROM projection WHERE vnode = ? AND key = ?");
    this.insertEvent = db.query("INSERT INTO events (vnode, seq, key, body) VALUES (?, ?, ?, ?)");
    this.upsertState = db.query(
      "INSERT INTO projection (vnode, key, state) VALUES (?, ?, ?) ON CONFLICT (vnode, key) DO UPDATE SET state = excluded.state",
    );
    this.deleteState = db.query("DELETE FROM projection WHERE vnode = ? AND key = ?");
    this.upsertSnapshotState = db.query(
      "INSERT INTO snapshot_states (vnode, key, state) VALUES (?, ?, ?) ON CONFLICT (vnode, key) DO UPDATE SET state = excluded.state",
    );
    this.deleteSnapshotState = db.query("DELETE FROM snapshot_states WHERE vnode = ? AND key = ?");
    // Keys go in as one JSON array, so a chunk is two statements, not two per key. CROSS JOIN
    // keeps the planner from scanning the vnode's projection once per listed key.
    this.copyStates = db.query(
      `INSERT INTO snapshot_states (vnode, key, state)
         SELECT p.vnode, p.key, p.state FROM json_each(?2) j CROSS JOIN projection p ON p.vnode = ?1 AND p.key = j.value WHERE true
       ON CONFLICT (vnode, key) DO UPDATE SET state = excluded.state`,
    );
    this.missingStates = db.query<{ key: string }, [number, string]>(
      "SELECT j.value AS key FROM json_each(?2) j WHERE NOT EXISTS (SELECT 1 FROM projection p WHERE p.vnode = ?1 AND p.key = j.value)",
    );
    for (const r of db.query<{ vnode: number; seq: number }, []>("SELECT vnode, seq FROM snapshots").all()) {
      this.snapshotSeq.set(r.vnode, r.seq);
      this.heads.set(r.vnode, r.seq);
    }
    this.sweepRows = db.query("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id < ? ORDER BY id LIMIT ?)");
    // Row ids go in as one JSON array; the directory knows which rows are a vnode's.
    this.rowKeys = db.query<{ key: string }, [string]>("SELECT DISTINCT key FROM events WHERE id IN (SELECT value FROM json_each(?))");
    this.rowEntries = db.query<{ seq: number; body: Uint8Array }, [string]>("SELECT seq, body FROM events WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id");
    this.insertLag = db.query("INSERT INTO projection_lag (vnode, seq) VALUES (?, ?) ON CONFLICT (vnode) DO NOTHING");
    this.deleteLag = db.query("DELETE FROM projection_lag WHERE vnode = ?");
    for (const r of db.query<{ id: number; vnode: number; seq: number }, []>("SELECT id, vnode, seq FROM events ORDER BY id").iterate()) {
      this.directory.append(r.vnode, r.seq, r.id);
      this.heads.set(r.vnode, Math.max(r.seq, this.heads.get(r.vnode) ?? 0));
    }
    // Rows a snapshot covers that the last process had not deleted yet.
    for (const vnode of this.directory.vnodes()) this.compact(vnode, this.snapshotSeq.get(vnode) ?? 0);
    for (const r of db.query<{ vnode: number; n: number }, []>("SELECT vnode, COUNT(*) AS n FROM projection GROUP BY vnode").all()) {
      this.keyCounts.set(r.vnode, r.n);
    }
    for (const r of db.query<{ vnode: number; seq: number }, []>("SELECT vnode, seq FROM projection_lag").all()) this.catchUp(r.vnode, r.seq);
    this.scheduleSnapshotNext();
  }

  /**
   * Folds the log after `seq` into the vnode's stored projection: what a crash left unwritten.
   * When that write fails (a full disk, say) the states wait in memory, readable, with the
   * lag row in place, as after any failed projection write: the node still starts.
   */
  private catchUp(vnode: number, seq: number): void {
    // Nothing is unwritten yet at start-up, so a read is of the stored projection.
    const stored = new Set<string>();
    const folded = this.foldLog(vnode, seq, (key) => {
      const state = this.read(vnode, key);
      if (state !== EMPTY_STATE) stored.add(key);
      return state;
    });
    const states: [string, Uint8Array | null][] = [];
    for (const [key, state] of folded) {
      const after = state === EMPTY_STATE ? null : encodeState(state);
      if (stored.has(key) !== (after !== null)) this.keyCounts.set(vnode, (this.keyCounts.get(vnode) ?? 0) + (after === null ? -1 : 1));
      states.push([key, after]);
    }
    try {
      this.storeStates(vnode, states);
    } catch {
      this.unwritten.set(vnode, { states: new Map(states), since: this.opts.now() });
      this.retryProjectionLater(vnode);
    }
    this.stats.catchUpVnodes++;
    this.stats.catchUpEntries += this.head(vnode) - seq;
  }

  /** The states of the keys the vnode's log touches after `from`, folded onto `base` (EMPTY_STATE: none). */
  private foldLog(vnode: number, from: number, base: (key: string) => KeyState): Map<string, KeyState> {
    const states = new Map<string, KeyState>();
    for (const r of this.rowEntries.iterate(JSON.stringify(this.directory.rows(vnode, from, Infinity)))) {
      const e = decodeEntry(r.body);
      const key = entryKey(e);
      states.set(key, applyEntry(states.get(key) ?? base(key), e));
    }
    return states;
  }

  read(vnode: number, key: string): KeyState {
    const bytes = this.readBytes(vnode, key);
    return bytes ? decodeState(bytes) : EMPTY_STATE;
  }

  /** The key's state bytes (canonical), or null when the key has none. */
  readBytes(vnode: number, key: string): Uint8Array | null {
    const unwritten = this.unwritten.get(vnode)?.states.get(key);
    if (unwritten !== undefined) return unwritten;
    return this.selectState.get(vnode, key)?.state ?? null;
  }

  head(vnode: number): number {
    return this.heads.get(vnode) ?? 0;
  }

  write(vnode: number, key: string, decide: (state: KeyState) => Decision): Promise<WriteOutcome> {
    if (this.closed) return Promise.reject(new Error("store is closed"));
    return new Promise((resolve, reject) => {
      const span = tracer.startSpan("log.commit", { attributes: { "ringlog.vnode": vnode } });
      this.queue.push({ vnode, key, since: this.opts.now(), decide, resolve, reject, span });
      this.scheduleFlush();
    });
  }

  /**
   * Folds entries shipped from another node into this node's logs. An entry that changes
   * nothing (a duplicate delivery) is not appended, so redelivery costs no log space.
   */
  applyEntries(vnode: number, entries: readonly LogEntry[]): Promise<WriteOutcome[]> {
    return Promise.all(
      entries.map((entry) =>
        this.write(vnode, entryKey(entry), (state) => {
          const next = applyEntry(state, entry);
          // States remember their bytes, so this compares the bytes the commit stores anyway.
          return next === state || statesEqual(next, state) ? { unchanged: true } : { entry, next };
        }),
      ),
    );
  }

  /** Holds commits (they queue) until release: a RESTART checkpoint is about to run. */
  holdCommits(): void {
    this.held = true;
  }

  releaseCommits(): void {
    if (!this.held) return;
    this.held = false;
    this.scheduleFlush();
    this.scheduleSnapshotNext();
    this.scheduleWriteNext();
  }

  /**
   * Everything queued until the next turn of the event loop goes into one transaction. While
   * another connection holds the write lock, commits are tried again every BUSY_RETRY_MS: the
   * writes wait in the queue and the event loop goes on serving reads, where SQLite's busy
   * handler (5 s here before) blocked every request of the node.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.held || this.queue.length === 0) return;
    this.flushScheduled = true;
    if (this.busy) setTimeout(() => this.flush(), BUSY_RETRY_MS);
    else setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.held) return;
    const batch = this.queue.splice(0, this.opts.groupCommitMaxBatch);
    this.scheduleFlush();
    if (batch.length === 0) return;

    const outcomes: (WriteOutcome | Error)[] = new Array(batch.length);
    const touched = new Map<string, { vnode: number; key: string; state: KeyState; before: Uint8Array | null }>();
    const headsBefore = new Map(this.heads);
    const changes: StateChange[] = [];
    /** Vnodes this commit made lag (their lag row is written in it). */
    const lagging = new Set<number>();
    const appended: { vnode: number; seq: number; id: number }[] = [];
    let appendedBytes = 0;
    try {
      this.db.transaction(() => {
        batch.forEach((p, i) => {
          const id = `${p.vnode}\u0000${p.key}`;
          const seen = touched.get(id);
          const beforeBytes = seen ? seen.before : this.readBytes(p.vnode, p.key);
          const current = seen?.state ?? (beforeBytes ? decodeState(beforeBytes) : EMPTY_STATE);
          let decision: Decision;
          try {
            decision = p.decide(current);
          } catch (err) {
            outcomes[i] = err as Error;
            return;
          }
          if ("reject" in decision) {
            outcomes[i] = decision.reject;
          } else if ("unchanged" in decision) {
            outcomes[i] = { vnode: p.vnode, state: current, appended: false };
          } else {
            const seq = (this.heads.get(p.vnode) ?? 0) + 1;
            this.heads.set(p.vnode, seq);
            const body = encodeEntry(decision.entry);
            appendedBytes += body.byteLength;
            appended.push({ vnode: p.vnode, seq, id: Number(this.insertEvent.run(p.vnode, seq, p.key, body).lastInsertRowid) });
            touched.set(id, { vnode: p.vnode, key: p.key, state: decision.next, before: beforeBytes });
            outcomes[i] = { vnode: p.vnode, state: decision.next, appended: true };
          }
        });
        for (const t of touched.values()) {
          const b = this.building;
          if (b?.vnode === t.vnode) this.beforeChange(b, t.key, t.before);
          const after = t.state === EMPTY_STATE ? null : encodeState(t.state);
          if (this.opts.projectionFlushKeys === 0) {
            if (after === null) this.deleteState.run(t.vnode, t.key);
            else this.upsertState.run(t.vnode, t.key, after);
          } else if (!this.unwritten.has(t.vnode) && !lagging.has(t.vnode)) {
            lagging.add(t.vnode);
            this.insertLag.run(t.vnode, headsBefore.get(t.vnode) ?? 0);
          }
          changes.push({ vnode: t.vnode, key: t.key, before: t.before, after, tombstone: after !== null && isTombstone(t.state) });
          if (after === null && t.before !== null) this.keyCounts.set(t.vnode, (this.keyCounts.get(t.vnode) ?? 1) - 1);
          if (after !== null && t.before === null) this.keyCounts.set(t.vnode, (this.keyCounts.get(t.vnode) ?? 0) + 1);
        }
        // IMMEDIATE takes the write lock up front, where SQLite waits on the checkpointer's
        // RESTART; a deferred transaction upgrading from its first read would fail at once.
      }).immediate();
    } catch (err) {
      this.heads.clear();
      for (const [v, s] of headsBefore) this.heads.set(v, s);
      // Its copies of pending keys were rolled back with the commit.
      this.abandonBuilding();
      let failed = batch;
      if (isBusy(err)) {
        // Nothing was decided (BEGIN IMMEDIATE is where the lock is taken): the writes that
        // have not waited busyWaitMs yet go back to the front of the queue.
        this.busy = true;
        const oldest = this.opts.now() - this.opts.busyWaitMs;
        failed = batch.filter((p) => p.since <= oldest);
        this.queue.unshift(...batch.filter((p) => p.since > oldest));
        this.stats.commitBusyRetries++;
        this.scheduleFlush();
      }
      for (const p of failed) {
        p.span.recordException(err as Error);
        p.span.setStatus({ code: SpanStatusCode.ERROR, message: "commit failed" });
        p.span.end();
        p.reject(err as Error);
      }
      return;
    }

    this.busy = false;
    for (const a of appended) this.directory.append(a.vnode, a.seq, a.id);
    if (this.opts.projectionFlushKeys > 0) this.keepUnwritten(changes);
    this.stats.commits++;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, batch.length);
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      // Untraced (the usual case), a write's span records nothing: skip building its attributes.
      if (p.span.isRecording()) {
        p.span.setAttributes({
          "ringlog.batch_size": batch.length,
          "ringlog.batch_bytes": appendedBytes,
          "ringlog.outcome": o instanceof Error ? "rejected" : o.appended ? "appended" : "unchanged",
        });
      }
      p.span.end();
      if (o instanceof Error) {
        p.reject(o);
      } else {
        if (o.appended) this.stats.eventsAppended++;
        p.resolve(o);
      }
    });
    this.onChange?.(changes);
    this.scheduleSnapshots(touched.values());
  }

  /** Adds the states a commit changed to their vnodes' unwritten ones; a vnode with enough of them is due. */
  private keepUnwritten(changes: readonly StateChange[]): void {
    if (changes.length === 0) return;
    const now = this.opts.now();
    for (const c of changes) {
      let u = this.unwritten.get(c.vnode);
      if (!u) {
        u = { states: new Map(), since: now };
        this.unwritten.set(c.vnode, u);
      }
      u.states.set(c.key, c.after);
      if (u.states.size >= Math.ceil(this.opts.projectionFlushKeys * stretch(c.vnode))) this.writeDue.add(c.vnode);
    }
    this.scheduleWriteNext();
    this.watchAges();
  }

  /** Marks vnodes whose oldest unwritten state is projectionFlushMs old as due, while any are unwritten. */
  private watchAges(): void {
    if (this.ageTimer !== undefined || this.closed || this.unwritten.size === 0) return;
    this.ageTimer = setTimeout(() => {
      this.ageTimer = undefined;
      const now = this.opts.now();
      for (const [vnode, u] of this.unwritten) if (now - u.since >= this.opts.projectionFlushMs) this.writeDue.add(vnode);
      this.scheduleWriteNext();
      this.watchAges();
    }, Math.max(1, Math.ceil(this.opts.projectionFlushMs / 4)));
    // Unwritten states are safe in the log; they alone should not keep the process alive.
    this.ageTimer.unref();
  }

  /** One vnode written per turn of the event loop, so commits run between them. */
  private scheduleWriteNext(): void {
    if (this.writeScheduled || this.held || this.closed || this.writeDue.size === 0) return;
    this.writeScheduled = true;
    setImmediate(() => {
      this.writeScheduled = false;
      if (this.closed || this.held) return;
      const [vnode] = this.writeDue;
      if (vnode !== undefined) {
        try {
          this.writeProjection(vnode);
        } catch {
          this.retryProjectionLater(vnode);
        }
      }
      this.scheduleWriteNext();
    });
  }

  /**
   * A projection write failed (the database busy or full): the states stay in memory and the
   * lag row in place, so nothing is lost, only written later.
   */
  private retryProjectionLater(vnode: number): void {
    this.stats.projectionWriteFailures++;
    setTimeout(() => {
      this.writeDue.add(vnode);
      this.scheduleWriteNext();
    }, RETRY_MS).unref();
  }

  /** Writes the vnode's unwritten states to the stored projection, in key order, and clears its lag. */
  private writeProjection(vnode: number): void {
    this.writeDue.delete(vnode);
    const u = this.unwritten.get(vnode);
    if (!u) return;
    this.storeStates(vnode, [...u.states]);
    this.unwritten.delete(vnode);
    this.stats.projectionWrites++;
  }

  /** Stores a vnode's states (null: remove the key) in key order, in one transaction that also clears its lag mark. */
  private storeStates(vnode: number, states: [key: string, state: Uint8Array | null][]): void {
    states.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.db.transaction(() => {
      for (const [key, state] of states) {
        if (state === null) this.deleteState.run(vnode, key);
        else this.upsertState.run(vnode, key, state);
      }
      this.deleteLag.run(vnode);
    }).immediate();
  }

  /**
   * How long a vnode's log may grow past its snapshot: proportional to its keys, so an
   * overwrite-heavy vnode stays small, capped by snapshotEvery, and never below a floor
   * under which a snapshot would cost more than the log it saves. Spread per vnode (see
   * LIMIT_SPREAD).
   */
  private tailLimit(vnode: number): number {
    const proportional = Math.max(MIN_TAIL, Math.ceil(this.opts.snapshotTailRatio * (this.keyCounts.get(vnode) ?? 0)));
    return Math.ceil(Math.min(this.opts.snapshotEvery, proportional) * stretch(vnode));
  }

  private scheduleSnapshots(touched: Iterable<{ vnode: number }>): void {
    for (const { vnode } of touched) {
      if (this.holds.has(vnode) || this.building?.vnode === vnode) continue;
      if (this.head(vnode) - (this.snapshotSeq.get(vnode) ?? 0) >= this.tailLimit(vnode)) this.snapshotDue.add(vnode);
    }
    this.scheduleSnapshotNext();
  }

  /**
   * A vnode written to rarely may keep its oldest row for long, and every row behind it in the
   * table waits with it. Once the rows waiting outnumber both snapshotEvery and the live ones,
   * that vnode is snapshotted before its turn, so the log's table stays at most about twice
   * its live rows (as Cassandra flushes the memtable that holds back its oldest commit log).
   * Only if its log is no longer than the average vnode's: under an even load the oldest row
   * is that of the vnode with the longest log, due next anyway, and forcing it would start a
   * wave of snapshots, each vnode in turn.
   */
  private unpinSweep(): void {
    // Writes only lengthen the logs, which makes an out-of-turn snapshot less due: the check
    // runs after compactions, not on every commit.
    if (!this.unpinCheckDue || this.building !== undefined || this.snapshotDue.size > 0) return;
    this.unpinCheckDue = false;
    if (this.deadRows <= this.opts.snapshotEvery) return;
    const live = this.directory.total();
    if (this.deadRows <= live) return;
    const pin = this.directory.oldest();
    if (pin === undefined || this.holds.has(pin.vnode)) return;
    if (this.directory.length(pin.vnode) * this.directory.vnodes().length <= live) this.snapshotDue.add(pin.vnode);
  }

  private hasSnapshotWork(): boolean {
    return this.sweepPending || this.building !== undefined || this.snapshotDue.size > 0;
  }

  /**
   * One step per turn of the event loop, so snapshots never stall the write path for long. A
   * step that fails (the database busy or full) leaves its work where it was, to be tried
   * again later: thrown here, it would have ended the process.
   */
  private scheduleSnapshotNext(): void {
    this.unpinSweep();
    if (this.snapshotScheduled || this.held || this.closed || !this.hasSnapshotWork()) return;
    this.snapshotScheduled = true;
    setImmediate(() => {
      if (this.closed || this.held) {
        this.snapshotScheduled = false;
        return;
      }
      try {
        this.snapshotStep();
      } catch {
        this.stats.snapshotFailures++;
        setTimeout(() => {
          this.snapshotScheduled = false;
          this.scheduleSnapshotNext();
        }, RETRY_MS).unref();
        return;
      }
      this.snapshotScheduled = false;
      this.scheduleSnapshotNext();
    });
  }

  /**
   * One bounded piece of background snapshot work: a chunk of compacted log rows deleted, a
   * chunk of keys copied into the snapshot being built, finishing it, or starting the next one due.
   */
  private snapshotStep(): void {
    if (this.sweepPending) {
      this.sweepStep();
      return;
    }
    const b = this.building;
    if (b === undefined) {
      const [vnode] = this.snapshotDue;
      if (vnode === undefined) return;
      if (!this.holds.has(vnode)) this.building = this.beginSnapshot(vnode);
      this.snapshotDue.delete(vnode);
    } else if (b.listed < b.rows.length) {
      this.listForSnapshot(b, SNAPSHOT_ROWS_PER_STEP);
    } else if (b.copied < b.order.length) {
      this.copyForSnapshot(b, SNAPSHOT_KEYS_PER_STEP);
    } else {
      // Failing, it leaves the snapshot fully copied, and the next step finishes it.
      this.finishSnapshot(b);
      this.building = undefined;
    }
  }

  /**
   * Freezes the vnode's projection at its head and compacts the log up to that point, all at
   * once (the background path does the same a step at a time).
   */
  snapshot(vnode: number): number {
    // This snapshot supersedes one being built for the vnode; it is not due again.
    if (this.building?.vnode === vnode) this.building = undefined;
    const b = this.beginSnapshot(vnode);
    this.listForSnapshot(b, Infinity);
    this.copyForSnapshot(b, Infinity);
    this.finishSnapshot(b);
    while (this.sweepPending) this.sweepStep();
    return b.seq;
  }

  /**
   * Every change to a key's state is logged, so the snapshot is brought forward from the
   * previous one by the keys the log tail touched alone: the work is proportional to the
   * tail, not to the vnode's size.
   */
  private beginSnapshot(vnode: number): Building {
    // Keys no commit changes until they are copied are copied from the stored projection, so
    // it must hold the states at the snapshot's position; a changed key is kept by its commit.
    // The lag of later commits then starts at or after that position, where compaction stops.
    this.writeProjection(vnode);
    const seq = this.head(vnode);
    const rows = this.directory.rows(vnode, this.snapshotSeq.get(vnode) ?? 0, seq);
    return { vnode, seq, rows, listed: 0, kept: new Set(), pending: new Set(), order: [], copied: 0, absent: [] };
  }

  /**
   * Lists the keys of the next rows of the tail. Once all are listed, they are copied in key
   * order (neighbours share B-tree pages). A key a commit already kept is not listed again:
   * its copy would be of a later state.
   */
  private listForSnapshot(b: Building, max: number): void {
    const rows = b.rows.slice(b.listed, b.listed + max);
    const listed = this.rowKeys.all(JSON.stringify(rows));
    b.listed += rows.length;
    for (const r of listed) if (!b.kept.has(r.key)) b.pending.add(r.key);
    if (b.listed === b.rows.length) b.order = [...b.pending].sort();
  }

  /**
   * Keeps a key's state at the snapshot's position before a commit changes it. While the
   * listing runs it is not yet known whether the tail touched the key, so every key changed is
   * kept: a key the tail did not touch has the same state in the previous snapshot, so keeping
   * it again changes nothing.
   */
  private beforeChange(b: Building, key: string, before: Uint8Array | null): void {
    const listing = b.listed < b.rows.length;
    if (!b.pending.delete(key) && !(listing && !b.kept.has(key))) return;
    if (listing) b.kept.add(key);
    if (before === null) b.absent.push(key);
    else this.upsertSnapshotState.run(b.vnode, key, before);
  }

  /**
   * Copies pending keys' states as they are now, which is as they were at the snapshot's
   * position (a commit copies a pending key before changing it). Rows written before the
   * snapshot is finished are newer than the snapshot position on record; the log still holds
   * every entry after that position and the fold is a join, so rebuilding from them gives the
   * same states. Keys without a state are only dropped when the snapshot is finished: until
   * then their old row and the log after it are what a rebuild needs (a collected tombstone
   * is removed again only when replayed onto the state it was confirmed against).
   */
  private copyForSnapshot(b: Building, max: number): void {
    const keys: string[] = [];
    while (keys.length < max && b.copied < b.order.length) {
      const key = b.order[b.copied++]!;
      if (b.pending.delete(key)) keys.push(key);
    }
    if (keys.length === 0) return;
    const list = JSON.stringify(keys);
    try {
      this.db.transaction(() => {
        this.copyStates.run(b.vnode, list);
        for (const r of this.missingStates.all(b.vnode, list)) b.absent.push(r.key);
      }).immediate();
    } catch (err) {
      // The keys left the pending set with a copy that did not happen.
      if (this.building === b) this.abandonBuilding();
      throw err;
    }
  }

  /** Records the snapshot's position and compacts the log it covers. */
  private finishSnapshot(b: Building): void {
    this.db.transaction(() => {
      for (const key of b.absent) this.deleteSnapshotState.run(b.vnode, key);
      this.db
        .query("INSERT INTO snapshots (vnode, seq, created_at) VALUES (?, ?, ?) ON CONFLICT (vnode) DO UPDATE SET seq = excluded.seq, created_at = excluded.created_at")
        .run(b.vnode, b.seq, this.opts.now());
    }).immediate();
    this.snapshotSeq.set(b.vnode, b.seq);
    this.stats.snapshots++;
    this.compact(b.vnode, b.seq);
  }

  /**
   * Compacts the vnode's log through `seq`: its entries leave the directory, so nothing reads
   * them again, and their rows wait in the table for the sweep.
   */
  private compact(vnode: number, seq: number): void {
    const before = this.directory.length(vnode);
    this.directory.dropThrough(vnode, seq);
    const n = before - this.directory.length(vnode);
    if (n === 0) return;
    this.deadRows += n;
    this.sweepPending = true;
    this.unpinCheckDue = true;
  }

  /**
   * Compacted rows are deleted from the front of the table, below the oldest row any vnode
   * still needs, where they sit together. A vnode's rows are spread through the table (it is
   * append-only, one table for all vnodes), so deleting one vnode's compacted rows dirtied a
   * page for almost every row; a sweep dirties one page per page of rows.
   */
  private sweepStep(): void {
    // The oldest row any vnode still needs (with none, any row): every row below it is compacted.
    const below = this.directory.oldest()?.row ?? Number.MAX_SAFE_INTEGER;
    const deleted = this.db.transaction(() => this.sweepRows.run(below, SWEEP_ROWS_PER_STEP).changes).immediate();
    this.deadRows = Math.max(0, this.deadRows - deleted);
    if (deleted < SWEEP_ROWS_PER_STEP) this.sweepPending = false;
    this.returnFreePages();
  }

  /** Drops the snapshot being built; its vnode is due again with its next commit. */
  private abandonBuilding(): void {
    if (this.building) this.snapshotDue.add(this.building.vnode);
    this.building = undefined;
  }

  /**
   * Gives pages compaction freed back to the file system once they are a quarter of the
   * file, a bounded number at a time so no vacuum stalls writes for long.
   */
  private returnFreePages(): void {
    const free = this.db.query<{ freelist_count: number }, []>("PRAGMA freelist_count").get()!.freelist_count;
    const total = this.db.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count;
    if (free > 64 && free * 4 > total) this.db.exec(`PRAGMA incremental_vacuum(${VACUUM_PAGES_PER_STEP})`);
  }

  /**
   * Keeps the vnode's snapshot and log tail as they are (no compaction) until released, so
   * a transfer can read the snapshot, then the tail, then what arrived meanwhile.
   */
  hold(vnode: number): () => void {
    this.holds.set(vnode, (this.holds.get(vnode) ?? 0) + 1);
    if (this.building?.vnode === vnode) {
      this.building = undefined;
      this.snapshotDue.delete(vnode);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.holds.get(vnode)! - 1;
      if (left > 0) this.holds.set(vnode, left);
      else {
        this.holds.delete(vnode);
        this.scheduleSnapshots([{ vnode }]);
      }
    };
  }

  /**
   * Snapshot work waiting: vnodes due, the one being built, and a sweep of compacted rows
   * (together what Cassandra calls pending compactions). A backlog that keeps growing means
   * compaction does not keep up with writes.
   */
  get snapshotBacklog(): number {
    return this.snapshotDue.size + (this.building ? 1 : 0) + (this.sweepPending ? 1 : 0);
  }

  /** The vnode whose snapshot is being built between commits, if any. */
  get buildingSnapshotOf(): number | undefined {
    return this.building?.vnode;
  }

  /** While the snapshot being built still lists its tail's keys: rows listed, of how many. */
  get snapshotListing(): { listed: number; rows: number } | undefined {
    const b = this.building;
    return b && b.listed < b.rows.length ? { listed: b.listed, rows: b.rows.length } : undefined;
  }

  /** The log position the vnode's snapshot covers (0: no snapshot yet). */
  snapshotSeqOf(vnode: number): number {
    return this.snapshotSeq.get(vnode) ?? 0;
  }

  /** Up to `limit` keys of the vnode's snapshot after `afterKey`, in key order. */
  snapshotPage(vnode: number, afterKey: string, limit: number): { key: string; state: Uint8Array }[] {
    return this.db
      .query<{ key: string; state: Uint8Array }, [number, string, number]>("SELECT key, state FROM snapshot_states WHERE vnode = ? AND key > ? ORDER BY key LIMIT ?")
      .all(vnode, afterKey, limit);
  }

  /** Up to `limit` log entries of the vnode with afterSeq < seq ≤ uptoSeq, in log order. */
  entriesAfter(vnode: number, afterSeq: number, uptoSeq: number, limit: number): { seq: number; entry: LogEntry }[] {
    return this.rowEntries.all(JSON.stringify(this.directory.rows(vnode, afterSeq, uptoSeq, limit))).map((r) => ({ seq: r.seq, entry: decodeEntry(r.body) }));
  }

  /** How many keys the vnode's snapshot holds. */
  snapshotSize(vnode: number): number {
    return this.db.query<{ n: number }, [number]>("SELECT COUNT(*) AS n FROM snapshot_states WHERE vnode = ?").get(vnode)?.n ?? 0;
  }

  /** Sizes for metrics: files, log entries awaiting compaction, snapshot and projection keys, states not yet written to the projection. */
  sizes(): { fileBytes: number; walBytes: number; logEntries: number; compactedRows: number; snapshotKeys: number; keys: number; unwrittenStates: number } {
    const count = (table: string) => this.db.query<{ n: number }, []>(`SELECT COUNT(*) AS n FROM ${table}`).get()!.n;
    const pages = this.db.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count;
    const pageSize = this.db.query<{ page_size: number }, []>("PRAGMA page_size").get()!.page_size;
    const wal = Bun.file(`${this.db.filename}-wal`);
    return {
      fileBytes: pages * pageSize,
      walBytes: wal.size,
      logEntries: this.directory.total(),
      compactedRows: this.deadRows,
      snapshotKeys: count("snapshot_states"),
      keys: [...this.keyCounts.values()].reduce((a, b) => a + b, 0),
      unwrittenStates: [...this.unwritten.values()].reduce((n, u) => n + u.states.size, 0),
    };
  }

  /** Whether the node holds no keys at all (a node may join a cluster only then). */
  isEmpty(): boolean {
    // Compacted rows the sweep has not deleted yet hold nothing.
    return this.db.query("SELECT 1 FROM projection LIMIT 1").get() === null && this.directory.total() === 0;
  }

  /** The vnode's projection recomputed from its snapshot and the log tail after it. */
  rebuild(vnode: number): Map<string, KeyState> {
    const states = new Map<string, KeyState>();
    for (const r of this.db.query<{ key: string; state: Uint8Array }, [number]>("SELECT key, state FROM snapshot_states WHERE vnode = ?").iterate(vnode)) {
      states.set(r.key, decodeState(r.state));
    }
    for (const [key, state] of this.foldLog(vnode, this.snapshotSeq.get(vnode) ?? 0, (k) => states.get(k) ?? EMPTY_STATE)) {
      if (state === EMPTY_STATE) states.delete(key);
      else states.set(key, state);
    }
    return states;
  }

  /**
   * The vnode's stored rows (given in key order) with its unwritten states laid over them,
   * still in key order.
   */
  private *withUnwritten(vnode: number, rows: Iterable<{ key: string; state: Uint8Array }>, afterKey = ""): Generator<{ key: string; state: Uint8Array }> {
    const u = this.unwritten.get(vnode);
    if (!u) return yield* rows;
    const pending = [...u.states].filter(([key]) => byteOrder(key, afterKey) > 0).sort(([a], [b]) => byteOrder(a, b));
    const overridden = new Set(pending.map(([key]) => key));
    let i = 0;
    for (const row of rows) {
      for (; i < pending.length && byteOrder(pending[i]![0], row.key) < 0; i++) {
        const [key, state] = pending[i]!;
        if (state !== null) yield { key, state };
      }
      if (!overridden.has(row.key)) yield row;
    }
    for (; i < pending.length; i++) {
      const [key, state] = pending[i]!;
      if (state !== null) yield { key, state };
    }
  }

  /** Up to `limit` of the vnode's states, in key order, with keys after `afterKey`. */
  statesAfter(vnode: number, afterKey: string, limit: number): { key: string; state: Uint8Array }[] {
    // Unwritten states may hide stored rows: with that many more rows read, the first `limit`
    // of the merged order all come before the last row read, so none is skipped.
    const extra = this.unwritten.get(vnode)?.states.size ?? 0;
    const rows = this.db
      .query<{ key: string; state: Uint8Array }, [number, string, number]>("SELECT key, state FROM projection WHERE vnode = ? AND key > ? ORDER BY key LIMIT ?")
      .all(vnode, afterKey, limit + extra);
    const out: { key: string; state: Uint8Array }[] = [];
    for (const row of this.withUnwritten(vnode, rows, afterKey)) {
      if (out.length === limit) break;
      out.push(row);
    }
    return out;
  }

  /** Every key of the vnode with its state bytes, in key order. */
  *scan(vnode: number): Generator<{ key: string; state: Uint8Array }> {
    yield* this.withUnwritten(vnode, this.db.query<{ key: string; state: Uint8Array }, [number]>("SELECT key, state FROM projection WHERE vnode = ? ORDER BY key").iterate(vnode));
  }

  /** The vnode's live projection. */
  projection(vnode: number): Map<string, KeyState> {
    const states = new Map<string, KeyState>();
    for (const r of this.scan(vnode)) states.set(r.key, decodeState(r.state));
    return states;
  }

  logLength(vnode: number): number {
    return this.directory.length(vnode);
  }

  /** Resolves once queued writes have committed and due snapshots have been taken. */
  async settled(): Promise<void> {
    while (this.queue.length > 0 || this.flushScheduled || this.hasSnapshotWork() || this.writeDue.size > 0) await new Promise((r) => setImmediate(r));
  }

  /**
   * Waits for queued writes to commit, writes the unwritten projection (so the next start has
   * no log to fold; on a full disk it is left for that fold), then closes.
   */
  async close(): Promise<void> {
    while (this.queue.length > 0 || this.flushScheduled) await new Promise((r) => setImmediate(r));
    for (const vnode of [...this.unwritten.keys()]) {
      try {
        this.writeProjection(vnode);
      } catch {
        // Safe in the log, with the lag row in place: the next start folds them.
        this.stats.projectionWriteFailures++;
      }
    }
    this.closed = true;
    clearTimeout(this.ageTimer);
    this.db.close();
  }
}
