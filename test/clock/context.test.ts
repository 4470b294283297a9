import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ContextFormatError, actorCount, addDot, contains, contextEquals, emptyContext, fromWire, join, maxCounter, toWire } from "../../src/clock/context.ts";

const dots = fc.array(fc.record({ actor: fc.constantFrom("a", "b", "c"), counter: fc.integer({ min: 1, max: 40 }) }), { maxLength: 40 });

describe("causal context", () => {
  test("contiguous dots fold into the version vector; gaps stay in the cloud", () => {
    const ctx = emptyContext();
    for (const counter of [1, 3, 5, 2]) addDot(ctx, { actor: "a", counter });
    expect(ctx.vv.get("a")).toBe(3);
    expect([...ctx.cloud.get("a")!]).toEqual([5]);
    addDot(ctx, { actor: "a", counter: 4 });
    expect(ctx.vv.get("a")).toBe(5);
    expect(ctx.cloud.has("a")).toBe(false);
    expect(maxCounter(ctx, "a")).toBe(5);
  });

  test("the representation is canonical: any insertion order gives the same wire form (1,000 runs)", () => {
    fc.assert(
      fc.property(dots, (ds) => {
        const a = emptyContext();
        const b = emptyContext();
        for (const d of ds) addDot(a, d);
        for (const d of [...ds].reverse()) addDot(b, d);
        expect(toWire(a)).toEqual(toWire(b));
        for (const d of ds) expect(contains(a, d)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  test("join is the set union of dots, and the wire form round-trips (1,000 runs)", () => {
    fc.assert(
      fc.property(dots, dots, (x, y) => {
        const a = emptyContext();
        const b = emptyContext();
        for (const d of x) addDot(a, d);
        for (const d of y) addDot(b, d);
        const j = join(a, b);
        for (const d of [...x, ...y]) expect(contains(j, d)).toBe(true);
        expect(contextEquals(j, join(b, a))).toBe(true);
        expect(contextEquals(fromWire(toWire(j)), j)).toBe(true);
        for (let n = 1; n <= 40; n++) {
          for (const actor of ["a", "b", "c"]) expect(contains(j, { actor, counter: n })).toBe(contains(a, { actor, counter: n }) || contains(b, { actor, counter: n }));
        }
      }),
      { numRuns: 1000 },
    );
  });

  test("untrusted wire forms are rejected or normalised", () => {
    for (const bad of [null, 1, "x", [], [1, 2], [[["a", 0]], []], [[["a", 1.5]], []], [[[1, 1]], []], [[], [["a", [-1]]]], [[], [["a", 3]]]]) {
      expect(() => fromWire(bad)).toThrow(ContextFormatError);
    }
    const ctx = fromWire([[["a", 2]], [["a", [1, 3, 5]]]]);
    expect(toWire(ctx)).toEqual([[["a", 3]], [["a", [5]]]]);
    expect(actorCount(fromWire([[["a", 1]], [["b", [4]]]]))).toBe(2);
  });
});
