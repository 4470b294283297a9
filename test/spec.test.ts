/** openapi.yaml is the contract: the generated types must match it and it must lint clean. */
import { expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./support/node-process.ts";

const root = join(import.meta.dir, "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);

test("src/api/schema.gen.ts is what `npm run gen` makes from openapi.yaml", () => {
  const dir = tempDir("ringlog-gen-");
  try {
    const out = join(dir, "schema.gen.ts");
    const run = Bun.spawnSync([bin("openapi-typescript"), join(root, "openapi.yaml"), "-o", out], { cwd: root });
    expect(run.exitCode).toBe(0);
    const committed = readFileSync(join(root, "src", "api", "schema.gen.ts"), "utf8");
    if (readFileSync(out, "utf8") !== committed) throw new Error("src/api/schema.gen.ts is stale: run `npm run gen` and commit the result");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("openapi.yaml lints clean under the strict rule set", () => {
  const run = Bun.spawnSync([bin("redocly"), "lint", "openapi.yaml", "--format=stylish"], { cwd: root, env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" } });
  const out = run.stdout.toString() + run.stderr.toString();
  expect(out).toContain("Your API description is valid");
  expect(out).not.toMatch(/You have \d+ warning/);
  expect(run.exitCode).toBe(0);
});
