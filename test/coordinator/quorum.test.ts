import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { resolveQuorum, verdict } from "../../src/coordinator/quorum.ts";
import { RinglogError } from "../../src/errors.ts";
import { coalesce } from "../../src/segment/segment.ts";
import { entryKey } from "../../src/log/entry.ts";

describe("quorum values", () => {
  test("names and numbers resolve against N; defaults are capped at N", () => {
    expect(resolveQuorum("r", "one", 3, 2)).toBe(1);
    expect(resolveQuorum("r", "quorum", 3, 2)).toBe(2);
    expect(resolveQuorum("r", "quorum", 5, 2)).toBe(3);
    expect(resolveQuorum("r", "all", 3, 2)).toBe(3);
    expect(resolveQuorum("w", "2", 3, 2)).toBe(2);
    expect(resolveQuorum("w", undefined, 1, 2)).toBe(1);
    expect(resolveQuorum("pw", "0", 3, 0, 0)).toBe(0);
  });

  test("out of range or unknown values are a 400", () => {
    for (const bad of ["4", "0", "-1", "1.5", "most"]) {
      try {
        resolveQuorum("w", bad, 3, 2);
        throw new Error(`accepted ${bad}`);
      } catch (err) {
        expect(err).toBeInstanceOf(RinglogError);
        expect((err as RinglogError).status).toBe(400);
      }
    }
  });
});

describe("verdict (property, 1,000 runs)", () => {
  const tally = fc.record({ ok: fc.nat(5), primaryOk: fc.nat(5), pending: fc.nat(5), primaryPending: fc.nat(5) }).filter((t) => t.primaryOk <= t.ok && t.primaryPending <= t.pending);
  const need = fc.record({ total: fc.integer({ min: 1, max: 5 }), primaries: fc.nat(5) }).filter((n) => n.primaries <= n.total);

  test("met exactly when both counts are reached; failed exactly when even every pending reply cannot reach them", () => {
    fc.assert(
      fc.property(tally, need, (t, n) => {
        const v = verdict(t, n);
        const met = t.ok >= n.total && t.primaryOk >= n.primaries;
        const reachable = t.ok + t.pending >= n.total && t.primaryOk + t.primaryPending >= n.primaries;
        expect(v).toBe(met ? "met" : reachable ? "waiting" : "failed");
      }),
      { numRuns: 1000 },
    );
  });

  test("an answer never turns met into anything else", () => {
    fc.assert(
      fc.property(tally, need, fc.boolean(), fc.boolean(), (t, n, ok, primary) => {
        fc.pre(t.pending > 0 && (!primary || t.primaryPending > 0));
        const before = verdict(t, n);
        const after = verdict(
          {
            ok: t.ok + (ok ? 1 : 0),
            primaryOk: t.primaryOk + (ok && primary ? 1 : 0),
            pending: t.pending - 1,
            primaryPending: t.primaryPending - (primary ? 1 : 0),
          },
          n,
        );
        if (before === "met") expect(after).toBe("met");
        if (before === "failed") expect(after).toBe("failed");
      }),
      { numRuns: 1000 },
    );
  });
});

describe("segments", () => {
  test("coalescing merges entries per vnode and hint target, in order", () => {
    const e = (key: string) => ({ kind: "state" as const, key, state: { siblings: [], ctx: { vv: new Map(), cloud: new Map() } } });
    const out = coalesce([
      { vnode: 1, entries: [e("a")] },
      { vnode: 2, entries: [e("b")] },
      { vnode: 1, entries: [e("c")] },
      { vnode: 1, hintFor: "n3", entries: [e("d")] },
    ]);
    expect(out.map((s) => [s.vnode, s.hintFor ?? null, s.entries.map(entryKey)])).toEqual([
      [1, null, ["a", "c"]],
      [2, null, ["b"]],
      [1, "n3", ["d"]],
    ]);
  });
});
