/**
 * Node-to-node calls: HTTP with keep-alive (Bun's fetch pools connections), msgpack bodies,
 * a timeout per call, the cluster secret, and the caller's W3C trace context.
 */
import { type Link, SpanKind, SpanStatusCode, context, propagation, trace } from "@opentelemetry/api";
import { packr } from "../event/event.ts";
import { tracer } from "../telemetry/tracing.ts";

export interface Peer {
  id: string;
  url: string;
}

export const SECRET_HEADER = "x-ringlog-secret";
export const FROM_HEADER = "x-ringlog-from";
export const MSGPACK = "application/msgpack";

export class TransportError extends Error {
  constructor(
    readonly peer: string,
    readonly reason: string,
    /** The peer's HTTP status, when it answered with an error. */
    readonly status?: number,
  ) {
    super(`${peer}: ${reason}`);
  }
}

export interface Transport {
  /** POSTs a msgpack body to an internal route of the peer and returns the decoded answer. */
  call<T>(peer: Peer, route: string, body: unknown, timeoutMs?: number, links?: Link[]): Promise<T>;
  /** Relays a client request to a peer's public route unchanged (for forwarding). */
  forward(peer: Peer, method: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<Response>;
}

export interface RouteTraffic {
  calls: number;
  /** Body bytes sent and received. */
  sent: number;
  received: number;
}

export class HttpTransport implements Transport {
  /** Per internal route, what went over the wire from this node's calls. */
  readonly traffic = new Map<string, RouteTraffic>();

  constructor(
    private readonly selfId: string,
    private readonly secret: string,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Calls made inside a trace get a CLIENT span and carry the trace context; background
   * chatter outside any trace (gossip, Merkle comparisons) is not traced, so traces show
   * requests and the repairs they cause, not a flood of heartbeats.
   */
  async call<T>(peer: Peer, route: string, body: unknown, timeoutMs = this.timeoutMs, links: Link[] = []): Promise<T> {
    if (!trace.getActiveSpan()) return this.post<T>(peer, route, body, timeoutMs);
    return tracer.startActiveSpan(`rpc ${route}`, { kind: SpanKind.CLIENT, links, attributes: { "ringlog.peer": peer.id } }, async (span) => {
      try {
        return await this.post<T>(peer, route, body, timeoutMs);
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as TransportError).reason });
        throw err;
      } finally {
        span.end();
      }
    });
  }

  private async post<T>(peer: Peer, route: string, body: unknown, timeoutMs: number): Promise<T> {
    const headers: Record<string, string> = { "content-type": MSGPACK, [SECRET_HEADER]: this.secret, [FROM_HEADER]: this.selfId };
    propagation.inject(context.active(), headers);
    const t = this.traffic.get(route) ?? { calls: 0, sent: 0, received: 0 };
    this.traffic.set(route, t);
    try {
      const packed = packr.pack(body);
      t.calls++;
      t.sent += packed.byteLength;
      const res = await fetch(peer.url + route, { method: "POST", headers, body: packed, signal: AbortSignal.timeout(timeoutMs) });
      const bytes = new Uint8Array(await res.arrayBuffer());
      t.received += bytes.byteLength;
      if (res.status !== 200) throw new TransportError(peer.id, `HTTP ${res.status} ${new TextDecoder().decode(bytes).slice(0, 200)}`, res.status);
      return packr.unpack(bytes) as T;
    } catch (err) {
      if (err instanceof TransportError) throw err;
      throw new TransportError(peer.id, (err as Error).name === "TimeoutError" ? "timed out" : (err as Error).message);
    }
  }

  async forward(peer: Peer, method: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<Response> {
    const h = { ...headers };
    propagation.inject(context.active(), h);
    try {
      return await fetch(peer.url + path, { method, headers: h, ...(body && body.byteLength > 0 ? { body } : {}), signal: AbortSignal.timeout(this.timeoutMs * 2) });
    } catch (err) {
      throw new TransportError(peer.id, (err as Error).message);
    }
  }
}
