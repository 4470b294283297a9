import { describe, expect, test } from "bun:test";
import { UsageError, parseOptions } from "../benchmarks/lib/options.ts";

describe("benchmark options", () => {
  test("defaults leave every CPU to the run", () => {
    const o = parseOptions([]);
    expect(o.cpus).toBeUndefined();
    expect(o.connections).toBe(64);
  });

  test("--cpus takes taskset's list form", () => {
    for (const list of ["0", "0,1", "0-1", "0-3,6,8-9"]) expect(parseOptions(["--cpus", list]).cpus).toBe(list);
  });

  test("--cpus refuses anything else", () => {
    for (const list of ["", "a", "0,", "-1", "0;1", "0 1"]) expect(() => parseOptions(["--cpus", list])).toThrow(UsageError);
  });
});
