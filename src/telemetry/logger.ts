/** Structured JSON logs (pino), stamped with the active trace and span ids. */
import pino, { type Logger } from "pino";
import { trace } from "@opentelemetry/api";

export function createLogger(level: string, nodeId: string): Logger {
  return pino({
    level,
    base: { node: nodeId },
    mixin() {
      const ctx = trace.getActiveSpan()?.spanContext();
      return ctx ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
    },
  });
}
export type { Logger };
