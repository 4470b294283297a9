/**
 * Vnode handoff: carries out the transfers of a committed plan (see ring/plan.ts).
 *
 * For each transfer this node is the sender of, it holds the vnode's log (no compaction),
 * ships the vnode's snapshot, then the log tail after it, then whatever arrived meanwhile,
 * until it has caught up with the log head; only then is the transfer marked done in the
 * ring, and only when every transfer is done does ownership flip. Writes made while a plan
 * is pending also go to the incoming primaries (see the coordinator), so nothing written
 * during the copy is missed. Everything is shipped as segments of the idempotent fold, so
 * a transfer interrupted at any point is simply run again.
 */
import type { Logger } from "pino";
import { decodeState } from "../clock/fold.ts";
import { packr } from "../event/event.ts";
import type { LogEntry } from "../log/entry.ts";
import type { LogStore } from "../log/store.ts";
import type { Membership } from "../membership/membership.ts";
import { type Transfer, markDone, transfers } from "../ring/plan.ts";
import { type Segment, segmentToWire } from "../segment/segment.ts";
import { inOwnTrace } from "../telemetry/origin.ts";

const MAX_CATCH_UP_PASSES = 20;

export type TransferPhase = "snapshot" | "tail" | "meanwhile";

export interface TransferProgress {
  id: string;
  vnode: number;
  from: string;
  to: string;
  status: "waiting" | "running" | "done" | "retrying";
  phase?: TransferPhase;
  keysSent: number;
  keysTotal: number;
  bytesSent: number;
  startedAgoMs?: number;
  tookMs?: number;
  error?: string;
}

export interface HandoffOptions {
  store: LogStore;
  membership: Membership;
  /** Ships segments to a peer; resolves once it committed them. */
  ship: (peer: string, segments: Segment[]) => Promise<void>;
  n: number;
  /** Transfers this node sends at once. */
  concurrency: number;
  /** Keys or log entries per shipped segment. */
  batch: number;
  intervalMs: number;
  monotonic: () => number;
  logger: Logger;
}

interface Running {
  progress: TransferProgress;
  startedAt: number;
  endedAt?: number;
}

export class Handoff {
  private readonly running = new Map<string, Running>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  readonly stats = { transfersCompleted: 0, keysSent: 0, bytesSent: 0 };

