/** The causal context's HTTP form: base64url of its msgpack wire form, opaque to clients. */
import { type CausalContext, ContextFormatError, actorCount, fromWire, toWire } from "../clock/context.ts";
import { packr } from "../event/event.ts";
import { RinglogError } from "../errors.ts";

export const CONTEXT_HEADER = "x-ringlog-context";

export function encodeContextHeader(ctx: CausalContext): string {
  return Buffer.from(packr.pack(toWire(ctx))).toString("base64url");
}

export function decodeContextHeader(raw: string, limits: { maxContextBytes: number; maxContextActors: number }): CausalContext {
  if (raw.length > limits.maxContextBytes) {
    throw new RinglogError("invalid_context", "context header is too large", { limit: limits.maxContextBytes, size: raw.length });
  }
  if (!/^[A-Za-z0-9_-]*$/.test(raw)) throw new RinglogError("invalid_context", "context header is not base64url");
  let ctx: CausalContext;
  try {
    ctx = fromWire(packr.unpack(Buffer.from(raw, "base64url")));
  } catch (err) {
    const why = err instanceof ContextFormatError ? err.message : "not a msgpack context";
    throw new RinglogError("invalid_context", `context header is malformed: ${why}`);
  }
  const actors = actorCount(ctx);
  if (actors > limits.maxContextActors) {
    throw new RinglogError("invalid_context", `context names ${actors} actors`, { limit: limits.maxContextActors });
  }
  return ctx;
}
