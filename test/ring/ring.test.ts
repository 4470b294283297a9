import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { claim, claimViolations, preferenceList } from "../../src/ring/ring.ts";

const names = (s: number) => Array.from({ length: s }, (_, i) => `n${i + 1}`);

describe("claim", () => {
  test("balanced and window-distinct, wrap included, for 4 to 16 nodes at Q = 64, 128, 256 and N = 3", () => {
    for (const q of [64, 128, 256]) {
      for (let s = 4; s <= 16; s++) {
        const owners = claim(names(s), q, 3);
        expect(owners.length).toBe(q);
        expect(claimViolations(owners, 3)).toEqual([]);
      }
    }
  });

  test("3 nodes on 64 vnodes: no wrap-free claim exists, so only the windows across the wrap repeat an owner", () => {
    const owners = claim(names(3), 64, 3);
    expect(claimViolations(owners, 3, false)).toEqual([]);
    expect(claimViolations(owners, 3).length).toBeGreaterThan(0);
    expect(claimViolations(claim(names(4), 64, 3), 3)).toEqual([]);
  });

  test("property: any Q (power of two), S ≤ 24 and N ≤ 5 with S ≤ Q gives a balanced claim, window-distinct away from the wrap (300 runs)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 10 }), fc.integer({ min: 1, max: 24 }), fc.integer({ min: 1, max: 5 }), (log2q, s, n) => {
        const q = 2 ** log2q;
        fc.pre(s <= q);
        const owners = claim(names(s), q, n);
        expect(claimViolations(owners, n, false)).toEqual([]);
        if (s > n && q % s === 0) expect(claimViolations(owners, n)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  test("deterministic whatever the order nodes are listed in", () => {
    expect(claim(["c", "a", "b"], 64, 3)).toEqual(claim(["a", "b", "c"], 64, 3));
  });
});

describe("preference list", () => {
  test("the N primaries are distinct owners of consecutive vnodes, then the others as fallbacks", () => {
    const ring = { epoch: 1, owners: claim(names(5), 64, 3) };
    for (let v = 0; v < 64; v++) {
      const p = preferenceList(ring, v, 3);
      expect(p.primaries.length).toBe(3);
      expect(p.primaries[0]).toBe(ring.owners[v]!);
      expect(new Set([...p.primaries, ...p.fallbacks]).size).toBe(5);
      expect(p.fallbacks.length).toBe(2);
    }
  });

  test("with fewer nodes than N every node is a primary", () => {
    const ring = { epoch: 1, owners: claim(names(2), 64, 3) };
    expect(preferenceList(ring, 5, 3).primaries.sort()).toEqual(["n1", "n2"]);
  });
});
