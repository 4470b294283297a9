/**
 * The checker catches real lost writes: last-write-wins under clock skew and concurrent
 * writers loses acknowledged writes by design (as Jepsen showed for Riak and Cassandra),
 * while the same workload in the default causal mode loses none.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { TestCluster } from "../support/cluster.ts";
import { runPhase } from "./harness.ts";
import { clockSkew } from "./nemesis.ts";

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({ env: { RINGLOG_RESOLVERS: "lww/=lww" } });
});
afterAll(async () => {
  await cluster?.destroy();
});

const workload = { clients: 4, keys: 3, quietMs: 1_000, faultMs: 5_000, blindRatio: 0.5, nemesis: clockSkew };

test("lww under clock skew is reported as losing acknowledged writes", async () => {
  const r = await runPhase(cluster, { ...workload, name: "lww", seed: 77 });
  const lost = r.violations.filter((v) => v.kind === "lost-write");
  console.log(`lww run: ${r.ops} ops, ${r.ackedWrites} acked writes, ${lost.length} lost`);
  expect(r.ackedWrites).toBeGreaterThan(50);
  expect(lost.length).toBeGreaterThan(0);
}, 120_000);

test("the same run in causal mode loses none", async () => {
  const r = await runPhase(cluster, { ...workload, name: "causal", seed: 77 });
  console.log(`causal run: ${r.ops} ops, ${r.ackedWrites} acked writes, ${r.violations.length} violations`);
  expect(r.ackedWrites).toBeGreaterThan(50);
  expect(r.violations).toEqual([]);
}, 120_000);
