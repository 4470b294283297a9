/**
 * `single`: one node, PUT then GET, each figure as a ratio to a bare Bun.serve hello-world
 * measured in the same run with the same load (fastify's hello-world too, for calibration).
 */
import { describePreload, getPhase, helloPhase, preloadPhase, putPhase, warmUpPhase } from "../lib/phases.ts";
import { benchEnv, startNode } from "../lib/ringlog.ts";
import { stop } from "../lib/procs.ts";
import { bar } from "../lib/report.ts";
import { memory } from "../lib/rss.ts";
import { commonNotes, type ScenarioContext, type ScenarioResult, describeMemory, workloadConfig } from "../lib/scenario.ts";

/**
 * A load tool thread at this many cores, while the single-threaded server it loads stays below
 * HEADROOM_CORES, is the bottleneck: the server was waiting for requests.
 */
const SATURATED_CORES = 0.9;
const HEADROOM_CORES = 0.8;

export async function single({ procs, options }: ScenarioContext): Promise<ScenarioResult> {
  const bare = await helloPhase(procs, "bare", options);
  const fastify = await helloPhase(procs, "fastify", options);

  const node = await startNode(procs, "n1", benchEnv(options.fsync));
  await warmUpPhase(procs, [node.url], options);
  const put = await putPhase(procs, [node.url], options);
  const preload = await preloadPhase(procs, [node.url], options.connections, put);
  const get = await getPhase(procs, [node.url], options);
  const mem = memory(node.child.proc.pid);
  await stop(node.child);

  const toBare = (rate: number) => ({ to: "bare", value: rate / bare.okPerSec });
  const putRatio = toBare(put.okPerSec);
  const getRatio = toBare(get.okPerSec);
  return {
    config: { ...workloadConfig(options), "N / R / W": "1 / 1 / 1 (one node caps the defaults 3 / 2 / 2)" },
    phases: [
      { name: "bare Bun.serve hello-world", target: "Bun.serve", load: bare },
      { name: "fastify hello-world", target: "fastify on Bun", load: fastify, ratio: toBare(fastify.okPerSec) },
      { name: "PUT", target: "n1", load: put, ratio: putRatio },
      { name: "GET", target: "n1", load: get, ratio: getRatio },
    ],
    figures: {
      "Ringlog RSS (VmHWM)": describeMemory(mem),
      preload: describePreload(preload),
    },
    bars: [
      bar("GET rate / bare", getRatio.value, ">=", 0.35),
      bar("PUT rate / bare", putRatio.value, ">=", 0.25),
      bar("PUT p99", put.latencyMs.p99, "<=", 20, " ms"),
      bar("GET p99", get.latencyMs.p99, "<=", 20, " ms"),
    ],
    notes: [
      ...commonNotes(options),
      "The hello-world servers get exactly the GET phase's requests (GET /kv/bench/<n>) and answer every path.",
      "Group commit is always on in Ringlog (RINGLOG_GROUP_COMMIT_MAX_BATCH default 512).",
      ...(bare.cpu.loadTool >= SATURATED_CORES && bare.cpu.servers < HEADROOM_CORES
        ? [
            `The load tool used ${bare.cpu.loadTool} cores during the bare phase while Bun.serve used ${bare.cpu.servers}: ` +
              "the bare figure is the load tool's ceiling on this machine, not Bun.serve's, so every ratio to it is higher than against Bun.serve's own limit.",
          ]
        : []),
    ],
  };
}
