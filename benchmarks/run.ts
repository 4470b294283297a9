/**
 * The benchmarks: `npm run bench -- <scenario> [options]`. Prints the results and writes them
 * to benchmarks/results/. Exits 1 when a run fails or any bar is missed, 2 on bad usage.
 */
import { commitId, machineInfo, pinToCpus, yardstickMs } from "./lib/machine.ts";
import { OPTIONS_USAGE, UsageError, parseOptions } from "./lib/options.ts";
import { Procs } from "./lib/procs.ts";
import { renderMarkdown, writeReport } from "./lib/report.ts";
import type { Scenario } from "./lib/scenario.ts";
import { cluster } from "./scenarios/cluster.ts";
import { single } from "./scenarios/single.ts";
import { aaeScenario } from "./scenarios/aae.ts";
import { handoffScenario } from "./scenarios/handoff.ts";

const SCENARIOS: Record<string, Scenario> = { single, cluster, aae: aaeScenario, handoff: handoffScenario };

function usage(problem?: string): never {
  if (problem) process.stderr.write(`${problem}\n`);
  process.stderr.write(`usage: npm run bench -- <${Object.keys(SCENARIOS).join("|")}> ${OPTIONS_USAGE}\n`);
  process.exit(2);
}

const [name, ...rest] = process.argv.slice(2);
const scenario = name ? SCENARIOS[name] : undefined;
if (!name || !scenario) usage(name ? `unknown scenario: ${name}` : undefined);
let options;
try {
  options = parseOptions(rest);
} catch (err) {
  if (err instanceof UsageError) usage(err.message);
  throw err;
}

if (options.cpus !== undefined) {
  try {
    pinToCpus(options.cpus);
  } catch (err) {
    usage(`--cpus ${options.cpus}: ${(err as Error).message}`);
  }
}

const procs = new Procs();
let interrupted = false;
// An interrupted run must not leave servers running or data folders behind.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted = true;
    void procs.stopAll().finally(() => process.exit(130));
  });
}

const date = new Date().toISOString();
const commit = commitId();
const machine = machineInfo();
const yardstickStart = yardstickMs();
let exitCode = 1;
try {
  const result = await scenario({ procs, options });
  const report = { scenario: name, date, commit, machine, yardstickMs: { start: yardstickStart, end: yardstickMs() }, ...result };
  process.stdout.write(`\n${renderMarkdown(report)}\n`);
  for (const path of writeReport(report)) process.stdout.write(`wrote ${path}\n`);
  exitCode = report.bars.every((b) => b.pass) ? 0 : 1;
} catch (err) {
  process.stderr.write(interrupted ? `benchmark ${name} interrupted\n` : `benchmark ${name} failed: ${(err as Error).stack ?? err}\n`);
} finally {
  await procs.stopAll();
}
process.exit(exitCode);
