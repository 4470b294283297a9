/** Handlers for the public key routes: raw values in, raw values or siblings out. */
import type { FastifyReply, FastifyRequest } from "fastify";
import { trace } from "@opentelemetry/api";
import { type KeyState, isEmpty, liveSiblings } from "../clock/fold.ts";
import type { Coordinator } from "../coordinator/coordinator.ts";
import { RinglogError } from "../errors.ts";
import type { components } from "./schema.gen.ts";
import { CONTEXT_HEADER, decodeContextHeader, encodeContextHeader } from "./context-header.ts";
import type { Handler } from "./server.ts";

type SiblingList = components["schemas"]["SiblingList"];

export interface KvLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
  maxContentTypeBytes: number;
  maxContextBytes: number;
  maxContextActors: number;
}

const SIBLINGS_HEADER = "x-ringlog-siblings";
const DEFAULT_CONTENT_TYPE = "application/octet-stream";

export function kvHandlers(coordinator: Coordinator, limits: KvLimits): Record<string, Handler> {
  const keyOf = (req: FastifyRequest): string => {
    // The key takes the rest of the path (see x-ringlog-rest-of-path in openapi.yaml).
    const key = (req.params as { "*": string })["*"];
    const bytes = Buffer.byteLength(key);
    if (bytes === 0) throw new RinglogError("invalid_key", "the key is empty");
    if (bytes > limits.maxKeyBytes) throw new RinglogError("invalid_key", "the key is too long", { limit: limits.maxKeyBytes, size: bytes });
    return key;
  };

  const contextOf = (req: FastifyRequest) => {
    const raw = req.headers[CONTEXT_HEADER];
    if (raw === undefined) return null;
    if (Array.isArray(raw)) throw new RinglogError("invalid_context", "send the context header once");
    return decodeContextHeader(raw, limits);
  };

  const origin = () => trace.getActiveSpan()?.spanContext().traceId;

  const withContext = (reply: FastifyReply, state: KeyState) =>
    reply.header(CONTEXT_HEADER, encodeContextHeader(state.ctx)).header(SIBLINGS_HEADER, liveSiblings(state).length);

  return {
    async getKey(req, reply) {
      const state = await coordinator.get(keyOf(req));
      const live = liveSiblings(state);
      if (live.length === 0) {
        if (!isEmpty(state)) reply.header(CONTEXT_HEADER, encodeContextHeader(state.ctx));
        throw new RinglogError("not_found", "no live version of this key");
      }
      withContext(reply, state);
      if (live.length === 1) {
        const [v] = live;
        return reply.code(200).type(v!.contentType).send(Buffer.from(v!.value!));
      }
      const body: SiblingList = {
        siblings: live.map((v) => ({ value: Buffer.from(v.value!).toString("base64"), contentType: v.contentType, timestamp: v.ts })),
        context: encodeContextHeader(state.ctx),
      };
      return reply.code(300).type("application/json").send(body);
    },

    async putKey(req, reply) {
      const key = keyOf(req);
      const context = contextOf(req);
      const value = (req.body as Buffer | undefined) ?? Buffer.alloc(0);
      if (value.byteLength > limits.maxValueBytes) {
        throw new RinglogError("value_too_large", "the value is too large", { limit: limits.maxValueBytes, size: value.byteLength });
      }
      const contentType = req.headers["content-type"] ?? DEFAULT_CONTENT_TYPE;
      if (Buffer.byteLength(contentType) > limits.maxContentTypeBytes) {
        throw new RinglogError("invalid_content_type", "the content type is too long", { limit: limits.maxContentTypeBytes });
      }
      const o = origin();
      const state = await coordinator.write({ key, value, contentType, context, ...(o ? { origin: o } : {}) });
      return withContext(reply, state).code(204).send();
    },

    async deleteKey(req, reply) {
      const key = keyOf(req);
      const o = origin();
      const state = await coordinator.write({ key, value: null, contentType: "", context: contextOf(req), ...(o ? { origin: o } : {}) });
      return withContext(reply, state).code(204).send();
    },
  };
}
