/**
 * Coalesces requests to the same peer: everything submitted during one turn of the event
 * loop goes out as one call, so under load the internal request count stays far below one
 * per client write.
 */
export class Batcher<Req, Res> {
  private readonly queues = new Map<string, { reqs: Req[]; waiters: { resolve: (r: Res) => void; reject: (e: Error) => void }[] }>();

  constructor(private readonly send: (peer: string, reqs: Req[]) => Promise<Res[]>) {}

  submit(peer: string, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      let q = this.queues.get(peer);
      if (!q) {
        q = { reqs: [], waiters: [] };
        this.queues.set(peer, q);
        setImmediate(() => this.flush(peer));
      }
      q.reqs.push(req);
      q.waiters.push({ resolve, reject });
    });
  }

  private flush(peer: string): void {
    const q = this.queues.get(peer);
    if (!q) return;
    this.queues.delete(peer);
    this.send(peer, q.reqs).then(
      (results) => q.waiters.forEach((w, i) => w.resolve(results[i]!)),
      (err: Error) => q.waiters.forEach((w) => w.reject(err)),
    );
  }
}
