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

/**
 * An anti-entropy loop over a store holding `stored` states per vnode, on a clock the test
 * moves, with one peer that answers `roots` with `peerRoots` (by default roots no vnode has).
 */
function setUp(stored: (vnode: number) => number, peerRoots: (aae: AntiEntropy) => BigUint64Array = () => new BigUint64Array(PARTITIONS)) {
  let clock = 1_000_000;
  const store = {
    statesAfter: () => [],
    scan: (vnode: number) => Array.from({ length: stored(vnode) }, (_, i) => ({ key: `k${i}`, state: new Uint8Array([vnode, i]) })),
  } as unknown as LogStore;
  // Hints may be held, so no tombstone is collected: these tests are about pacing.
  const membership = { self: { id: "n1" }, isUp: () => true, peer: (id: string) => ({ id, url: "" }), mayHoldHints: () => true } as unknown as Membership;
  const calls: unknown[] = [];
  const transport = {
    call: async (_peer: unknown, _route: string, body: unknown) => {
      calls.push(body);
      const roots = peerRoots(aae);
      return new Uint8Array(roots.buffer, roots.byteOffset, roots.byteLength);
    },
  } as unknown as Transport;
  const aae: AntiEntropy = new AntiEntropy({
    store,
    membership,
    transport,
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
  return { aae, exchanged, calls, advance: (ms: number) => (clock += ms), now: () => clock };
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

test("replicas in agreement cost one call per peer per round, not one per vnode; a vnode whose roots differ is exchanged", async () => {
  const differing = 17;
  const { aae, exchanged, calls, advance } = setUp(
    (vnode) => (vnode % 3 === 0 ? 5 : 0),
    (a) => BigUint64Array.from({ length: PARTITIONS }, (_, v) => (v === differing ? a.root(v) + 1n : a.root(v))),
  );
  aae.rebuild();
  const rounds = 3;
  for (let step = 0; step < rounds * PARTITIONS; step++) {
    await aae.step();
    advance(INTERVAL_MS);
  }
  // The first round may begin mid-ring (each node starts at a vnode of its own): one call more.
  expect(calls.length).toBeGreaterThanOrEqual(rounds);
  expect(calls.length).toBeLessThanOrEqual(rounds + 1);
  expect(calls.every((c) => JSON.stringify(c) === JSON.stringify({ op: "roots" }))).toBe(true);
  expect(exchanged.map((e) => e.vnode)).toEqual(Array(rounds).fill(differing));
  expect(aae.stats.exchanges).toBe(rounds * (PARTITIONS - 1));
});
