/**
 * Delivers hint queues to their owners once they answer again, as segments, paced by a
 * rate so a recovering node is not flooded. A hint is removed only after the owner acked
 * the segment carrying it.
 */
import type { Logger } from "pino";
import type { Membership } from "../membership/membership.ts";
import { type Segment, coalesce } from "../segment/segment.ts";
import type { HintStore } from "./hints.ts";
import { inOwnTrace } from "../telemetry/origin.ts";

export interface HintDeliveryOptions {
  hints: HintStore;
  membership: Membership;
  /** Ships segments to a peer and resolves once it acked them all. */
  ship: (peer: string, segments: Segment[]) => Promise<void>;
  /** The vnode's primaries now: where hints for a node that left the cluster go instead. */
  primariesOf: (vnode: number) => string[];
  intervalMs: number;
  ratePerSec: number;
  logger: Logger;
}

export class HintDelivery {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(private readonly opts: HintDeliveryOptions) {}

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      try {
        await this.deliverOnce();
      } catch (err) {
        // Reading the queues failed (the database busy, say); thrown from the timer, it would end the process.
        this.opts.logger.warn({ err: (err as Error).message }, "hint delivery pass failed; the next one retries");
      }
      if (!this.stopped) this.timer = setTimeout(loop, this.opts.intervalMs);
    };
    this.timer = setTimeout(loop, this.opts.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** One paced pass over every queue whose target is up. */
  async deliverOnce(): Promise<void> {
    const budget = Math.max(1, Math.floor((this.opts.ratePerSec * this.opts.intervalMs) / 1000));
    const removed = new Set(this.opts.membership.ring.removed ?? []);
    for (const q of this.opts.hints.queues()) {
      const left = removed.has(q.target);
      if (!left && !this.opts.membership.isUp(q.target)) continue;
      const batch = this.opts.hints.next(q.target, budget);
      if (batch.length === 0) continue;
      const segments = coalesce(batch.map((h) => ({ vnode: h.vnode, entries: [h.entry] })));
      try {
        await inOwnTrace("hint.deliver", batch.map((h) => h.entry), { "ringlog.peer": q.target, "ringlog.hints": batch.length, "ringlog.redirected": left }, () =>
          left ? this.redirect(segments) : this.opts.ship(q.target, segments),
        );
        this.opts.hints.remove(batch.map((h) => h.id));
      } catch (err) {
        this.opts.hints.failedDeliveries++;
        this.opts.logger.debug({ target: q.target, err: (err as Error).message }, "hint delivery failed; will retry");
      }
    }
  }

  /** Hints for a node that left go to the vnode's current primaries, every one of them. */
  private async redirect(segments: Segment[]): Promise<void> {
    const self = this.opts.membership.self.id;
    for (const s of segments) {
      const targets = this.opts.primariesOf(s.vnode).filter((p) => p !== self);
      if (targets.some((p) => !this.opts.membership.isUp(p))) throw new Error(`a primary of vnode ${s.vnode} is down`);
      await Promise.all(targets.map((p) => this.opts.ship(p, [s])));
    }
  }
}
