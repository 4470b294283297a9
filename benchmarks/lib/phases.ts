/** The measured phases the scenarios are made of. */
import { join } from "node:path";
import { type LoadResult, WrittenKeys, runLoad } from "./load.ts";
import { WORKLOAD, type BenchOptions } from "./options.ts";
import { type Procs, freePort, stop, waitHttpOk } from "./procs.ts";

const HELLO_SERVER = join(import.meta.dir, "hello-server.ts");
/** Rounds of preloading before giving up: each round writes what the previous ones missed. */
const PRELOAD_ROUNDS = 5;

export type Load = Pick<BenchOptions, "seconds" | "connections" | "loadTool">;
export type WarmUp = Pick<BenchOptions, "warmup" | "connections" | "loadTool">;

const keys = { keyPrefix: WORKLOAD.keyPrefix, keyCount: WORKLOAD.keyCount };

/**
 * Random-key PUTs of random values for `seconds`. Through autocannon the keys that got a 2xx
 * are tracked, so the preload writes only the gaps; wrk cannot track them cheaply (a Lua
 * callback per response), so after a wrk phase the preload writes every key.
 */
export function putPhase(procs: Procs, urls: string[], load: Load): Promise<LoadResult> {
  return runLoad(procs, {
    ...keys,
    tool: load.loadTool,
    urls,
    connections: load.connections,
    seconds: load.seconds,
    method: "PUT",
    valueBytes: WORKLOAD.valueBytes,
    contentType: WORKLOAD.contentType,
    track: load.loadTool === "autocannon",
  });
}

/**
 * PUTs to keys the measured phases never touch, so a fresh node's JIT compiler has done its
 * work before a figure is taken: what is measured is the steady state a running database is
 * in, and the measured phases still start from the same data set.
 */
export async function warmUpPhase(procs: Procs, urls: string[], load: WarmUp): Promise<void> {
  if (load.warmup === 0) return;
  await runLoad(procs, {
    keyPrefix: WORKLOAD.warmupKeyPrefix,
    keyCount: WORKLOAD.keyCount,
    tool: load.loadTool,
    urls,
    connections: load.connections,
    seconds: load.warmup,
    method: "PUT",
    valueBytes: WORKLOAD.valueBytes,
    contentType: WORKLOAD.contentType,
  });
}

/** Random-key GETs for `seconds`. */
export function getPhase(procs: Procs, urls: string[], load: Load): Promise<LoadResult> {
  return runLoad(procs, { ...keys, tool: load.loadTool, urls, connections: load.connections, seconds: load.seconds, method: "GET" });
}

export interface Preload {
  keys: number;
  rounds: number;
  seconds: number;
  /** The PUT phase did not report which keys it wrote, so every key was written. */
  untracked: boolean;
}

export const describePreload = (p: Preload) =>
  `${p.keys.toLocaleString("en-US")} keys ${p.untracked ? "(every key: wrk does not report which keys its PUTs wrote)" : "the PUT phase missed"}, in ${p.rounds} round(s), ${p.seconds.toFixed(1)} s`;

/** Writes every key the PUT phase did not (all of them after an untracked one), so that every GET of the GET phase hits. */
export async function preloadPhase(procs: Procs, urls: string[], connections: number, put: LoadResult): Promise<Preload> {
  const written = new WrittenKeys(WORKLOAD.keyCount);
  if (put.written) written.add(put);
  const start = performance.now();
  let missing = written.missing();
  const total = missing.length;
  let rounds = 0;
  while (missing.length > 0) {
    if (rounds === PRELOAD_ROUNDS) throw new Error(`preload: ${missing.length} keys still unwritten after ${rounds} rounds`);
    rounds++;
    const r = await runLoad(procs, {
      ...keys,
      tool: "autocannon",
      urls,
      connections: Math.min(connections, missing.length),
      keyList: missing,
      method: "PUT",
      valueBytes: WORKLOAD.valueBytes,
      contentType: WORKLOAD.contentType,
      track: true,
    });
    written.add(r);
    missing = written.missing();
  }
  return { keys: total, rounds, seconds: (performance.now() - start) / 1000, untracked: !put.written };
}

export type HelloKind = "bare" | "fastify";

/** A hello-world server in its own bun process, loaded exactly like Ringlog's GET phase. */
export async function helloPhase(procs: Procs, kind: HelloKind, load: Load): Promise<LoadResult> {
  const port = await freePort();
  const child = procs.spawn(`hello-${kind}`, [process.execPath, HELLO_SERVER, kind, String(port)], { logDir: procs.tempDir(`hello-${kind}`) });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHttpOk(`${url}/`, child);
    return await getPhase(procs, [url], load);
  } finally {
    await stop(child);
  }
}
