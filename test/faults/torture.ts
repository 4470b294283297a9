/**
 * The long fault run: `npm run torture -- --minutes 30 --seed 7`. Phases with a seeded
 * random nemesis (sometimes two at once) run back to back on one cluster until the time is
 * up; the history, the plan and the verdict are written to a JSON file, and the exit code
 * says whether any violation was found.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { TestCluster } from "../support/cluster.ts";
import { formatViolation } from "./checker.ts";
import { type PhaseResult, runPhase, seeded } from "./harness.ts";
import { ALL_NEMESES, type Nemesis } from "./nemesis.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { minutes: { type: "string", default: "30" }, seed: { type: "string", default: String(Date.now() % 100000) }, out: { type: "string" } },
});
const minutes = Number(values.minutes);
const seed = Number(values.seed);
if (!(minutes > 0) || !Number.isInteger(seed)) {
  console.error("usage: npm run torture -- --minutes M --seed S [--out file.json]");
  process.exit(2);
}
const out = values.out ?? join(import.meta.dir, "..", "artifacts", `torture-${seed}.json`);

function combined(a: Nemesis, b: Nemesis): Nemesis {
  return {
    name: `${a.name}+${b.name}`,
    async start(ctx) {
      await a.start(ctx);
      await b.start(ctx);
    },
    async stop(ctx) {
      await b.stop(ctx);
      await a.stop(ctx);
    },
  };
}

const rng = seeded(seed);
const pick = () => ALL_NEMESES[Math.floor(rng() * ALL_NEMESES.length)]!;
const cluster = await TestCluster.start();
const results: PhaseResult[] = [];
const deadline = Date.now() + minutes * 60_000;
try {
  for (let i = 0; Date.now() < deadline; i++) {
    const first = pick();
    const second = pick();
    // Two faults that act on the same links or process would undo each other's setup.
    const nemesis = rng() < 0.3 && first !== second && ![first, second].every((n) => ["kill", "pause", "wipe"].includes(n.name)) ? combined(first, second) : first;
    const r = await runPhase(cluster, {
      name: `t${i}-${nemesis.name}`,
      nemesis,
      seed: seed * 1000 + i,
      clients: 4,
      keys: 4,
      quietMs: 2_000,
      faultMs: 5_000 + Math.floor(rng() * 15_000),
      blindRatio: 0,
      log: console.log,
    });
    results.push(r);
    console.log(`${r.name.padEnd(32)} ops ${String(r.ops).padStart(6)}  acked writes ${String(r.ackedWrites).padStart(6)}  violations ${r.violations.length}`);
    for (const v of r.violations.slice(0, 3)) console.log(formatViolation(v));
  }
} finally {
  await cluster.destroy();
}
const violations = results.flatMap((r) => r.violations.map((v) => ({ phase: r.name, seed: r.seed, plan: r.plan, ...v })));
mkdirSync(join(out, ".."), { recursive: true });
writeFileSync(out, JSON.stringify({ seed, minutes, verdict: violations.length === 0 ? "pass" : "fail", phases: results, violations }, null, 1));
console.log(`${results.length} phases, ${violations.length} violations; history and verdict in ${out}`);
process.exit(violations.length === 0 ? 0 : 1);
