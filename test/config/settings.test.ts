import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULTS, SettingsError, envName, loadSettings } from "../../src/config/settings.ts";
import { parseResolvers, resolverFor } from "../../src/coordinator/resolver.ts";

describe("settings", () => {
  test("environment variables override defaults, explicit overrides win", () => {
    const s = loadSettings({ port: 9000 }, { RINGLOG_MAX_SIBLINGS: "7", RINGLOG_PORT: "1234", RINGLOG_FSYNC: "full" });
    expect(s.maxSiblings).toBe(7);
    expect(s.port).toBe(9000);
    expect(s.fsync).toBe("full");
  });

  test("bad values are refused with the variable's name", () => {
    expect(() => loadSettings({}, { RINGLOG_MAX_VALUE_BYTES: "lots" })).toThrow(/RINGLOG_MAX_VALUE_BYTES/);
    expect(() => loadSettings({}, { RINGLOG_PARTITIONS: "100" })).toThrow(SettingsError);
    expect(() => loadSettings({}, { RINGLOG_FSYNC: "sometimes" })).toThrow(SettingsError);
    expect(() => loadSettings({}, { RINGLOG_MAX_SIBLINGS: "0" })).toThrow(SettingsError);
    expect(() => loadSettings({ nodeId: "bad id" }, {})).toThrow(SettingsError);
  });

  test("the README documents every setting", () => {
    const readme = readFileSync(join(import.meta.dir, "..", "..", "README.md"), "utf8");
    for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) expect(readme).toContain(envName(key));
  });

  test("resolver rules: longest prefix wins, bad rules are refused", () => {
    const rules = parseResolvers("a/=lww,a/b/=siblings");
    expect(resolverFor(rules, "a/x")).toBe("lww");
    expect(resolverFor(rules, "a/b/x")).toBe("siblings");
    expect(resolverFor(rules, "z")).toBe("siblings");
    expect(() => parseResolvers("a/=newest")).toThrow(SettingsError);
  });
});