  constructor(private readonly o: HandoffOptions) {}

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.tick();
      this.timer = setTimeout(loop, this.o.intervalMs);
    };
    this.timer = setTimeout(loop, this.o.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** The sender of a transfer: the first of its sources that this node sees up. */
  private senderOf(t: Transfer): string | undefined {
    return t.sources.find((s) => s !== t.to && this.o.membership.isUp(s));
  }

  /** Starts the transfers this node should send, up to the concurrency limit. */
  tick(): void {
    const ring = this.o.membership.ring;
    const done = new Set(ring.pending?.done ?? []);
    const self = this.o.membership.self.id;
    for (const [id, r] of this.running) if (r.progress.status === "done" && !ring.pending) this.running.delete(id);
    let active = [...this.running.values()].filter((r) => r.progress.status === "running").length;
    for (const t of transfers(ring, this.o.n)) {
      if (active >= this.o.concurrency) break;
      if (done.has(t.id) || this.running.get(t.id)?.progress.status === "running") continue;
      if (this.senderOf(t) !== self || !this.o.membership.isUp(t.to)) continue;
      active++;
      void this.run(t);
    }
  }

  private async run(t: Transfer): Promise<void> {
    const progress: TransferProgress = { id: t.id, vnode: t.vnode, from: this.o.membership.self.id, to: t.to, status: "running", keysSent: 0, keysTotal: 0, bytesSent: 0 };
    const entry: Running = { progress, startedAt: this.o.monotonic() };
    this.running.set(t.id, entry);
    const release = this.o.store.hold(t.vnode);
    this.o.logger.info({ transfer: t.id, vnode: t.vnode, to: t.to }, "handoff started");
    try {
      await inOwnTrace("handoff.transfer", [], { "ringlog.vnode": t.vnode, "ringlog.peer": t.to, "ringlog.transfer": t.id }, () => this.copy(t, progress));
      this.o.membership.updateRing((ring) => markDone(ring, [t.id]));
      progress.status = "done";
      delete progress.phase;
      this.stats.transfersCompleted++;
      entry.endedAt = this.o.monotonic();
      this.o.logger.info({ transfer: t.id, keys: progress.keysSent, bytes: progress.bytesSent, ms: Math.round(entry.endedAt - entry.startedAt) }, "handoff finished");
    } catch (err) {
      progress.status = "retrying";
      progress.error = (err as Error).message;
      this.o.logger.warn({ transfer: t.id, err: progress.error }, "handoff interrupted; it will run again");
    } finally {
      release();
    }
  }

  private async copy(t: Transfer, progress: TransferProgress): Promise<void> {
    const { store } = this.o;
    const vnode = t.vnode;
    const snapshotSeq = store.snapshotSeqOf(vnode);
    const startHead = store.head(vnode);
    progress.keysTotal = store.snapshotSize(vnode) + (startHead - snapshotSeq);

    progress.phase = "snapshot";
    for (let after = ""; ; ) {
      const page = store.snapshotPage(vnode, after, this.o.batch);
      if (page.length === 0) break;
      await this.send(t, page.map((r): LogEntry => ({ kind: "state", key: r.key, state: decodeState(r.state) })), progress);
      after = page.at(-1)!.key;
    }
    progress.phase = "tail";
    let seq = await this.sendLog(t, snapshotSeq, startHead, progress);
    progress.phase = "meanwhile";
    // Under a steady write load the head keeps moving; once every coordinator knows the
    // plan, new writes reach the incoming primary directly, so a bounded number of
    // catch-up passes is enough (anti-entropy covers anything a failed direct write missed).
    let passes = 0;
    for (let head = store.head(vnode); seq < head && passes < MAX_CATCH_UP_PASSES; head = store.head(vnode), passes++) {
      progress.keysTotal += head - seq;
      seq = await this.sendLog(t, seq, head, progress);
    }
  }

  /** Ships the log entries in (afterSeq, uptoSeq]; returns the last position shipped. */
  private async sendLog(t: Transfer, afterSeq: number, uptoSeq: number, progress: TransferProgress): Promise<number> {
    let seq = afterSeq;
    while (seq < uptoSeq) {
      const page = this.o.store.entriesAfter(t.vnode, seq, uptoSeq, this.o.batch);
      if (page.length === 0) return uptoSeq;
      await this.send(t, page.map((r) => r.entry), progress);
      seq = page.at(-1)!.seq;
    }
    return seq;
  }

  private async send(t: Transfer, entries: LogEntry[], progress: TransferProgress): Promise<void> {
    if (this.stopped) throw new Error("node is stopping");
    if (this.o.membership.ring.pending === undefined) throw new Error("the plan is no longer pending");
    const segment: Segment = { vnode: t.vnode, entries };
    const bytes = packr.pack(segmentToWire(segment)).byteLength;
    await this.o.ship(t.to, [segment]);
    progress.keysSent += entries.length;
    progress.bytesSent += bytes;
    this.stats.keysSent += entries.length;
    this.stats.bytesSent += bytes;
  }

  /** Every transfer of the pending plan: done ones from the ring, this node's with their progress. */
  status(): TransferProgress[] {
    const ring = this.o.membership.ring;
    const done = new Set(ring.pending?.done ?? []);
    const now = this.o.monotonic();
    return transfers(ring, this.o.n).map((t) => {
      const mine = this.running.get(t.id);
      if (mine) {
        const p = { ...mine.progress, startedAgoMs: Math.round(now - mine.startedAt) };
        if (mine.endedAt !== undefined) p.tookMs = Math.round(mine.endedAt - mine.startedAt);
        return done.has(t.id) ? { ...p, status: "done" as const } : p;
      }
      return { id: t.id, vnode: t.vnode, from: this.senderOf(t) ?? t.sources[0]!, to: t.to, status: done.has(t.id) ? "done" : "waiting", keysSent: 0, keysTotal: 0, bytesSent: 0 };
    });
  }
}
