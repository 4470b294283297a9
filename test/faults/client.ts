/** A workload client that talks plain HTTP to the cluster and records every operation. */
import type { Op, Outcome } from "./history.ts";

export interface ClientOptions {
  process: number;
  keys: string[];
  nodes: () => { id: string; url: string }[];
  rng: () => number;
  startedAt: number;
  /** Share of writes sent blind (without a context); the rest read first. */
  blindRatio: number;
  timeoutMs: number;
  record: (op: Op) => void;
  nextId: () => number;
}

interface ReadResult {
  outcome: Outcome;
  values: string[];
  context?: string;
  error?: string;
}

async function parseRead(res: Response): Promise<ReadResult> {
  const context = res.headers.get("x-ringlog-context") ?? undefined;
  const withCtx = (values: string[]): ReadResult => ({ outcome: "ok", values, ...(context ? { context } : {}) });
  if (res.status === 200) return withCtx([await res.text()]);
  if (res.status === 300) {
    const body = (await res.json()) as { siblings: { value: string }[] };
    return withCtx(body.siblings.map((s) => Buffer.from(s.value, "base64").toString()));
  }
  if (res.status === 404) {
    await res.arrayBuffer();
    return withCtx([]);
  }
  return { outcome: res.status === 503 ? "unknown" : "fail", values: [], error: `HTTP ${res.status}` };
}

export class WorkloadClient {
  private counter = 0;
  private stopped = false;

  constructor(private readonly o: ClientOptions) {}

  private now(): number {
    return Date.now() - this.o.startedAt;
  }

  private pick<T>(xs: T[]): T {
    return xs[Math.floor(this.o.rng() * xs.length)]!;
  }

  /** Ends the run after the operation in flight. */
  stop(): void {
    this.stopped = true;
  }

  async runUntil(deadline: number): Promise<void> {
    while (Date.now() < deadline && !this.stopped) {
      const key = this.pick(this.o.keys);
      const node = this.pick(this.o.nodes());
      const r = this.o.rng();
      if (r < 0.3) await this.read(node, key);
      else if (r < 0.4) await this.remove(node, key);
      else await this.write(node, key);
    }
  }

  private async request(url: string, init: RequestInit): Promise<Response> {
    return fetch(url, { ...init, signal: AbortSignal.timeout(this.o.timeoutMs) });
  }

  private async read(node: { id: string; url: string }, key: string): Promise<ReadResult> {
    const invoke = this.now();
    let result: ReadResult;
    try {
      result = await parseRead(await this.request(`${node.url}/kv/${key}`, {}));
    } catch (err) {
      result = { outcome: "fail", values: [], error: (err as Error).name };
    }
    this.o.record({
      id: this.o.nextId(),
      process: this.o.process,
      key,
      type: "read",
      node: node.id,
      invoke,
      complete: this.now(),
      outcome: result.outcome === "ok" ? "ok" : "fail",
      values: result.values,
      ...(result.error ? { error: result.error } : {}),
    });
    return result;
  }

  private async write(node: { id: string; url: string }, key: string): Promise<void> {
    const blind = this.o.rng() < this.o.blindRatio;
    const read = blind ? undefined : await this.read(node, key);
    if (read && read.outcome !== "ok") return;
    const value = `p${this.o.process}-${++this.counter}`;
    await this.send("put", node, key, read, value);
  }

  private async remove(node: { id: string; url: string }, key: string): Promise<void> {
    const read = await this.read(node, key);
    if (read.outcome !== "ok" || !read.context) return;
    await this.send("delete", node, key, read);
  }

  private async send(type: "put" | "delete", node: { id: string; url: string }, key: string, read: ReadResult | undefined, value?: string): Promise<void> {
    const invoke = this.now();
    let outcome: Outcome;
    let error: string | undefined;
    try {
      const res = await this.request(`${node.url}/kv/${key}`, {
        method: type === "put" ? "PUT" : "DELETE",
        headers: { "content-type": "text/plain", ...(read?.context ? { "x-ringlog-context": read.context } : {}) },
        ...(value !== undefined ? { body: value } : {}),
      });
      await res.arrayBuffer();
      // A 503 means the quorum was not confirmed in time, not that nothing was written.
      outcome = res.status === 204 ? "ok" : res.status === 503 ? "unknown" : "fail";
      if (res.status !== 204) error = `HTTP ${res.status}`;
    } catch (err) {
      outcome = "unknown";
      error = (err as Error).name;
    }
    this.o.record({
      id: this.o.nextId(),
      process: this.o.process,
      key,
      type,
      node: node.id,
      invoke,
      complete: this.now(),
      outcome,
      ...(value !== undefined ? { value } : {}),
      ...(read ? { seen: read.values } : {}),
      ...(error ? { error } : {}),
    });
  }
}
