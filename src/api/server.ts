/**
 * The HTTP surface: fastify serving exactly the operations of openapi.yaml, validating each
 * request with the spec's schemas, answering every failure with the one error shape, and
 * tracing each request. Plain key and node-to-node requests take the fast path in front of
 * it (fast-path.ts), which gives the same answers without fastify's per-request machinery.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import Fastify, { LogController, type FastifyBaseLogger, type onRequestHookHandler, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace, type Span } from "@opentelemetry/api";
import type { Logger } from "pino";
import { RinglogError, type ErrorBody } from "../errors.ts";
import { tracer } from "../telemetry/tracing.ts";
import { enforceRequestDeadline } from "./deadline.ts";
import { type DataHandler, type FastRoute, type Guard, type RouteReply, type RouteRequest, fastPath } from "./fast-path.ts";
import { HTTP_METHODS, type OpenApiDocument, specRoutes } from "./spec.ts";

export type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export interface ServerOptions {
  spec: OpenApiDocument;
  handlers: Record<string, Handler>;
  /** Handlers that need only what RouteRequest and RouteReply offer: the fast path may run them (see fast-path.ts). */
  dataHandlers: Record<string, DataHandler>;
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
  /** Runs the data handlers' plain requests on the fast path (see fast-path.ts). */
  fastPath: boolean;
  /** Counts the requests the fast path answered. */
  counters: { fastPathRequests: number };
  /** Checks the caller against the security scheme the spec names for the route; null leaves the scheme open. */
  guards: Record<"clusterSecret" | "apiToken", Guard | null>;
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

export function sendError<R extends RouteReply>(reply: R, err: RinglogError): R {
  return reply.code(err.status).type("application/json").send(err.toBody() satisfies ErrorBody) as R;
}

/** A request as error handling sees it: fastify's carry their route's body limit, the fast path's do not. */
type ErrorRequest = RouteRequest & { readonly routeOptions?: { readonly bodyLimit?: number } };

