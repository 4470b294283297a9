import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MerkleTree, differing, leafOf } from "../../src/antientropy/merkle.ts";

const entries = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { maxKeys: 60 });

function build(map: Record<string, bigint>): MerkleTree {
  const t = new MerkleTree();
  for (const [k, d] of Object.entries(map)) t.update(k, null, d);
  return t;
}

describe("Merkle tree (property, 1,000 runs)", () => {
  test("incremental updates give the same tree as building from scratch, in any order", () => {
    fc.assert(
      fc.property(entries, entries, (first, second) => {
        const t = build(first);
        for (const [k, d] of Object.entries(second)) t.update(k, Object.hasOwn(first, k) ? first[k]! : null, d);
        for (const k of Object.keys(first)) if (!Object.hasOwn(second, k)) t.update(k, first[k]!, null);
        expect(t.root()).toBe(build(second).root());
      }),
      { numRuns: 1000 },
    );
  });

  test("equal contents give equal roots; a changed key shows in exactly its leaf and branch", () => {
    fc.assert(
      fc.property(entries, fc.string({ minLength: 1, maxLength: 8 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (map, key, d) => {
        fc.pre(map[key] !== d);
        const a = build(map);
        const b = build({ ...map, [key]: d });
        expect(a.root()).not.toBe(b.root());
        expect(differing(a.leaves, b.leaves)).toEqual([leafOf(key)]);
        expect(differing(a.branches(), b.branches())).toEqual([Math.floor(leafOf(key) / 16)]);
      }),
      { numRuns: 1000 },
    );
  });
});
