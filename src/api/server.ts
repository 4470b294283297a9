/**
 * The HTTP surface: fastify serving exactly the operations of openapi.yaml, validating each
 * request with the spec's schemas, answering every failure with the one error shape, and
 * tracing each request.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace, type Span } from "@opentelemetry/api";
import type { Logger } from "pino";
import { RinglogError, type ErrorBody } from "../errors.ts";
import { tracer } from "../telemetry/tracing.ts";
import { enforceRequestDeadline } from "./deadline.ts";
import { HTTP_METHODS, type OpenApiDocument, specRoutes } from "./spec.ts";

export type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export interface ServerOptions {
  spec: OpenApiDocument;
  handlers: Record<string, Handler>;
  logger: Logger;
  maxBodyBytes: number;
  /** Largest request head (request line and headers) the server reads. */
  maxHeaderBytes: number;
  /** Longest raw path parameter the router accepts (percent-encoded). */
  maxParamLength: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  connectionTimeoutMs: number;
  tracing: boolean;
  /** Checks the caller against the security scheme the spec names for the route. */
  guards: Record<"clusterSecret" | "apiToken", (req: FastifyRequest) => void>;
}

declare module "fastify" {
  interface FastifyRequest {
    span?: Span;
  }
  interface FastifyContextConfig {
    /** The route's path as openapi.yaml writes it. */
    specPath?: string;
  }
}

export function sendError(reply: FastifyReply, err: RinglogError): FastifyReply {
  return reply.code(err.status).type("application/json").send(err.toBody() satisfies ErrorBody);
}

