/**
 * Options of the JavaScript engine a node runs with. JSC reads them from the environment once,
 * when the process starts, so a node whose environment lacks them executes itself again, with
 * the same pid and arguments and the options added: what Cassandra's launcher does with
 * jvm.options, done by the node so every way of starting one (the CLI, `npm start`, the image)
 * gets them.
 *
 * jitPolicyScale: under a steady load JSC kept compiling the hot paths to its top tier for a
 * minute and more after a start (its compiler threads at 50-60 ms of CPU per second per node
 * in the first 8 s after a 10 s warm-up), taking that CPU from the requests. At 0.3 those
 * compiles happen during the first seconds instead (measured: README, "Measured on
 * 2026-12-02 (07:40-").
 */
import type { Settings } from "./settings.ts";

/** The engine's options as environment variables, or null when the engine's defaults apply. */
export function engineEnv(s: Pick<Settings, "jitPolicyScale">): Record<string, string> | null {
  return s.jitPolicyScale === 1 ? null : { BUN_JSC_jitPolicyScale: String(s.jitPolicyScale) };
}

/**
 * The environment to execute the node again with, or null when it already runs as it should.
 * A variable the operator set is left as they set it.
 */
export function reexecEnv(s: Pick<Settings, "jitPolicyScale">, env: Record<string, string | undefined>): Record<string, string | undefined> | null {
  const wanted = engineEnv(s);
  if (wanted === null) return null;
  const missing = Object.entries(wanted).filter(([name]) => env[name] === undefined);
  return missing.length === 0 ? null : { ...env, ...Object.fromEntries(missing) };
}

/** Returns when the process runs with the engine options; otherwise replaces it with one that does. */
export function ensureEngineOptions(s: Pick<Settings, "jitPolicyScale">): void {
  const env = reexecEnv(s, process.env);
  if (env === null || typeof process.execve !== "function") return;
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], env);
}
