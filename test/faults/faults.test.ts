/**
 * The bounded fault run in `npm test`: one real 3-node cluster, a fault-free phase and one
 * phase per nemesis, fixed seeds. Prints one line per phase; any violation fails the run
 * with the seed, the plan and the history slice that shows it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { TestCluster } from "../support/cluster.ts";
import { formatViolation } from "./checker.ts";
import { type PhaseResult, runPhase } from "./harness.ts";
import { ALL_NEMESES } from "./nemesis.ts";

let cluster: TestCluster;
const results: PhaseResult[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start();
});
afterAll(async () => {
  await cluster?.destroy();
  for (const r of results) {
    const count = (o: string) => r.history.filter((op) => op.outcome === o).length;
    console.log(
      `fault run  ${r.name.padEnd(17)} seed ${r.seed}  ops ${String(r.ops).padStart(5)}  acked writes ${String(r.ackedWrites).padStart(5)}  ` +
        `failed ${String(count("fail")).padStart(4)}  unknown ${String(count("unknown")).padStart(4)}  violations ${r.violations.length}`,
    );
  }
});

const phases = [{ name: "none", nemesis: undefined }, ...ALL_NEMESES.map((n) => ({ name: n.name, nemesis: n }))];

for (const [i, phase] of phases.entries()) {
  test(`no violations under ${phase.name}`, async () => {
    const r = await runPhase(cluster, {
      name: phase.name,
      ...(phase.nemesis ? { nemesis: phase.nemesis } : {}),
      seed: 1000 + i,
      clients: 4,
      keys: 4,
      quietMs: 1_500,
      faultMs: 5_000,
      blindRatio: 0,
    });
    results.push(r);
    const report = [`seed ${r.seed}; plan: ${r.plan.join("; ") || "(no faults)"}`, ...r.violations.slice(0, 5).map(formatViolation)].join("\n");
    expect(r.ackedWrites).toBeGreaterThan(10);
    if (r.violations.length > 0) throw new Error(report);
  }, 120_000);
}
