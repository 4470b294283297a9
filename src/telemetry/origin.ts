/**
 * Where a write came from, kept with its event: the trace and span of the client request
 * that made it. Work the write causes later (hint delivery, read repair, anti-entropy,
 * handoff) runs in its own trace and links back to these.
 */
import { type Attributes, type Link, SpanStatusCode, TraceFlags, isSpanContextValid, trace } from "@opentelemetry/api";
import { tracer } from "./tracing.ts";
import type { KeyState } from "../clock/fold.ts";
import type { LogEntry } from "../log/entry.ts";

/** The active span as `traceId-spanId`, or undefined when nothing is being traced. */
export function currentOrigin(): string | undefined {
  const ctx = trace.getActiveSpan()?.spanContext();
  return ctx && isSpanContextValid(ctx) ? `${ctx.traceId}-${ctx.spanId}` : undefined;
}

/** A span link to an origin; undefined for a missing or malformed one. */
export function linkTo(origin: string | undefined): Link | undefined {
  const m = origin ? /^([0-9a-f]{32})-([0-9a-f]{16})$/.exec(origin) : null;
  if (!m) return undefined;
  return { context: { traceId: m[1]!, spanId: m[2]!, traceFlags: TraceFlags.SAMPLED, isRemote: true } };
}

/** Distinct links to the given origins, at most `limit` (a span should not carry thousands). */
export function linksTo(origins: Iterable<string | undefined>, limit = 32): Link[] {
  const seen = new Set<string>();
  const out: Link[] = [];
  for (const o of origins) {
    if (out.length >= limit) break;
    if (!o || seen.has(o)) continue;
    seen.add(o);
    const l = linkTo(o);
    if (l) out.push(l);
  }
  return out;
}

/** The origins of a key state's versions. */
export const originsOf = (state: KeyState) => state.siblings.map((v) => v.origin);

/** The origins of the writes a log entry carries. */
export function entryOrigins(e: LogEntry): (string | undefined)[] {
  if (e.kind === "event") return [e.event.origin];
  if (e.kind === "state") return originsOf(e.state);
  return [];
}

/**
 * Runs background work (hint delivery, repair, handoff) as the root of a trace of its own,
 * linked to the writes that caused it.
 */
export async function inOwnTrace<T>(name: string, entries: Iterable<LogEntry>, attributes: Attributes, work: () => Promise<T>): Promise<T> {
  const links = linksTo((function* () {
    for (const e of entries) yield* entryOrigins(e);
  })());
  return tracer.startActiveSpan(name, { root: true, links, attributes }, async (span) => {
    try {
      return await work();
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}
