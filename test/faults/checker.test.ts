/** The checker must catch real bugs: synthetic histories with each kind of violation. */
import { describe, expect, test } from "bun:test";
import { type CheckInput, check } from "./checker.ts";
import type { Op } from "./history.ts";

let id = 0;
const op = (o: Partial<Op> & Pick<Op, "type" | "invoke" | "complete">): Op => ({ id: id++, process: 0, key: "k", node: "n1", outcome: "ok", ...o });
const same = (d: string) => new Map([["n1", d], ["n2", d], ["n3", d]]);

function input(history: Op[], final: string[], extra: Partial<CheckInput> = {}): CheckInput {
  return { history, final: new Map([["k", final]]), replicas: new Map([["k", same("x")]]), faultFree: true, maxSiblings: 2, ...extra };
}

describe("checker", () => {
  const a = op({ type: "put", value: "a", seen: [], invoke: 0, complete: 10 });
  const readA = op({ type: "read", values: ["a"], invoke: 20, complete: 25 });
  const b = op({ type: "put", value: "b", seen: ["a"], invoke: 30, complete: 40 });

  test("a clean history passes: a write replaced by one that read it is not lost", () => {
    expect(check(input([a, readA, b], ["b"]))).toEqual([]);
  });

  test("a lost write is reported", () => {
    const v = check(input([a, op({ type: "put", value: "c", seen: [], invoke: 15, complete: 18 })], ["a"]));
    expect(v.map((x) => x.kind)).toEqual(["lost-write"]);
    expect(v[0]!.ops[0]!.value).toBe("c");
  });

  test("a write replaced only by a write whose outcome is unknown is not lost (it may have happened)", () => {
    expect(check(input([a, op({ type: "put", value: "b", seen: ["a"], outcome: "unknown", invoke: 30, complete: 40 })], ["b"]))).toEqual([]);
  });

  test("a resurrection is reported", () => {
    const del = op({ type: "delete", seen: ["a"], invoke: 30, complete: 40 });
    expect(check(input([a, del], [])).length).toBe(0);
    expect(check(input([a, del], ["a"])).map((x) => x.kind)).toEqual(["resurrection"]);
  });

  test("a divergent replica is reported", () => {
    const v = check(input([a], ["a"], { replicas: new Map([["k", new Map([["n1", "x"], ["n2", "x"], ["n3", "y"]])]]) }));
    expect(v.map((x) => x.kind)).toEqual(["divergence"]);
  });

  test("a stale read is reported when there are no faults, and tolerated under faults", () => {
    const stale = op({ type: "read", values: [], invoke: 50, complete: 55 });
    expect(check(input([a, b, stale], ["b"])).map((x) => x.kind)).toEqual(["stale-read", "stale-read"]);
    expect(check(input([a, b, stale], ["b"], { faultFree: false }))).toEqual([]);
    const concurrent = op({ type: "read", values: [], invoke: 5, complete: 8 });
    expect(check(input([a, concurrent], ["a"]))).toEqual([]);
  });

  test("a sibling explosion is reported", () => {
    const many = op({ type: "read", values: ["a", "b", "c"], invoke: 50, complete: 55 });
    expect(check(input([many], [], { faultFree: false })).map((x) => x.kind)).toEqual(["sibling-explosion"]);
  });
});
