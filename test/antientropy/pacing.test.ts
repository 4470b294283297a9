import { expect, test } from "bun:test";
import pino from "pino";
import { AntiEntropy } from "../../src/antientropy/antientropy.ts";
import type { LogStore } from "../../src/log/store.ts";
import type { Membership } from "../../src/membership/membership.ts";
import type { Transport } from "../../src/transport/transport.ts";

const PARTITIONS = 64;
const INTERVAL_MS = 100;
const QUIET_MS = 250;
const MAX_DEFER_MS = 30_000;

/** An anti-entropy loop over a store holding `stored` states per vnode, on a clock the test moves. */
function setUp(stored: (vnode: number) => number) {
  let clock = 1_000_000;
  const store = {
    statesAfter: () => [],
    scan: (vnode: number) => Array.from({ length: stored(vnode) }, (_, i) => ({ key: `k${i}`, state: new Uint8Array([vnode, i]) })),
  } as unknown as LogStore;
  const membership = { self: { id: "n1" }, isUp: () => true } as unknown as Membership;
  const aae = new AntiEntropy({
    store,
    membership,
    transport: {} as Transport,
    partitions: PARTITIONS,
    replicasOf: () => ["n2"],
    intervalMs: INTERVAL_MS,
    quietMs: QUIET_MS,
    maxDeferMs: MAX_DEFER_MS,
    monotonic: () => clock,
    logger: pino({ level: "silent" }),
    traffic: () => ({ sent: 0, received: 0 }),
    now: () => clock,
    tombstoneGraceMs: 60_000,
  });
  const exchanged: { vnode: number; atMs: number }[] = [];
  aae.exchange = async (vnode: number) => {
    exchanged.push({ vnode, atMs: clock });
    return 0;
  };
  return { aae, exchanged, advance: (ms: number) => (clock += ms), now: () => clock };
}

test("under writes to every vnode, each vnode is exchanged once per max deferral, and those exchanges are spread out, not bunched into one round", async () => {
  const { aae, exchanged, advance, now } = setUp(() => 0);
  aae.rebuild();
  const start = now();
  const horizonMs = 3 * MAX_DEFER_MS;
  while (now() - start < horizonMs) {
    aae.onChange(Array.from({ length: PARTITIONS }, (_, vnode) => ({ vnode, key: "hot", before: null, after: new Uint8Array([vnode, now() % 256]), tombstone: false })));
    await aae.step();
    advance(INTERVAL_MS);
  }
  const perVnode = new Map<number, number[]>();
  for (const e of exchanged) perVnode.set(e.vnode, [...(perVnode.get(e.vnode) ?? []), e.atMs]);
  expect(perVnode.size).toBe(PARTITIONS);
  for (const times of perVnode.values()) {
    expect(times.length).toBeGreaterThanOrEqual(2);
    expect(times.length).toBeLessThanOrEqual(3);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(MAX_DEFER_MS);
  }
  // A vnode is exchanged within one round (every vnode visited once, PARTITIONS × INTERVAL_MS)
  // after its deferral runs out. Bunched, every forced exchange falls into one such round;
  // spread, a window holds only the vnodes whose deferral ran out in it or in the round before.
  const round = PARTITIONS * INTERVAL_MS;
  const window = MAX_DEFER_MS / 4;
  const spread = Math.ceil(((window + round) * PARTITIONS) / MAX_DEFER_MS) + 1;
  expect(spread).toBeLessThan(PARTITIONS / 2);
  let busiest = 0;
  for (let from = start; from + window <= start + horizonMs; from += INTERVAL_MS) {
    busiest = Math.max(busiest, exchanged.filter((e) => e.atMs >= from && e.atMs < from + window).length);
  }
  expect(busiest).toBeLessThanOrEqual(spread);
});

test("a vnode that held no state at start-up needs no first pass for tombstones; one that held states does", () => {
  const { aae } = setUp((vnode) => (vnode < 4 ? 10 : 0));
  aae.rebuild();
  expect(aae.stats.tombstoneScans).toBe(PARTITIONS - 4);
});
