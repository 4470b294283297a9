/**
 * Coalesces requests to the same peer. At most `maxInFlight` calls to a peer run at once;
 * everything submitted while they do goes out together in the next call. Under light load a
 * request leaves in the next turn of the event loop; under heavy load batches grow by
 * themselves, so the internal request count (and its per-call HTTP cost) stays far below
 * one per client write without any timer adding latency.
 *
 * The call runs in the trace of the first request in it and links to the others' spans, so
 * every coalesced write can find the call that carried it.
 */
import { type Context, type Link, context, trace } from "@opentelemetry/api";

interface Queue<Req, Res> {
  reqs: Req[];
  contexts: Context[];
  waiters: { resolve: (r: Res) => void; reject: (e: Error) => void }[];
}

const MAX_LINKS = 32;

export class Batcher<Req, Res> {
  private readonly queues = new Map<string, Queue<Req, Res>>();
  private readonly inFlight = new Map<string, number>();
  private readonly scheduled = new Set<string>();

  constructor(
    private readonly send: (peer: string, reqs: Req[], links: Link[]) => Promise<Res[]>,
    private readonly maxInFlight: number,
  ) {}

  submit(peer: string, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      let q = this.queues.get(peer);
      if (!q) {
        q = { reqs: [], contexts: [], waiters: [] };
        this.queues.set(peer, q);
      }
      q.reqs.push(req);
      q.contexts.push(context.active());
      q.waiters.push({ resolve, reject });
      this.schedule(peer);
    });
  }

  /** Flushes in the next turn, so everything submitted in this one shares the call. */
  private schedule(peer: string): void {
    if (this.scheduled.has(peer) || (this.inFlight.get(peer) ?? 0) >= this.maxInFlight) return;
    this.scheduled.add(peer);
    setImmediate(() => {
      this.scheduled.delete(peer);
      this.flush(peer);
    });
  }

  private flush(peer: string): void {
    const q = this.queues.get(peer);
    if (!q || (this.inFlight.get(peer) ?? 0) >= this.maxInFlight) return;
    this.queues.delete(peer);
    this.inFlight.set(peer, (this.inFlight.get(peer) ?? 0) + 1);
    const links: Link[] = [];
    for (const ctx of q.contexts.slice(1, MAX_LINKS + 1)) {
      const span = trace.getSpanContext(ctx);
      if (span) links.push({ context: span });
    }
    const done = () => {
      const left = this.inFlight.get(peer)! - 1;
      if (left > 0) this.inFlight.set(peer, left);
      else this.inFlight.delete(peer);
      if (this.queues.has(peer)) this.schedule(peer);
    };
    let call: Promise<Res[]>;
    try {
      call = context.with(q.contexts[0]!, () => this.send(peer, q.reqs, links));
    } catch (err) {
      call = Promise.reject(err as Error);
    }
    call.then(
      (results) => {
        done();
        q.waiters.forEach((w, i) => w.resolve(results[i]!));
      },
      (err: Error) => {
        done();
        q.waiters.forEach((w) => w.reject(err));
      },
    );
  }
}
