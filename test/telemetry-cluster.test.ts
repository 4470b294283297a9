/**
 * Tracing across nodes: a 3-node cluster exports to a local OTLP/HTTP receiver. One PUT is
 * one trace with spans from at least two nodes, every span parented inside the trace; a
 * hint delivered later runs in its own trace whose span links back to the original write.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { TestCluster, eventually } from "./support/cluster.ts";
import { OtlpReceiver, type ReceivedSpan, isClient, isServer } from "./support/otlp.ts";

let receiver: OtlpReceiver;
let cluster: TestCluster;

beforeAll(async () => {
  receiver = new OtlpReceiver();
  cluster = await TestCluster.start({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: "100", RINGLOG_AAE_INTERVAL_MS: "0" } });
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
  receiver?.stop();
});

const inTrace = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);
const node = (s: ReceivedSpan) => s.resource["service.instance.id"];

test("one PUT is one trace: coordinator span, a client span per replica call, the replicas' server spans and log commits, correctly parented", async () => {
  const put = await fetch(`${cluster.node("n1").url}/kv/traced/one?w=all`, { method: "PUT", body: "x" });
  expect(put.status).toBe(204);
  const root = await receiver.waitFor("the PUT's server span", () => receiver.spans.find((s) => s.name === "PUT /kv/{key}" && s.attributes["url.path"] === "/kv/traced/one" && s.parentSpanId === ""));
  // w=all: both other replicas commit inside this trace.
  await receiver.waitFor("three log commits in the trace", () => (inTrace(root.traceId).filter((s) => s.name === "log.commit").length >= 3 ? true : undefined));
  const spans = inTrace(root.traceId);
  const byId = new Map(spans.map((s) => [s.spanId, s]));

  expect(new Set(spans.map(node)).size).toBe(3);
  for (const s of spans) if (s !== root) expect(byId.has(s.parentSpanId)).toBe(true);
  expect(spans.filter((s) => s.parentSpanId === "")).toEqual([root]);

  const coordinators = spans.filter((s) => s.name === "coordinator.put");
  expect(coordinators.length).toBe(1);
  const coordinator = coordinators[0]!;
  const clients = spans.filter((s) => isClient(s) && s.name === "rpc /internal/apply");
  expect(clients.length).toBe(2);
  for (const c of clients) {
    expect(node(c)).toBe(node(coordinator));
    const server = spans.find((s) => isServer(s) && s.parentSpanId === c.spanId)!;
    expect(server.name).toBe("POST /internal/apply");
    expect(node(server)).toBe(c.attributes["ringlog.peer"]);
    const commit = spans.find((s) => s.name === "log.commit" && s.parentSpanId === server.spanId)!;
    expect(node(commit)).toBe(node(server));
  }
  // The coordinator's own commit is a child of its coordinator span.
  expect(spans.some((s) => s.name === "log.commit" && s.parentSpanId === coordinator.spanId)).toBe(true);
  // Background chatter (gossip) is not traced.
  expect(receiver.spans.some((s) => s.name.includes("/internal/gossip"))).toBe(false);
}, 30_000);

test("a hint delivered after the owner returns runs in its own trace, linked to the write that made it", async () => {
  await cluster.node("n3").kill();
  await cluster.waitAllUp(["n3"]);
  const put = await fetch(`${cluster.node("n1").url}/kv/traced/hinted`, { method: "PUT", body: "h" });
  expect(put.status).toBe(204);
  const write = await receiver.waitFor("the hinted PUT's server span", () => receiver.spans.find((s) => s.name === "PUT /kv/{key}" && s.attributes["url.path"] === "/kv/traced/hinted"));
  expect((await Promise.all(["n1", "n2"].map((id) => cluster.hintTotal(cluster.node(id))))).some((t) => t > 0)).toBe(true);

  await cluster.node("n3").restart();
  await cluster.waitAllUp();
  await eventually("hints to drain", async () => (await Promise.all(["n1", "n2"].map((id) => cluster.hintTotal(cluster.node(id))))).every((t) => t === 0));

  const delivery = await receiver.waitFor("a hint.deliver span linked to the write", () =>
    receiver.spans.find((s) => s.name === "hint.deliver" && s.links.some((l) => l.traceId === write.traceId)),
  );
  expect(delivery.traceId).not.toBe(write.traceId);
  expect(delivery.parentSpanId).toBe("");
  expect(delivery.attributes["ringlog.peer"]).toBe("n3");
  // The delivery's own trace reaches n3, where the hint is committed.
  await receiver.waitFor("n3's commit in the delivery trace", () => inTrace(delivery.traceId).find((s) => s.name === "log.commit" && node(s) === "n3"));
}, 60_000);
