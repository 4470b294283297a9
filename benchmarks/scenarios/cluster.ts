/**
 * `cluster`: a local 3-node cluster at N=3, R=2, W=2 under the single-node load, PUT and GET,
 * then PUT with one node killed; each rate as a ratio to one node measured in the same run.
 */
import { describePreload, getPhase, preloadPhase, putPhase, warmUpPhase } from "../lib/phases.ts";
import { stop } from "../lib/procs.ts";
import { type RinglogNode, benchEnv, countingSnapshots, hintTotal, startCluster, startNode, waitMembers } from "../lib/ringlog.ts";
import { bar } from "../lib/report.ts";
import { type Memory, memory } from "../lib/rss.ts";
import { commonNotes, type ScenarioContext, type ScenarioResult, describeMemory, workloadConfig } from "../lib/scenario.ts";

const urls = (nodes: RinglogNode[]) => nodes.map((n) => n.url);
const ids = (nodes: RinglogNode[]) => nodes.map((n) => n.id).join(",");

export async function cluster({ procs, options }: ScenarioContext): Promise<ScenarioResult> {
  const env = benchEnv(options.fsync);

  const one = await startNode(procs, "n1", env);
  await warmUpPhase(procs, [one.url], options);
  const [onePut, onePutSnaps] = await countingSnapshots([one], () => putPhase(procs, [one.url], options));
  await preloadPhase(procs, [one.url], options.connections, onePut);
  const [oneGet, oneGetSnaps] = await countingSnapshots([one], () => getPhase(procs, [one.url], options));
  const oneMem = memory(one.child.proc.pid);
  await stop(one.child);

  const nodes = await startCluster(procs, 3, env);
  const [n1, n2, n3] = nodes as [RinglogNode, RinglogNode, RinglogNode];
  await warmUpPhase(procs, urls(nodes), options);
  const [put, putSnaps] = await countingSnapshots(nodes, () => putPhase(procs, urls(nodes), options));
  const preload = await preloadPhase(procs, urls(nodes), options.connections, put);
  const [get, getSnaps] = await countingSnapshots(nodes, () => getPhase(procs, urls(nodes), options));

  // n3 is gone for good, so its memory is read now.
  const n3Mem = memory(n3.child.proc.pid);
  await stop(n3.child, "SIGKILL");
  const detectMs = await waitMembers([n1, n2], { n1: "up", n2: "up", n3: "down" });
  const live = [n1, n2];
  const [downPut, downPutSnaps] = await countingSnapshots(live, () => putPhase(procs, urls(live), options));
  const hints = (await Promise.all(live.map(hintTotal))).reduce((a, b) => a + b, 0);
  const [n1Mem, n2Mem] = live.map((n) => memory(n.child.proc.pid)) as [Memory, Memory];

  const toOne = (rate: number, ref: number) => ({ to: "single node", value: rate / ref });
  const downFailures = downPut.non2xx + downPut.errors;
  return {
    config: {
      ...workloadConfig(options),
      "N / R / W": "3 / 2 / 2 (defaults); the single-node reference runs at 1 / 1 / 1",
    },
    phases: [
      { name: "PUT, single node", target: "n1 alone", load: onePut },
      { name: "GET, single node", target: "n1 alone", load: oneGet },
      { name: "PUT, cluster", target: ids(nodes), load: put, ratio: toOne(put.okPerSec, onePut.okPerSec) },
      { name: "GET, cluster", target: ids(nodes), load: get, ratio: toOne(get.okPerSec, oneGet.okPerSec) },
      { name: "PUT, n3 killed", target: ids(live), load: downPut, ratio: toOne(downPut.okPerSec, onePut.okPerSec) },
    ],
    figures: {
      "single node RSS (VmHWM)": describeMemory(oneMem),
      "n1 RSS": describeMemory(n1Mem),
      "n2 RSS": describeMemory(n2Mem),
      "n3 RSS (read before it was killed)": describeMemory(n3Mem),
      "cluster preload": describePreload(preload),
      "n3 seen down by n1 and n2 after SIGKILL": `${(detectMs / 1000).toFixed(1)} s`,
      "hints held for n3 after the PUT phase": hints.toLocaleString("en-US"),
      "vnode snapshots taken during each phase, per node":
        `PUT, single node: ${onePutSnaps}; GET, single node: ${oneGetSnaps}; PUT, cluster: ${putSnaps}; GET, cluster: ${getSnaps}; PUT, n3 killed: ${downPutSnaps}`,
    },
    bars: [
      bar("PUT rate, cluster", Math.round(put.okPerSec), ">=", 5000, "/s"),
      bar("GET rate, cluster", Math.round(get.okPerSec), ">=", 8000, "/s"),
      bar("PUT p99, cluster", put.latencyMs.p99, "<=", 25, " ms"),
      bar("GET p99, cluster", get.latencyMs.p99, "<=", 25, " ms"),
      bar("non-2xx + errors, PUT with n3 killed", downFailures, "==", 0),
    ],
    notes: [
      ...commonNotes(options),
      "Cluster latencies are one histogram over all target nodes: the measured histograms of the per-node wrk processes added together, not a merge of per-node percentiles.",
      "The PUT-with-n3-killed phase starts only once n1 and n2 both report n3 down in /cluster.",
    ],
  };
}
