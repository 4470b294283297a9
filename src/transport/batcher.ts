/**
 * Coalesces requests to the same peer: everything submitted during one turn of the event
 * loop goes out as one call, so under load the internal request count stays far below one
 * per client write.
 *
 * The call runs in the trace of the first request in it and links to the others' spans, so
 * every coalesced write can find the call that carried it.
 */
import { type Context, type Link, context, trace } from "@opentelemetry/api";

export class Batcher<Req, Res> {
  private readonly queues = new Map<string, { reqs: Req[]; contexts: Context[]; waiters: { resolve: (r: Res) => void; reject: (e: Error) => void }[] }>();

  constructor(private readonly send: (peer: string, reqs: Req[], links: Link[]) => Promise<Res[]>) {}

  submit(peer: string, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      let q = this.queues.get(peer);
      if (!q) {
        q = { reqs: [], contexts: [], waiters: [] };
        this.queues.set(peer, q);
        setImmediate(() => this.flush(peer));
      }
      q.reqs.push(req);
      q.contexts.push(context.active());
      q.waiters.push({ resolve, reject });
    });
  }

  private flush(peer: string): void {
    const q = this.queues.get(peer);
    if (!q) return;
    this.queues.delete(peer);
    const links: Link[] = [];
    for (const ctx of q.contexts.slice(1)) {
      const span = trace.getSpanContext(ctx);
      if (span && links.length < 32) links.push({ context: span });
    }
    context.with(q.contexts[0]!, () => this.send(peer, q.reqs, links)).then(
      (results) => q.waiters.forEach((w, i) => w.resolve(results[i]!)),
      (err: Error) => q.waiters.forEach((w) => w.reject(err)),
    );
  }
}
