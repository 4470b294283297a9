/**
 * Delivers hint queues to their owners once they answer again, as segments, paced by a
 * rate so a recovering node is not flooded. A hint is removed only after the owner acked
 * the segment carrying it.
 */
import type { Logger } from "pino";
import type { Membership } from "../membership/membership.ts";
import { type Segment, coalesce } from "../segment/segment.ts";
import type { HintStore } from "./hints.ts";

export interface HintDeliveryOptions {
  hints: HintStore;
  membership: Membership;
  /** Ships segments to a peer and resolves once it acked them all. */
  ship: (peer: string, segments: Segment[]) => Promise<void>;
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
      await this.deliverOnce();
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
    for (const q of this.opts.hints.queues()) {
      if (!this.opts.membership.isUp(q.target)) continue;
      const batch = this.opts.hints.next(q.target, budget);
      if (batch.length === 0) continue;
      const segments = coalesce(batch.map((h) => ({ vnode: h.vnode, entries: [h.entry] })));
      try {
        await this.opts.ship(q.target, segments);
        this.opts.hints.remove(batch.map((h) => h.id));
      } catch (err) {
        this.opts.hints.failedDeliveries++;
        this.opts.logger.debug({ target: q.target, err: (err as Error).message }, "hint delivery failed; will retry");
      }
    }
  }
}
