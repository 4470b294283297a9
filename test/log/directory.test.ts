/** The in-memory directory of each vnode's log rows (pure; the store's use of it is tested with the store). */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { LogDirectory } from "../../src/log/directory.ts";

describe("log directory", () => {
  test("finds a vnode's rows by sequence range, and forgets what compaction removed", () => {
    const d = new LogDirectory();
    for (let seq = 1; seq <= 10; seq++) d.append(7, seq, 100 + seq);
    d.append(3, 1, 500);
    expect(d.rows(7, 0, 3)).toEqual([101, 102, 103]);
    expect(d.rows(7, 8, Infinity)).toEqual([109, 110]);
    expect(d.rows(7, 2, 9, 2)).toEqual([103, 104]);
    expect(d.rows(3, 0, 10)).toEqual([500]);
    expect(d.rows(9, 0, 10)).toEqual([]);
    d.dropThrough(7, 4);
    expect(d.first(7)).toBe(5);
    expect(d.length(7)).toBe(6);
    expect(d.rows(7, 0, 6)).toEqual([105, 106]);
    d.dropThrough(7, 10);
    expect(d.first(7)).toBeUndefined();
    expect(d.vnodes()).toEqual([3]);
    d.append(7, 11, 300);
    expect(d.rows(7, 10, 11)).toEqual([300]);
  });

  test("refuses an entry that does not follow the last one (a log with a gap is corrupt)", () => {
    const d = new LogDirectory();
    d.append(1, 5, 1);
    expect(() => d.append(1, 7, 2)).toThrow(/does not follow/);
  });

  test("matches a plain list of (seq, row) under any appends, drops and range reads (property)", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("append" as const), n: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ kind: fc.constant("drop" as const), seq: fc.integer({ min: 0, max: 60 }) }),
      fc.record({ kind: fc.constant("read" as const), after: fc.integer({ min: 0, max: 60 }), upto: fc.integer({ min: 0, max: 60 }), limit: fc.integer({ min: 1, max: 10 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const d = new LogDirectory();
        let model: { seq: number; id: number }[] = [];
        let head = 0;
        let id = 0;
        for (const o of ops) {
          if (o.kind === "append") {
            for (let i = 0; i < o.n; i++) {
              d.append(0, ++head, ++id);
              model.push({ seq: head, id });
            }
          } else if (o.kind === "drop") {
            d.dropThrough(0, o.seq);
            model = model.filter((e) => e.seq > o.seq);
          } else {
            const want = model.filter((e) => e.seq > o.after && e.seq <= o.upto).slice(0, o.limit).map((e) => e.id);
            expect(d.rows(0, o.after, o.upto, o.limit)).toEqual(want);
          }
        }
        expect(d.length(0)).toBe(model.length);
        expect(d.total()).toBe(model.length);
        expect(d.first(0)).toBe(model[0]?.seq);
      }),
      { numRuns: 500 },
    );
  });
});