/** Maps anything thrown or raised by fastify itself to a RinglogError. */
function toRinglogError(err: unknown, req: FastifyRequest): RinglogError {
  if (err instanceof RinglogError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string; validation?: unknown[]; validationContext?: string };
  if (e.validation) {
    if (e.validationContext === "params" && req.url.startsWith("/kv/")) return new RinglogError("invalid_key", "the key is empty");
    return new RinglogError("invalid_request", e.message ?? "invalid request", { in: e.validationContext, errors: e.validation });
  }
  switch (e.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new RinglogError("body_too_large", "request body is too large", { limit: Number(req.routeOptions.bodyLimit) });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new RinglogError("invalid_content_type", "the content type is not of the form type/subtype");
    case "FST_ERR_BAD_URL":
      return new RinglogError(req.url.startsWith("/kv/") ? "invalid_key" : "invalid_request", "the URL is not valid percent-encoding");
    case "FST_ERR_MAX_PARAM_LENGTH":
      return new RinglogError(req.url.startsWith("/kv/") ? "invalid_key" : "invalid_request", "a path parameter is too long");
  }
  if (e.statusCode === 408) return new RinglogError("request_timeout", "request took too long to arrive");
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return new RinglogError("invalid_request", e.message ?? "bad request");
  return new RinglogError("internal", "internal error");
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.maxBodyBytes,
    requestTimeout: opts.requestTimeoutMs,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    connectionTimeout: opts.connectionTimeoutMs,
    return503OnClosing: true,
    // Request heads may carry a context header of maxContextBytes plus the usual headers.
    http: { maxHeaderSize: opts.maxHeaderBytes },
    clientErrorHandler: (err: NodeJS.ErrnoException & { code?: string }, socket: import("node:net").Socket) => {
      if (!socket.writable) return;
      const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
      const body = JSON.stringify(
        new RinglogError("invalid_request", status === 431 ? "the request head is too large" : "the request is not valid HTTP/1.1").toBody(),
      );
      const reason = status === 431 ? "Request Header Fields Too Large" : "Bad Request";
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    },
    routerOptions: { maxParamLength: opts.maxParamLength, ignoreTrailingSlash: false },
    ajv: { customOptions: { coerceTypes: true, allErrors: false } },
    frameworkErrors: (err, req, reply) => {
      sendError(reply, toRinglogError(err, req));
    },
  });

  enforceRequestDeadline(app.server, opts.requestTimeoutMs);

  // Values are raw bytes of any type; every route reads its body as a buffer.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    const mapped = toRinglogError(err, req);
    // The handler may run outside the request's span context; its log lines must still carry the trace.
    const log = () => {
      if (mapped.status === 500) req.log.error({ err }, "request failed");
      else if (mapped.status > 500) req.log.warn({ code: mapped.code, details: mapped.details }, mapped.message);
      else req.log.debug({ code: mapped.code, status: mapped.status }, "request refused");
    };
    if (req.span) context.with(trace.setSpan(context.active(), req.span), log);
    else log();
    req.span?.recordException(err as Error);
    return sendError(reply, mapped);
  });

  app.setNotFoundHandler((req, reply) => {
    if (/^\/kv\/?(\?|$)/.test(req.url)) return sendError(reply, new RinglogError("invalid_key", "the key is empty"));
    return sendError(reply, new RinglogError("not_found", `no route ${req.method} ${req.url.split("?")[0]}`));
  });

  if (opts.tracing) installTracing(app);

  await app.register(swagger, { mode: "static", specification: { document: opts.spec as never } });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  const handlers: Record<string, Handler> = { ...opts.handlers, getSpec: async () => app.swagger() };
  const routes = specRoutes(opts.spec);
  for (const route of routes) {
    const handler = handlers[route.operationId];
    if (!handler) throw new Error(`openapi.yaml operation ${route.operationId} has no handler`);
    app.route({
      method: route.method.toUpperCase() as "GET",
      url: route.url,
      schema: { ...route.schema, hide: true },
      config: { specPath: route.path },
      ...(route.guard !== "none" ? { onRequest: async (req: FastifyRequest) => opts.guards[route.guard as "apiToken"](req) } : {}),
      handler: opts.tracing ? inSpan(handler) : handler,
    });
  }
  const known = new Set(routes.map((r) => r.operationId));
  for (const id of Object.keys(opts.handlers)) if (!known.has(id)) throw new Error(`handler ${id} is not an operation in openapi.yaml`);

  // Wrong method on a known path: 405 with Allow, rather than a misleading 404.
  const byUrl = Map.groupBy(routes, (r) => r.url);
  for (const [url, rs] of byUrl) {
    const allowed = rs.map((r) => r.method.toUpperCase());
    if (allowed.includes("GET")) allowed.push("HEAD");
    for (const method of HTTP_METHODS) {
      if (rs.some((r) => r.method === method)) continue;
      app.route({
        method: method.toUpperCase() as "GET",
        url,
        schema: { hide: true },
        config: { specPath: rs[0]!.path },
        handler: async (_req, reply) =>
          sendError(reply.header("allow", allowed.join(", ")), new RinglogError("method_not_allowed", `${method.toUpperCase()} is not allowed here`, { allow: allowed })),
      });
    }
  }
  return app;
}

/** One server span per client request and per traced internal call, parented on the caller's W3C trace context. */
function installTracing(app: FastifyInstance): void {
  app.addHook("onRequest", async (req) => {
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const route = req.routeOptions.config.specPath ?? "unmatched";
    // Node-to-node calls outside any trace are background chatter (gossip, Merkle
    // comparisons); their callers do not trace them either.
    if (route.startsWith("/internal/") && !trace.getSpanContext(parent)) return;
    req.span = tracer.startSpan(
      `${req.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { "http.request.method": req.method, "http.route": route, "url.path": req.url.split("?")[0] } },
      parent,
    );
  });
  app.addHook("onResponse", async (req, reply) => {
    const span = req.span;
    if (!span) return;
    span.setAttribute("http.response.status_code", reply.statusCode);
    if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
}

function inSpan(handler: Handler): Handler {
  return (req, reply) => (req.span ? context.with(trace.setSpan(context.active(), req.span), () => handler(req, reply)) : handler(req, reply));
}
