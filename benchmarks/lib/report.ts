/** A scenario's results: printed as tables, written to benchmarks/results/ as JSON and Markdown. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LoadResult } from "./load.ts";
import type { Machine } from "./machine.ts";

const RESULTS_DIR = join(import.meta.dir, "..", "results");

export interface Phase {
  name: string;
  /** What was loaded, e.g. "n1,n2,n3". */
  target: string;
  load: LoadResult;
  /** This phase's 2xx rate divided by a reference phase's, and that reference's name. */
  ratio?: { to: string; value: number };
}

export interface Bar {
  name: string;
  actual: number;
  op: ">=" | "<=" | "==";
  limit: number;
  unit: string;
  pass: boolean;
}

export function bar(name: string, actual: number, op: Bar["op"], limit: number, unit = ""): Bar {
  const pass = op === ">=" ? actual >= limit : op === "<=" ? actual <= limit : actual === limit;
  return { name, actual, op, limit, unit, pass };
}

export interface Report {
  scenario: string;
  date: string;
  commit: string;
  machine: Machine;
  /** The machine's speed at the start and end of the run (machine.ts, yardstickMs). */
  yardstickMs: { start: number; end: number };
  config: Record<string, string | number>;
  phases: Phase[];
  /** Other figures: peak RSS, preload, failure-detection time… */
  figures: Record<string, string | number>;
  bars: Bar[];
  notes: string[];
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number) => String(Math.round(n * 100) / 100);

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function phaseTable(phases: Phase[]): string {
  return table(
    ["phase", "target", "2xx/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "wrk-corrected p99 ms", "runner stall ms", "2xx", "non-2xx", "errors", "timeouts", "ratio", "cores: load / servers / other"],
    phases.map((p) => {
      const l = p.load;
      return [
        p.name,
        p.target,
        int(l.okPerSec),
        ms(l.latencyMs.p50),
        ms(l.latencyMs.p99),
        ms(l.latencyMs.p99_9),
        ms(l.latencyMs.max),
        l.correctedLatencyMs ? ms(l.correctedLatencyMs.p99) : "",
        int(l.stallMs),
        int(l.ok),
        int(l.non2xx),
        int(l.errors),
        int(l.timeouts),
        p.ratio ? `${p.ratio.value.toFixed(2)} × ${p.ratio.to}` : "",
        `${l.cpu.loadTool} / ${l.cpu.servers} / ${l.cpu.other}`,
      ];
    }),
  );
}

function barTable(bars: Bar[]): string {
  const fmt = (n: number) => (Number.isInteger(n) ? int(n) : n.toFixed(2));
  return table(
    ["bar", "actual", "needed", "result"],
    bars.map((b) => [b.name, `${fmt(b.actual)}${b.unit}`, `${b.op} ${fmt(b.limit)}${b.unit}`, b.pass ? "PASS" : "FAIL"]),
  );
}

function keyValueTable(header: [string, string], kv: Record<string, string | number>): string {
  return table(header, Object.entries(kv).map(([k, v]) => [k, String(v)]));
}

/** The whole report as Markdown; also what goes to stdout. */
export function renderMarkdown(r: Report): string {
  const m = r.machine;
  return [
    `# Benchmark \`${r.scenario}\` — ${r.date}`,
    "",
    `Commit \`${r.commit}\`. Machine: ${m.cpu}, ${m.cores} cores${m.coresUsed < m.cores ? ` (this run on ${m.coresUsed} of them)` : ""}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Bun ${m.bun}, Node ${m.node}; load average ${m.loadAverage} at the start.`,
    "",
    `Yardstick (fixed CPU work on one core, best of 5; lower is a faster machine): ${r.yardstickMs.start} ms at the start, ${r.yardstickMs.end} ms at the end.`,
    "",
    "## Configuration",
    "",
    keyValueTable(["setting", "value"], r.config),
    "",
    ...(r.phases.length ? ["## Phases", "", phaseTable(r.phases), ""] : ["## Figures", ""]),
    keyValueTable(["figure", "value"], r.figures),
    "",
    "## Bars",
    "",
    barTable(r.bars),
    "",
    ...(r.notes.length ? ["## Notes", "", ...r.notes.map((n) => `- ${n}`), ""] : []),
  ].join("\n");
}

/** Writes `<scenario>-<UTC stamp>.{json,md}` and `<scenario>-latest.md`; returns the paths. */
export function writeReport(r: Report): string[] {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = r.date.replace(/:/g, "-").replace(/\.\d+Z$/, "Z");
  const base = join(RESULTS_DIR, `${r.scenario}-${stamp}`);
  // The key bitmaps only served the preload; they are noise in a result file.
  const json = { ...r, phases: r.phases.map((p) => ({ ...p, load: { ...p.load, written: undefined } })) };
  const md = renderMarkdown(r);
  const paths = [`${base}.json`, `${base}.md`, join(RESULTS_DIR, `${r.scenario}-latest.md`)];
  writeFileSync(paths[0]!, JSON.stringify(json, null, 2) + "\n");
  writeFileSync(paths[1]!, md);
  writeFileSync(paths[2]!, md);
  return paths;
}
