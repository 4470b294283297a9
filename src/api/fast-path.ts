/**
 * The data path in front of fastify. Key reads and writes, and the node-to-node routes that
 * carry their replication, are most of a node's requests; fastify's request and reply
 * machinery costs about as much per request as the HTTP server under it (measured on Bun:
 * 17-23 µs of CPU for a bare node:http PUT, 27-31 µs through plain fastify, about 40 µs
 * through this server's fastify). This path runs the same handlers on the same server for
 * the requests whose every detail it can vouch for; anything else (a query string, a
 * percent-encoded or over-long key, a body without a plain content type and length, HEAD,
 * a closing server) goes to fastify, which answers it by the spec as before.
 *
 * What it does for a request it takes matches fastify's treatment of it: the route's guard
 * before the body is read, the body as bytes, the handler's reply written with fastify's
 * header rules, and any error answered by the server's own error responder. The differential
 * test (test/api-fast-path.test.ts) holds the two paths to the same answers.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { Span } from "@opentelemetry/api";
import { RinglogError } from "../errors.ts";

/** What the data handlers use of a request: fastify's requests provide it too. */
export interface RouteRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly params: unknown;
  readonly query: unknown;
  readonly body: unknown;
  span?: Span;
}

/** What the data handlers use of a reply: fastify's replies provide it too. */
export interface RouteReply {
  code(status: number): RouteReply;
  header(name: string, value: string | number): RouteReply;
  type(contentType: string): RouteReply;
  send(payload?: unknown): RouteReply;
}

export type DataHandler = (req: RouteRequest, reply: RouteReply) => Promise<unknown>;
/** Throws a RinglogError when the caller may not use the route. */
export type Guard = (req: RouteRequest) => void;

export interface FastRoute {
  method: string;
  /** The spec's path with a rest-of-path parameter as `*` (fastify's form). */
  url: string;
  /** The path as the spec writes it: the route's name in traces. */
  path: string;
  guard: Guard | null;
  handler: DataHandler;
}

export interface FastPathOptions {
  routes: readonly FastRoute[];
  counters: { fastPathRequests: number };
  maxBodyBytes: number;
  /** The router's limit on a raw path parameter; longer ones are fastify's to refuse. */
  maxParamLength: number;
  /** Answers an error as the server does for every route. */
  onError(err: unknown, req: RouteRequest, reply: RouteReply): void;
  /** Starts the request's server span, when requests are traced. */
  startSpan?: (req: RouteRequest, route: string) => Span | undefined;
  /** Ends it once the answer is written. */
  endSpan?: (span: Span, status: number) => void;
}

