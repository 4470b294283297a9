import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { engineEnv, reexecEnv } from "../../src/config/runtime.ts";
import { DEFAULTS, SettingsError, loadSettings } from "../../src/config/settings.ts";
import { NodeProcess } from "../support/node-process.ts";

const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");

describe("engine options", () => {
  test("a node without them executes itself again with them; set ones, or the engine's defaults, need nothing", () => {
    expect(reexecEnv(DEFAULTS, { PATH: "/bin" })).toEqual({ PATH: "/bin", BUN_JSC_jitPolicyScale: "0.3" });
    expect(reexecEnv(DEFAULTS, { BUN_JSC_jitPolicyScale: "0.3" })).toBeNull();
    expect(reexecEnv(DEFAULTS, { BUN_JSC_jitPolicyScale: "0.8" })).toBeNull();
    expect(reexecEnv({ jitPolicyScale: 1 }, {})).toBeNull();
    expect(engineEnv({ jitPolicyScale: 0.05 })).toEqual({ BUN_JSC_jitPolicyScale: "0.05" });
  });

  test("the scale must be above 0 and at most 1", () => {
    expect(() => loadSettings({}, { RINGLOG_JIT_POLICY_SCALE: "0" })).toThrow(SettingsError);
    expect(() => loadSettings({}, { RINGLOG_JIT_POLICY_SCALE: "1.5" })).toThrow(SettingsError);
    expect(loadSettings({}, { RINGLOG_JIT_POLICY_SCALE: "0.5" }).jitPolicyScale).toBe(0.5);
  });
});

describe("engine options on a real node process", () => {
  let node: NodeProcess | undefined;
  afterEach(async () => {
    await node?.destroy();
    node = undefined;
  });

  test("the node runs as the pid it was started as, with the option in its environment, and stops cleanly on SIGTERM", async () => {
    node = await NodeProcess.start();
    expect(environ(node.pid)).toContain(`BUN_JSC_jitPolicyScale=${DEFAULTS.jitPolicyScale}`);
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
    await node.kill("SIGTERM");
    expect(node.proc.exitCode).toBe(0);
  });

  test("an operator's own value is kept, and a scale of 1 leaves the engine as it is", async () => {
    node = await NodeProcess.start({ env: { BUN_JSC_jitPolicyScale: "0.7" } });
    expect(environ(node.pid)).toContain("BUN_JSC_jitPolicyScale=0.7");
    await node.destroy();
    node = await NodeProcess.start({ env: { RINGLOG_JIT_POLICY_SCALE: "1" } });
    expect(environ(node.pid).some((v) => v.startsWith("BUN_JSC_jitPolicyScale="))).toBe(false);
  });
});
