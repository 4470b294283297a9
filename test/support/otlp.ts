/**
 * A local OTLP/HTTP trace receiver for tests: nodes export to it as they would to Jaeger.
 * The node's exporter posts OTLP JSON to <endpoint>/v1/traces; gzip is accepted, and
 * anything else it is sent is recorded so a change of encoding fails loudly rather than as
 * a silent timeout.
 */
import { gunzipSync } from "node:zlib";
import type { Server } from "bun";

/** OTLP SpanKind as the JSON encoding carries it (enum number; the name form is accepted too). */
export const SPAN_KIND_SERVER = 2;
export const SPAN_KIND_CLIENT = 3;

type AttrValue = string | number | boolean | undefined;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number | string;
  attributes: Record<string, AttrValue>;
  resource: Record<string, AttrValue>;
  links: { traceId: string; spanId: string }[];
}

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string; boolValue?: boolean; doubleValue?: number };
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number | string;
  attributes?: OtlpAttribute[];
  links?: { traceId: string; spanId: string }[];
}

interface OtlpRequest {
  resourceSpans?: { resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}

function attrs(list: OtlpAttribute[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const a of list ?? []) {
    const v = a.value;
    // OTLP JSON may carry int64 as a string (proto3 JSON) or a number (the JS serializer).
    out[a.key] = v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue;
  }
  return out;
}

export const isServer = (s: ReceivedSpan) => s.kind === SPAN_KIND_SERVER || s.kind === "SPAN_KIND_SERVER";
export const isClient = (s: ReceivedSpan) => s.kind === SPAN_KIND_CLIENT || s.kind === "SPAN_KIND_CLIENT";

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly unexpected: string[] = [];
  private readonly server: Server<undefined>;

  constructor() {
    this.server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => this.receive(req) });
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  private async receive(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (req.method !== "POST" || url.pathname !== "/v1/traces") {
      this.unexpected.push(`${req.method} ${url.pathname}`);
      return new Response("not found", { status: 404 });
    }
    const type = req.headers.get("content-type") ?? "";
    let body = new Uint8Array(await req.arrayBuffer());
    if (req.headers.get("content-encoding") === "gzip") body = new Uint8Array(gunzipSync(body));
    if (!type.startsWith("application/json")) {
      this.unexpected.push(`POST /v1/traces with content-type ${type}`);
      return new Response("send JSON", { status: 415 });
    }
    const msg = JSON.parse(new TextDecoder().decode(body)) as OtlpRequest;
    for (const rs of msg.resourceSpans ?? []) {
      const resource = attrs(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? "",
            name: s.name,
            kind: s.kind,
            attributes: attrs(s.attributes),
            resource,
            links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
          });
        }
      }
    }
    return Response.json({ partialSuccess: {} });
  }

  /** Polls the received spans (bounded) until `find` returns something. */
  async waitFor<T>(what: string, find: () => T | undefined, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = find();
      if (found !== undefined) return found;
      await Bun.sleep(50);
    }
    throw new Error(`no ${what} within ${timeoutMs} ms; received ${this.spans.length} spans: ${JSON.stringify(this.spans.map((s) => s.name).slice(-50))}; unexpected: ${JSON.stringify(this.unexpected)}`);
  }

  stop(): void {
    this.server.stop(true);
  }
}