/** Maps anything thrown or raised by fastify itself to a RinglogError. */
function toRinglogError(err: unknown, req: ErrorRequest): RinglogError {
  if (err instanceof RinglogError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string; validation?: unknown[]; validationContext?: string };
  if (e.validation) {
    if (e.validationContext === "params" && req.url.startsWith("/kv/")) return new RinglogError("invalid_key", "the key is empty");
    return new RinglogError("invalid_request", e.message ?? "invalid request", { in: e.validationContext, errors: e.validation });
  }
  switch (e.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new RinglogError("body_too_large", "request body is too large", { limit: Number(req.routeOptions?.bodyLimit) });
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

/** Logs an error as its status deserves, in the request's trace, and answers it with the Error body. */
function respondWithError(err: unknown, req: ErrorRequest, reply: RouteReply, log: FastifyBaseLogger): void {
  const mapped = toRinglogError(err, req);
  // The handler may run outside the request's span context; its log lines must still carry the trace.
  const write = () => {
    if (mapped.status === 500) log.error({ err }, "request failed");
    else if (mapped.status > 500) log.warn({ code: mapped.code, details: mapped.details }, mapped.message);
    else log.debug({ code: mapped.code, status: mapped.status }, "request refused");
  };
  if (req.span) context.with(trace.setSpan(context.active(), req.span), write);
  else write();
  req.span?.recordException(err as Error);
  sendError(reply, mapped);
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  /** The fast path, once the routes it serves exist; it returns false for requests it leaves to fastify. */
  let dispatch: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  let closing = false;
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.maxBodyBytes,
    requestTimeout: opts.requestTimeoutMs,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    connectionTimeout: opts.connectionTimeoutMs,
    return503OnClosing: true,
    // The server fastify would make, with the data path's dispatch in front of fastify's.
    serverFactory: (handler) => {
      // Request heads may carry a context header of maxContextBytes plus the usual headers.
      const server = createServer({ maxHeaderSize: opts.maxHeaderBytes }, (req, res) => {
        if (closing || !dispatch?.(req, res)) handler(req, res);
      });
      server.keepAliveTimeout = opts.keepAliveTimeoutMs;
      server.requestTimeout = opts.requestTimeoutMs;
      server.setTimeout(opts.connectionTimeoutMs);
      return server;
    },
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

  app.setErrorHandler((err, req, reply) => respondWithError(err, req, reply, req.log));
  // Requests arriving while the server closes are fastify's, which answers them 503.
  app.addHook("preClose", async () => {
    closing = true;
  });

  app.setNotFoundHandler((req, reply) => {
    if (/^\/kv\/?(\?|$)/.test(req.url)) return sendError(reply, new RinglogError("invalid_key", "the key is empty"));
    return sendError(reply, new RinglogError("not_found", `no route ${req.method} ${req.url.split("?")[0]}`));
  });

  if (opts.tracing) installTracing(app);

  await app.register(swagger, { mode: "static", specification: { document: opts.spec as never } });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  const handlers: Record<string, Handler> = { ...opts.handlers, ...opts.dataHandlers, getSpec: async () => app.swagger() };
  const routes = specRoutes(opts.spec);
  const fastRoutes: FastRoute[] = [];
  for (const route of routes) {
    const handler = handlers[route.operationId];
    if (!handler) throw new Error(`openapi.yaml operation ${route.operationId} has no handler`);
    const guard = route.guard === "none" ? null : opts.guards[route.guard];
    app.route({
      method: route.method.toUpperCase() as "GET",
      url: route.url,
      schema: { ...route.schema, hide: true },
      config: { specPath: route.path },
      ...guardHook(guard),
      handler: opts.tracing ? inSpan(handler) : handler,
    });
    const data = opts.dataHandlers[route.operationId];
    // A route with path parameters other than a rest-of-path key is fastify's to parse.
    if (data && !route.url.includes(":")) {
      fastRoutes.push({ method: route.method.toUpperCase(), url: route.url, path: route.path, guard, handler: opts.tracing ? inSpan(data) : data });
    }
  }
  const known = new Set(routes.map((r) => r.operationId));
  for (const id of [...Object.keys(opts.handlers), ...Object.keys(opts.dataHandlers)]) if (!known.has(id)) throw new Error(`handler ${id} is not an operation in openapi.yaml`);
  if (opts.fastPath) {
    dispatch = fastPath({
      routes: fastRoutes,
      counters: opts.counters,
      maxBodyBytes: opts.maxBodyBytes,
      maxParamLength: opts.maxParamLength,
      onError: (err, req, reply) => respondWithError(err, req, reply, app.log),
      ...(opts.tracing ? { startSpan: startServerSpan, endSpan: endServerSpan } : {}),
    });
  }

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

/**
 * The guard runs before the body is read, as a callback hook: an async hook costs a promise
 * and a turn of the microtask queue on every request. An open scheme gets no hook at all.
 */
function guardHook(guard: Guard | null): { onRequest?: onRequestHookHandler } {
  if (!guard) return {};
  return {
    onRequest: (req, _reply, done) => {
      try {
        guard(req);
      } catch (err) {
        return done(err as Error);
      }
      done();
    },
  };
}

/** One server span per client request and per traced internal call, parented on the caller's W3C trace context. */
function startServerSpan(req: RouteRequest, route: string): Span | undefined {
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  // Node-to-node calls outside any trace are background chatter (gossip, Merkle
  // comparisons); their callers do not trace them either.
  if (route.startsWith("/internal/") && !trace.getSpanContext(parent)) return undefined;
  return tracer.startSpan(
    `${req.method} ${route}`,
    { kind: SpanKind.SERVER, attributes: { "http.request.method": req.method, "http.route": route, "url.path": req.url.split("?")[0] } },
    parent,
  );
}

function endServerSpan(span: Span, status: number): void {
  span.setAttribute("http.response.status_code", status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

function installTracing(app: FastifyInstance): void {
  app.addHook("onRequest", async (req) => {
    const span = startServerSpan(req, req.routeOptions.config.specPath ?? "unmatched");
    if (span) req.span = span;
  });
  app.addHook("onResponse", async (req, reply) => {
    if (req.span) endServerSpan(req.span, reply.statusCode);
  });
}

function inSpan<Q extends RouteRequest, P>(handler: (req: Q, reply: P) => Promise<unknown>): (req: Q, reply: P) => Promise<unknown> {
  return (req, reply) => (req.span ? context.with(trace.setSpan(context.active(), req.span), () => handler(req, reply)) : handler(req, reply));
}
