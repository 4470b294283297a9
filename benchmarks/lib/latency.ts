/**
 * Latency figures from wrk's histogram, with wrk's coordinated-omission correction taken out.
 *
 * Before it reports, wrk takes the average time between one connection's requests as the
 * interval a client meant to keep and, for every response slower than twice that, adds
 * made-up samples at that latency minus one interval, minus two, and so on while they stay
 * above one interval. Against a closed loop of a fixed number of connections, which is what
 * these benchmarks run, no request was ever meant to leave on a schedule, and those samples
 * only inflate the tail: one 9.4 s stall of the whole machine turned into a p99 of 8.9 s. The correction
 * is a deterministic function of the measured histogram, so it can be undone exactly.
 */
import type { Latency } from "./load.ts";

/** A histogram: samples per latency in microseconds. */
export type Histogram = Map<number, number>;

/** The interval wrk corrects with: the run's duration over the responses per connection (integer arithmetic, as in wrk). */
export function wrkInterval(durationUs: number, responses: number, connections: number): number {
  const perConnection = Math.floor(responses / connections);
  return perConnection > 0 ? Math.floor(durationUs / perConnection) : Infinity;
}

/**
 * The measured histogram behind a corrected one. A value n above the interval received one
 * sample for each measured sample at n + interval, n + 2·interval, …, so going down from the
 * top, measured(n) = corrected(n) − (measured samples at n + k·interval, k ≥ 1).
 */
export function wrkUncorrect(corrected: Histogram, interval: number): Histogram {
  const measured: Histogram = new Map();
  /** Per value: the measured samples at it and at every interval above it. */
  const atAndAbove = new Map<number, number>();
  for (const n of [...corrected.keys()].sort((a, b) => b - a)) {
    const above = Number.isFinite(interval) ? (atAndAbove.get(n + interval) ?? 0) : 0;
    const count = corrected.get(n)! - (n > interval ? above : 0);
    if (count < 0) throw new Error(`not a histogram wrk corrected with an interval of ${interval} µs: ${count} samples at ${n} µs`);
    if (count > 0) measured.set(n, count);
    atAndAbove.set(n, count + above);
  }
  return measured;
}

/** Mean, percentiles (ranked as wrk ranks them) and maximum of a histogram, in milliseconds. */
export function summarize(h: Histogram): Latency & { samples: number } {
  const values = [...h.keys()].sort((a, b) => a - b);
  let samples = 0;
  let sum = 0;
  for (const v of values) {
    samples += h.get(v)!;
    sum += v * h.get(v)!;
  }
  const percentile = (p: number): number => {
    const rank = Math.round((p / 100) * samples + 0.5);
    let seen = 0;
    for (const v of values) {
      seen += h.get(v)!;
      if (seen >= rank) return v;
    }
    return values.at(-1) ?? 0;
  };
  const ms = (us: number) => us / 1000;
  return {
    samples,
    mean: samples > 0 ? ms(sum / samples) : 0,
    p50: ms(percentile(50)),
    p99: ms(percentile(99)),
    p99_9: ms(percentile(99.9)),
    max: ms(values.at(-1) ?? 0),
  };
}
