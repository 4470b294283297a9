import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type Histogram, summarize, wrkInterval, wrkUncorrect } from "../benchmarks/lib/latency.ts";
import { StallWatch } from "../benchmarks/lib/stall.ts";
import { spreadConnections } from "../benchmarks/lib/wrk.ts";

/** A model of wrk's stats_correct, applied to a copy: what wrk reports for a measured histogram. */
function wrkCorrect(measured: Histogram, interval: number): Histogram {
  const out = new Map(measured);
  for (const [n, count] of measured) {
    if (n < 2 * interval) continue;
    for (let m = n - interval; m > interval; m -= interval) out.set(m, (out.get(m) ?? 0) + count);
  }
  return out;
}

const histogram = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 200_000 }), fc.integer({ min: 1, max: 50 })), { maxLength: 60 })
  .map((pairs): Histogram => {
    const h: Histogram = new Map();
    for (const [v, c] of pairs) h.set(v, (h.get(v) ?? 0) + c);
    return h;
  });

describe("wrk latency histograms", () => {
  test("taking wrk's correction out gives back the measured histogram", () => {
    fc.assert(
      fc.property(histogram, fc.integer({ min: 1, max: 50_000 }), (measured, interval) => {
        expect(wrkUncorrect(wrkCorrect(measured, interval), interval)).toEqual(measured);
      }),
    );
  });

  test("the correction turns one stall of every connection into a tail of made-up samples", () => {
    // 64 connections, 20 s, a 5 ms steady state, then a 9 s stall of all of them.
    const measured: Histogram = new Map([
      [5_000, 140_000],
      [9_000_000, 64],
    ]);
    const interval = wrkInterval(20_000_000, 140_064, 64);
    expect(interval).toBe(9_140);
    const corrected = wrkCorrect(measured, interval);
    expect(summarize(corrected).p99).toBeGreaterThan(8_000);
    expect(summarize(measured).p99).toBe(5);
    expect(summarize(wrkUncorrect(corrected, interval))).toEqual(summarize(measured));
  });

  test("no response slower than two intervals: nothing to take out", () => {
    const measured: Histogram = new Map([
      [1_000, 10],
      [1_900, 3],
    ]);
    expect(wrkCorrect(measured, 1_000)).toEqual(measured);
    expect(wrkUncorrect(measured, 1_000)).toEqual(measured);
  });

  test("too few responses for an interval: wrk corrects nothing", () => {
    expect(wrkInterval(1_000_000, 10, 64)).toBe(Infinity);
    const h: Histogram = new Map([[500_000, 10]]);
    expect(wrkUncorrect(h, Infinity)).toEqual(h);
  });

  test("a histogram wrk could not have produced is refused", () => {
    // 3 samples at 30 ms would have put 3 at 20 ms (interval 10 ms); there is 1.
    const impossible: Histogram = new Map([
      [20_000, 1],
      [30_000, 3],
    ]);
    expect(() => wrkUncorrect(impossible, 10_000)).toThrow(/not a histogram wrk corrected/);
  });

  test("summaries rank percentiles as wrk does, in milliseconds", () => {
    const h: Histogram = new Map(Array.from({ length: 1000 }, (_, i) => [(i + 1) * 1000, 1]));
    const s = summarize(h);
    expect(s.samples).toBe(1000);
    expect(s.p50).toBe(501);
    expect(s.p99).toBe(991);
    expect(s.p99_9).toBe(1000);
    expect(s.max).toBe(1000);
    expect(s.mean).toBe(500.5);
  });
});

describe("the runner's stall watch", () => {
  test("a blocked runner shows as a late tick", async () => {
    const watch = new StallWatch(20).start();
    await Bun.sleep(60);
    const until = performance.now() + 400;
    while (performance.now() < until);
    await Bun.sleep(60);
    const stall = watch.stop();
    expect(stall).toBeGreaterThanOrEqual(350);
    expect(stall).toBeLessThan(2_000);
  });
});

describe("the load's connections", () => {
  test("spread over the targets as evenly as they divide", () => {
    expect(spreadConnections(64, 3)).toEqual([22, 21, 21]);
    expect(spreadConnections(64, 2)).toEqual([32, 32]);
    expect(spreadConnections(64, 1)).toEqual([64]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 16 }), (connections, targets) => {
        const shares = spreadConnections(connections, targets);
        expect(shares.reduce((a, b) => a + b, 0)).toBe(connections);
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
      }),
    );
  });
});
