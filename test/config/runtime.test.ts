import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { reexecEnv, runtimeEnv } from "../../src/config/runtime.ts";
import { DEFAULTS, SettingsError, loadSettings } from "../../src/config/settings.ts";
import { NodeProcess } from "../support/node-process.ts";

const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");

describe("runtime options", () => {
  test("a node without them executes itself again with them; ones already set, by it or the operator, are kept", () => {
    expect(runtimeEnv(DEFAULTS)).toEqual({ BUN_JSC_jitPolicyScale: "0.3", MIMALLOC_PURGE_DELAY: "-1" });
    expect(reexecEnv(DEFAULTS, { PATH: "/bin" })).toEqual({ PATH: "/bin", BUN_JSC_jitPolicyScale: "0.3", MIMALLOC_PURGE_DELAY: "-1" });
    expect(reexecEnv(DEFAULTS, { BUN_JSC_jitPolicyScale: "0.3", MIMALLOC_PURGE_DELAY: "-1" })).toBeNull();
    expect(reexecEnv(DEFAULTS, { BUN_JSC_jitPolicyScale: "0.8", MIMALLOC_PURGE_DELAY: "10" })).toBeNull();
    expect(reexecEnv({ jitPolicyScale: 1, mallocPurgeDelayMs: 10 }, { MIMALLOC_PURGE_DELAY: "50" })).toEqual({ MIMALLOC_PURGE_DELAY: "50", BUN_JSC_jitPolicyScale: "1" });
  });

  test("the scale must be above 0 and at most 1; the purge delay -1 or whole milliseconds", () => {
    expect(() => loadSettings({}, { RINGLOG_JIT_POLICY_SCALE: "0" })).toThrow(SettingsError);
    expect(() => loadSettings({}, { RINGLOG_JIT_POLICY_SCALE: "1.5" })).toThrow(SettingsError);
    expect(loadSettings({}, { RINGLOG_JIT_POLICY_SCALE: "0.5" }).jitPolicyScale).toBe(0.5);
    expect(() => loadSettings({}, { RINGLOG_MALLOC_PURGE_DELAY_MS: "-2" })).toThrow(SettingsError);
    expect(() => loadSettings({}, { RINGLOG_MALLOC_PURGE_DELAY_MS: "2.5" })).toThrow(SettingsError);
    expect(loadSettings({}, { RINGLOG_MALLOC_PURGE_DELAY_MS: "1000" }).mallocPurgeDelayMs).toBe(1000);
  });
});

describe("runtime options on a real node process", () => {
  let node: NodeProcess | undefined;
  afterEach(async () => {
    await node?.destroy();
    node = undefined;
  });

  test("the node runs as the pid it was started as, with the options in its environment, and stops cleanly on SIGTERM", async () => {
    node = await NodeProcess.start();
    expect(environ(node.pid)).toEqual(expect.arrayContaining([`BUN_JSC_jitPolicyScale=${DEFAULTS.jitPolicyScale}`, `MIMALLOC_PURGE_DELAY=${DEFAULTS.mallocPurgeDelayMs}`]));
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
    await node.kill("SIGTERM");
    expect(node.proc.exitCode).toBe(0);
  });

  test("the settings choose the values, and an operator's own variable wins over them", async () => {
    node = await NodeProcess.start({ env: { BUN_JSC_jitPolicyScale: "0.7", RINGLOG_MALLOC_PURGE_DELAY_MS: "250" } });
    expect(environ(node.pid)).toEqual(expect.arrayContaining(["BUN_JSC_jitPolicyScale=0.7", "MIMALLOC_PURGE_DELAY=250"]));
  });
});
