/**
 * /metrics on a real 3-node cluster: scraped before and after a workload that reads, writes,
 * makes siblings, loses a node (hints, quorum failures) and heals (read repair); the named
 * series must have moved. Hint delivery is held back so only reads repair the returning node.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { TestCluster, eventually } from "./support/cluster.ts";

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start({ env: { RINGLOG_AAE_INTERVAL_MS: "0", RINGLOG_HINT_INTERVAL_MS: "600000" } });
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
});

type Samples = Map<string, number>;

/** Parses the text exposition into `name{labels}` → value, without the node label. */
function parse(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    const labels = (m[2] ?? "").replace(/,?node="[^"]*"/, "").replace(/^\{,/, "{").replace(/^\{\}$/, "");
    out.set(`${m[1]}${labels}`, Number(m[3]));
  }
  return out;
}

async function scrape(id: string): Promise<Samples> {
  const res = await fetch(`${cluster.node(id).url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("text/plain");
  return parse(await res.text());
}

const value = (s: Samples, name: string) => s.get(name) ?? 0;

test("the named series move with the workload", async () => {
  const before = await scrape("n1");
  for (const name of ["ringlog_hint_queue_depth", "ringlog_vnodes_owned", "ringlog_db_file_bytes", "ringlog_members_up", "ringlog_snapshot_backlog", "ringlog_log_compacted_rows", "ringlog_wal_rewinds_total", "ringlog_wal_rewinds_deferred_total", "ringlog_wal_rewinds_given_up_total", "ringlog_snapshot_failures_total", "ringlog_wal_checkpoint_failures_total", "ringlog_local_hint_failures_total"]) expect(before.has(name)).toBe(true);
  expect(value(before, "ringlog_vnodes_owned")).toBeGreaterThanOrEqual(21);
  expect(value(before, "ringlog_members_up")).toBe(3);

  const n1 = cluster.node("n1").url;
  for (let i = 0; i < 50; i++) expect((await fetch(`${n1}/kv/m/${i}`, { method: "PUT", body: `v${i}` })).status).toBe(204);
  for (let i = 0; i < 50; i++) await fetch(`${n1}/kv/m/${i}`).then((r) => r.arrayBuffer());
  // Two blind writes: a read that returns two siblings.
  await fetch(`${n1}/kv/m/sib`, { method: "PUT", body: "a" });
  await fetch(`${n1}/kv/m/sib`, { method: "PUT", body: "b" });
  expect((await fetch(`${n1}/kv/m/sib`)).status).toBe(300);

  await cluster.node("n3").kill();
  await cluster.waitAllUp(["n3"]);
  for (let i = 0; i < 20; i++) expect((await fetch(`${n1}/kv/m/down/${i}`, { method: "PUT", body: "d" })).status).toBe(204);
  expect((await fetch(`${n1}/kv/m/strict?pw=3`, { method: "PUT", body: "x" })).status).toBe(503);
  const during = await scrape("n1");
  expect(value(during, "ringlog_hint_queue_depth")).toBeGreaterThan(0);
  expect(value(during, "ringlog_members_down")).toBe(1);

  await cluster.node("n3").restart();
  await cluster.waitAllUp();
  // n3 missed the writes made while it was down; with hints held back and AAE off, reads repair it.
  for (let i = 0; i < 20; i++) await fetch(`${n1}/kv/m/down/${i}?r=all`).then((r) => r.arrayBuffer());
  await eventually("read repairs", async () => value(await scrape("n1"), "ringlog_read_repairs_total") >= value(before, "ringlog_read_repairs_total") + 20);

  const after = await scrape("n1");
  const moved = (name: string) => expect(value(after, name)).toBeGreaterThan(value(before, name));
  moved('ringlog_operation_duration_seconds_count{operation="put",outcome="ok"}');
  moved('ringlog_operation_duration_seconds_count{operation="get",outcome="ok"}');
  moved('ringlog_operation_duration_seconds_count{operation="put",outcome="error"}');
  moved("ringlog_quorum_failures_total");
  moved("ringlog_local_hints_total");
  moved("ringlog_hint_queue_depth");
  moved("ringlog_read_repairs_total");
  moved("ringlog_read_siblings_count");
  moved('ringlog_read_siblings_bucket{le="1"}');
  expect(value(after, 'ringlog_read_siblings_bucket{le="2"}') - value(after, 'ringlog_read_siblings_bucket{le="1"}')).toBeGreaterThanOrEqual(1);
  moved("ringlog_log_commits_total");
  moved("ringlog_keys");
  expect(value(after, "ringlog_members_down")).toBe(0);
}, 90_000);
