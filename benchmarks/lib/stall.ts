/**
 * Watches the benchmark runner's own timer. The runner does almost nothing while a load runs,
 * so its timer fires on time give or take the scheduling delays of a busy machine (tens of
 * milliseconds); a gap of seconds means the whole machine stopped, as when the virtual
 * machine is paused or snapshotted by its host. Latencies measured across such a gap are the
 * machine's, not the servers'.
 */
export class StallWatch {
  private timer: ReturnType<typeof setInterval> | undefined;
  private last = 0;
  private longest = 0;

  constructor(
    private readonly periodMs = 50,
    private readonly now: () => number = () => performance.now(),
  ) {}

  start(): this {
    this.last = this.now();
    this.longest = 0;
    this.timer = setInterval(() => this.tick(), this.periodMs);
    return this;
  }

  private tick(): void {
    const t = this.now();
    this.longest = Math.max(this.longest, t - this.last - this.periodMs);
    this.last = t;
  }

  /** Stops watching; the longest delay of a tick beyond its period, in milliseconds. */
  stop(): number {
    clearInterval(this.timer);
    this.tick();
    return Math.max(0, Math.round(this.longest));
  }
}
