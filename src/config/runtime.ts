/**
 * Options of the runtime under a node: the JavaScript engine (JSC) and the memory allocator
 * (mimalloc). Both read them from the environment once, when the process starts, so a node
 * whose environment lacks them executes itself again, with the same pid and arguments and the
 * options added: what Cassandra's launcher does with jvm.options, done by the node itself so
 * every way of starting one (the CLI, `npm start`, the image) gets them.
 *
 * - jitPolicyScale: under a steady load JSC went on compiling the hot paths to its top tier for
 *   a minute and more after a start, its compiler threads taking 53-68 ms of CPU per second per
 *   node from the requests in the first seconds after a warm-up. Lower thresholds move that
 *   work to the first seconds.
 * - the purge delay: mimalloc returned pages freed after each garbage collection to the system
 *   within 10 ms, and the next allocations faulted them back in (about one page fault per PUT,
 *   and two helper threads busy with it). Keeping them is what Cassandra's fixed heap with
 *   AlwaysPreTouch does.
 *
 * The measurements are in the README ("The runtime's options").
 */
import type { Settings } from "./settings.ts";

type RuntimeSettings = Pick<Settings, "jitPolicyScale" | "mallocPurgeDelayMs">;

/** The runtime's options as environment variables. */
export function runtimeEnv(s: RuntimeSettings): Record<string, string> {
  return { BUN_JSC_jitPolicyScale: String(s.jitPolicyScale), MIMALLOC_PURGE_DELAY: String(s.mallocPurgeDelayMs) };
}

/**
 * The environment to execute the node again with, or null when it already runs as it should.
 * A variable the operator set is left as they set it.
 */
export function reexecEnv(s: RuntimeSettings, env: Record<string, string | undefined>): Record<string, string | undefined> | null {
  const missing = Object.entries(runtimeEnv(s)).filter(([name]) => env[name] === undefined);
  return missing.length === 0 ? null : { ...env, ...Object.fromEntries(missing) };
}

/** Returns when the process runs with the runtime's options; otherwise replaces it with one that does. */
export function ensureRuntimeOptions(s: RuntimeSettings): void {
  const env = reexecEnv(s, process.env);
  if (env === null || typeof process.execve !== "function") return;
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], env);
}