/** Characters a path keeps exactly as sent: no percent-decoding, no query, nothing a router reads specially. */
const PLAIN_PATH = /^[A-Za-z0-9\-._~!$&'()*+,=:@/]+$/;
/** A media type with no parameters, which fastify's content-type check accepts as it is. */
const PLAIN_MEDIA_TYPE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** The fast path takes no query string, so every request's query is this. */
const NO_QUERY = Object.freeze({});

class FastRequest implements RouteRequest {
  body: unknown = undefined;
  span?: Span;
  readonly query = NO_QUERY;
  constructor(
    readonly raw: IncomingMessage,
    readonly method: string,
    readonly url: string,
    readonly params: { "*": string } | Record<string, never>,
  ) {}
  get headers(): IncomingHttpHeaders {
    return this.raw.headers;
  }
}

/** fastify's reply rules for the payloads the handlers send: bytes, JSON, or nothing. */
class FastReply implements RouteReply {
  sent = false;
  private status = 200;
  private readonly headers: Record<string, string | number> = {};
  constructor(
    private readonly res: ServerResponse,
    private readonly done: (status: number) => void,
  ) {}

  code(status: number): this {
    this.status = status;
    return this;
  }

  header(name: string, value: string | number): this {
    this.headers[name.toLowerCase()] = value;
    return this;
  }

  type(contentType: string): this {
    this.headers["content-type"] = contentType;
    return this;
  }

  send(payload?: unknown): this {
    if (this.sent) return this;
    this.sent = true;
    // The slow-client guard answered first (408) or cut the connection.
    if (this.res.headersSent || this.res.writableEnded) {
      this.done(this.status);
      return this;
    }
    const body = payload === undefined ? undefined : this.serialize(payload);
    const h = this.headers;
    // Responses that may carry no content send neither content headers nor the payload.
    const contentless = this.status === 204 || this.status < 200;
    if (body !== undefined && contentless) {
      delete h["content-type"];
      delete h["content-length"];
    } else if (body !== undefined) {
      h["content-length"] = String(Buffer.byteLength(body));
    } else if (!contentless && this.status !== 304) {
      h["content-length"] = "0";
    }
    this.res.writeHead(this.status, h);
    if (body === undefined || contentless) this.res.end();
    else this.res.end(body);
    this.done(this.status);
    return this;
  }

  private serialize(payload: unknown): string | Buffer {
    const type = this.headers["content-type"];
    if (payload instanceof Uint8Array) {
      if (type === undefined) this.headers["content-type"] = "application/octet-stream";
      return Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    }
    if (typeof payload === "string" && type === undefined) {
      this.headers["content-type"] = "text/plain; charset=utf-8";
      return payload;
    }
    if (type === undefined) this.headers["content-type"] = "application/json; charset=utf-8";
    else if (String(type).includes("json") && !/;\s*charset=/i.test(String(type))) this.headers["content-type"] = `${type}; charset=utf-8`;
    return typeof payload === "string" ? payload : JSON.stringify(payload);
  }
}

/** Returns a dispatcher that answers the request and returns true, or returns false and leaves it to fastify. */
export function fastPath(o: FastPathOptions): (raw: IncomingMessage, res: ServerResponse) => boolean {
  const exact = new Map<string, FastRoute>();
  const prefixed: { prefix: string; route: FastRoute }[] = [];
  for (const r of o.routes) {
    if (r.url.endsWith("*")) prefixed.push({ prefix: r.url.slice(0, -1), route: r });
    else exact.set(`${r.method} ${r.url}`, r);
  }

  const match = (raw: IncomingMessage): { route: FastRoute; params: { "*": string } | Record<string, never> } | undefined => {
    const { method, url } = raw;
    if (method === undefined || url === undefined || !PLAIN_PATH.test(url)) return undefined;
    const route = exact.get(`${method} ${url}`);
    if (route) return { route, params: {} };
    for (const p of prefixed) {
      if (p.route.method !== method || !url.startsWith(p.prefix)) continue;
      const rest = url.slice(p.prefix.length);
      if (rest.length === 0 || rest.length > o.maxParamLength) return undefined;
      return { route: p.route, params: { "*": rest } };
    }
    return undefined;
  };

  /** The body's length when the request's framing is one this path reads exactly as fastify would; null when not. */
  const bodyLength = (raw: IncomingMessage): number | null => {
    const h = raw.headers;
    if (h["transfer-encoding"] !== undefined || h.expect !== undefined) return null;
    const length = h["content-length"];
    // The only bodyless method among the routes (HEAD is fastify's).
    if (raw.method === "GET") return length === undefined || length === "0" ? 0 : null;
    if (h["content-type"] === undefined) return length === undefined || length === "0" ? 0 : null;
    if (length === undefined || !/^[1-9][0-9]*$/.test(length) || !PLAIN_MEDIA_TYPE.test(h["content-type"])) return null;
    const n = Number(length);
    return n <= o.maxBodyBytes ? n : null;
  };

  const run = (route: FastRoute, req: FastRequest, reply: FastReply) => {
    route.handler(req, reply)
      .then(
        (value) => {
          if (!reply.sent && value !== undefined) reply.send(value);
        },
        (err) => o.onError(err, req, reply),
      )
      // Nothing awaits this chain: a failure in answering is logged there, never left unhandled.
      .catch((err) => o.onError(err, req, reply));
  };

  return (raw, res) => {
    const found = match(raw);
    if (!found) return false;
    const length = bodyLength(raw);
    if (length === null) return false;
    const { route, params } = found;
    o.counters.fastPathRequests++;
    const req = new FastRequest(raw, raw.method!, raw.url!, params);
    const span = o.startSpan?.(req, route.path);
    if (span) req.span = span;
    const reply = new FastReply(res, (status) => span && o.endSpan?.(span, status));
    try {
      route.guard?.(req);
    } catch (err) {
      o.onError(err, req, reply);
      return true;
    }
    if (length === 0) {
      run(route, req, reply);
      return true;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    raw.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.byteLength;
    });
    raw.on("end", () => {
      if (received !== length) {
        o.onError(new RinglogError("invalid_request", "the body's length does not match its Content-Length"), req, reply);
        return;
      }
      req.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received);
      run(route, req, reply);
    });
    // A client that goes away mid-body leaves nothing to answer.
    raw.on("error", () => {});
    return true;
  };
}
