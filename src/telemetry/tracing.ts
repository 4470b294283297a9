/**
 * Tracing: the OpenTelemetry NodeSDK with the OTLP/HTTP exporter, started only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set. Without it the global tracer is the API's no-op one,
 * so instrumented code costs next to nothing.
 */
import { trace } from "@opentelemetry/api";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";

export const tracer = trace.getTracer("ringlog");

export interface Tracing {
  enabled: boolean;
  shutdown(): Promise<void>;
}

export function startTracing(nodeId: string, env: Record<string, string | undefined> = process.env): Tracing {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    return { enabled: false, shutdown: async () => {} };
  }
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME ?? "ringlog",
      [ATTR_SERVICE_VERSION]: "0.1.0",
      "service.instance.id": nodeId,
    }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
    instrumentations: [],
  });
  sdk.start();
  return { enabled: true, shutdown: () => sdk.shutdown() };
}
