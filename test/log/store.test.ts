/** Storage on real SQLite files: migrations, identity, group commit, snapshots and rebuild. */
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Database } from "bun:sqlite";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { EMPTY_STATE, applyEvent, encodeState, statesEqual } from "../../src/clock/fold.ts";
import { stateDigest } from "../../src/antientropy/merkle.ts";
import { vnodeOf } from "../../src/ring/partition.ts";
import { DEFAULTS } from "../../src/config/settings.ts";
import { type Dot, addDot, emptyContext } from "../../src/clock/context.ts";
import { Coordinator } from "../../src/coordinator/coordinator.ts";
import { SchemaTooNewError, openDatabase, readMigrations } from "../../src/log/database.ts";
import { IdentityMismatchError, loadIdentity } from "../../src/log/identity.ts";
import { LogStore } from "../../src/log/store.ts";
import { HintStore } from "../../src/hints/hints.ts";
import { claim } from "../../src/ring/ring.ts";
import { tempDir } from "../support/node-process.ts";

const TUNING = { fsync: DEFAULTS.fsync, walCheckpointPages: DEFAULTS.walCheckpointPages, mmapBytes: DEFAULTS.mmapBytes };
const dirs: string[] = [];
const fresh = () => {
  const d = tempDir("ringlog-store-");
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const WRITE_BEHIND = { projectionFlushKeys: DEFAULTS.projectionFlushKeys, projectionFlushMs: DEFAULTS.projectionFlushMs };

function openNode(dir: string, snapshotEvery = 10_000, groupCommitMaxBatch = 512, projection = WRITE_BEHIND) {
  const db = openDatabase(dir, TUNING);
  const identity = loadIdentity(db, "n1", 64, Math.random);
  const store = new LogStore(db, { groupCommitMaxBatch, snapshotEvery, snapshotTailRatio: 1_000, ...projection, busyWaitMs: DEFAULTS.storageBusyWaitMs, now: Date.now });
  const coordinator = new Coordinator({
    store,
    hints: new HintStore(db, Date.now),
    identity,
    limits: { maxSiblings: 100, maxContextActors: 256 },
    resolvers: [],
    now: Date.now,
    cluster: { ring: { epoch: 1, owners: claim(["n1"], 64, 1) }, isUp: () => true },
    replicas: { apply: () => Promise.reject(new Error("no peers")), read: () => Promise.reject(new Error("no peers")) },
    n: 1,
    timeoutMs: 1000,
  });
  const one = { total: 1, primaries: 0 };
  return {
    db,
    identity,
    store,
    coordinator: {
      write: async (req: Parameters<Coordinator["write"]>[0]) => (await coordinator.write(req, one)).state,
      get: async (key: string) => (await coordinator.get(key, one)).state,
    },
  };
}

const bytes = (s: string) => new TextEncoder().encode(s);
const ctxOf = (dots: Dot[]) => {
  const ctx = emptyContext();
  for (const d of dots) addDot(ctx, d);
  return ctx;
};

describe("migrations", () => {
  test("are applied once, in order, and recorded", () => {
    const dir = fresh();
    const db = openDatabase(dir, TUNING);
    const rows = db.query("SELECT version, name FROM schema_migrations ORDER BY version").all() as { version: number; name: string }[];
    expect(rows.map((r) => r.version)).toEqual(readMigrations().map((m) => m.version));
    db.close();
    const again = openDatabase(dir, TUNING);
    expect((again.query("SELECT COUNT(*) AS n FROM schema_migrations").get() as { n: number }).n).toBe(rows.length);
    expect((again.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("wal");
    again.close();
  });

  test("a database from a newer build is refused with a clear message, by the library and by the node command", () => {
    const dir = fresh();
    openDatabase(dir, TUNING).close();
    const db = new Database(join(dir, "ringlog.db"));
    db.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)").run();
    db.close();
    expect(() => openDatabase(dir, TUNING)).toThrow(SchemaTooNewError);
    expect(() => openDatabase(dir, TUNING)).toThrow(/schema is at version 999/);
    const run = Bun.spawnSync([process.execPath, join(import.meta.dir, "..", "..", "src", "cli.ts"), "node", "--data", dir, "--port", "0"], {
      env: { ...process.env, RINGLOG_LOG_LEVEL: "warn" },
    });
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr.toString()).toContain("written by a newer Ringlog");
  });
});

describe("identity", () => {
  test("a data folder keeps its actor, and refuses another node id or partition count", () => {
    const dir = fresh();
    const db = openDatabase(dir, TUNING);
    const first = loadIdentity(db, "n1", 64, () => 0.5);
    expect(loadIdentity(db, "n1", 64, () => 0.1)).toEqual(first);
    expect(() => loadIdentity(db, "n2", 64, Math.random)).toThrow(IdentityMismatchError);
    expect(() => loadIdentity(db, "n1", 128, Math.random)).toThrow(/fixed for a cluster's life/);
    db.close();
  });

  test("a wiped folder gets a new actor, so old dots are never reused", () => {
    const a = openDatabase(fresh(), TUNING);
    const b = openDatabase(fresh(), TUNING);
    expect(loadIdentity(a, "n1", 64, Math.random).actor).not.toBe(loadIdentity(b, "n1", 64, Math.random).actor);
    a.close();
    b.close();
  });
});

describe("group commit", () => {
  test("concurrent writes share transactions, and each resolves only once committed", async () => {
    const { store, coordinator } = openNode(fresh());
    await Promise.all(Array.from({ length: 2000 }, (_, i) => coordinator.write({ key: `k${i}`, value: bytes(`v${i}`), contentType: "text/plain", context: null })));
    expect(store.stats.eventsAppended).toBe(2000);
    expect(store.stats.commits).toBeLessThan(20);
    expect(store.stats.largestBatch).toBeGreaterThan(100);
    for (const i of [0, 999, 1999]) {
      const s = await coordinator.get(`k${i}`);
      expect(new TextDecoder().decode(s.siblings[0]!.value!)).toBe(`v${i}`);
    }
    await store.close();
  });

  test("writes to one key in one batch see each other: dots are unique and contexts chain", async () => {
    const { store, coordinator } = openNode(fresh());
    const states = await Promise.all(Array.from({ length: 50 }, (_, i) => coordinator.write({ key: "same", value: bytes(`${i}`), contentType: "", context: null })));
    const final = await coordinator.get("same");
    expect(final.siblings.length).toBe(50);
    expect(new Set(final.siblings.map((v) => v.dot.counter)).size).toBe(50);
    expect(states.at(-1)!.siblings.length).toBe(50);
    await store.close();
  });
});

describe("entries shipped from other nodes", () => {
  test("duplicates append nothing; merged states fold into the log and survive a rebuild", async () => {
    const { store, coordinator } = openNode(fresh());
    const written = await coordinator.write({ key: "k", value: bytes("local"), contentType: "", context: null });
    const remote = { kind: "state" as const, key: "k", state: { siblings: [{ dot: { actor: "other.1", counter: 1 }, value: bytes("remote"), contentType: "", ts: 1 }], ctx: ctxOf([{ actor: "other.1", counter: 1 }]) } };
    const vnode = [...Array(64).keys()].find((v) => store.projection(v).has("k"))!;
    const [first] = await store.applyEntries(vnode, [remote]);
    expect(first!.appended).toBe(true);
    const [again] = await store.applyEntries(vnode, [remote]);
    expect(again!.appended).toBe(false);
    expect(first!.state.siblings.length).toBe(written.siblings.length + 1);
    expect(statesEqual(store.rebuild(vnode).get("k")!, store.projection(vnode).get("k")!)).toBe(true);
    await store.close();
  });
});

describe("a write lock held by another connection", () => {
  const openLocked = (busyWaitMs: number) => {
    const dir = fresh();
    const db = openDatabase(dir, TUNING);
    const identity = loadIdentity(db, "n1", 64, Math.random);
    const store = new LogStore(db, { groupCommitMaxBatch: 512, snapshotEvery: 10_000, snapshotTailRatio: 1_000, ...WRITE_BEHIND, busyWaitMs, now: Date.now });
    const other = new Database(join(dir, "ringlog.db"));
    other.exec("PRAGMA busy_timeout = 0");
    return { store, identity, other };
  };
  let counter = 0;
  const put = (store: LogStore, key: string) =>
    store.write(0, key, (state) => {
      const event = { key, dot: { actor: "a", counter: ++counter }, context: emptyContext(), value: bytes(key), contentType: "", ts: 0 };
      return { entry: { kind: "event" as const, event }, next: applyEvent(state, event) };
    });
  /** How late a 10 ms timer fires while `during` runs: the event loop's longest stall, about. */
  const timerLateness = async (ms: number) => {
    let worst = 0;
    const until = performance.now() + ms;
    while (performance.now() < until) {
      const at = performance.now();
      await Bun.sleep(10);
      worst = Math.max(worst, performance.now() - at - 10);
    }
    return worst;
  };

  test("queued writes wait in the event loop, which goes on serving, and commit once the lock is gone", async () => {
    const { store, other } = openLocked(5_000);
    await put(store, "before");
    other.exec("BEGIN IMMEDIATE");
    let settled = false;
    const write = put(store, "during").finally(() => (settled = true));
    // SQLite's busy handler (5 s before) would have blocked the event loop, timers included.
    expect(await timerLateness(500)).toBeLessThan(200);
    expect(settled).toBe(false);
    expect(store.stats.commitBusyRetries).toBeGreaterThan(3);
    expect(store.read(0, "before")).not.toBe(EMPTY_STATE);
    other.exec("COMMIT");
    const outcome = await write;
    expect(outcome.appended).toBe(true);
    expect(store.read(0, "during")).not.toBe(EMPTY_STATE);
    other.close();
    await store.close();
  });

  test("writes that have waited busyWaitMs fail; the next ones commit once the lock is gone", async () => {
    const { store, other } = openLocked(300);
    other.exec("BEGIN IMMEDIATE");
    const started = performance.now();
    const failed = await put(store, "late").then(
      () => undefined,
      (err: { code?: string }) => err,
    );
    expect(failed?.code).toBe("SQLITE_BUSY");
    expect(performance.now() - started).toBeGreaterThanOrEqual(300);
    expect(performance.now() - started).toBeLessThan(1_500);
    other.exec("COMMIT");
    expect((await put(store, "after")).appended).toBe(true);
    expect(store.read(0, "late")).toBe(EMPTY_STATE);
    other.close();
    await store.close();
  });
});

describe("snapshots and rebuild", () => {
  test("a snapshot step that fails (the database locked from outside) is tried again later, and the snapshot completes once it can", async () => {
    const dir = fresh();
    const { store, coordinator } = openNode(dir, 16);
    const keys = Array.from({ length: 100_000 }, (_, i) => `k${i}`).filter((k) => vnodeOf(k, 64) === 5).slice(0, 40);
    // One commit takes the vnode past its tail limit; its snapshot's first step comes in a
    // later turn of the event loop, after the lock below is taken.
    await Promise.all(keys.map((key) => coordinator.write({ key, value: bytes(key), contentType: "", context: null })));
    const other = new Database(join(dir, "ringlog.db"));
    other.exec("PRAGMA busy_timeout = 0");
    other.exec("BEGIN IMMEDIATE");
    // The step fails (SQLite waits 5 ms for a lock, no more) and is tried again a second later.
    while (store.stats.snapshotFailures === 0) await Bun.sleep(50);
    expect(store.stats.snapshots).toBe(0);
    other.exec("COMMIT");
    other.close();
    const started = Date.now();
    while (store.stats.snapshots === 0) {
      expect(Date.now() - started).toBeLessThan(5_000);
      await Bun.sleep(50);
    }
    const rebuilt = store.rebuild(5);
    const live = store.projection(5);
    expect([...rebuilt.keys()].sort()).toEqual([...keys].sort());
    for (const key of keys) expect(statesEqual(rebuilt.get(key)!, live.get(key)!)).toBe(true);
    await store.close();
  }, 30_000);

  test("for 10,000 keys with overwrites, deletes and collected tombstones, the projection rebuilt from snapshot + log equals the live one", async () => {
    const dir = fresh();
    let node = openNode(dir, 300);
    const keys = 10_000;
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 3; round++) {
      const writes = [];
      for (let i = 0; i < keys; i++) {
        const key = `key-${i}`;
        const r = rand(10);
        if (round > 0 && r === 0) {
          writes.push(node.coordinator.write({ key, value: null, contentType: "", context: null }));
        } else if (round > 0 && r < 6) {
          const read = await node.coordinator.get(key);
          writes.push(node.coordinator.write({ key, value: bytes(`${key}@${round}`), contentType: "text/plain", context: read.ctx }));
        } else if (round === 0 || r < 8) {
          writes.push(node.coordinator.write({ key, value: bytes(`${key}@${round}-blind`), contentType: "text/plain", context: null }));
        }
      }
      await Promise.all(writes);
    }
    // Tombstones collected (as GC does) must leave the snapshots too; snapshots are brought
    // forward incrementally from the keys the tail touched.
    let collected = 0;
    for (let i = 0; i < keys; i++) {
      const key = `key-${i}`;
      const state = await node.coordinator.get(key);
      if (state.siblings.length > 0 && state.siblings.every((v) => v.value === null)) {
        await node.store.applyEntries(vnodeOf(key, 64), [{ kind: "collect", key, digest: stateDigest(encodeState(state)) }]);
        collected++;
      }
    }
    expect(collected).toBeGreaterThan(100);
    for (let v = 0; v < 64; v++) node.store.snapshot(v);
    await Bun.sleep(50);
    expect(node.store.stats.snapshots).toBeGreaterThan(64);

    const check = () => {
      let compared = 0;
      let compacted = 0;
      for (let v = 0; v < 64; v++) {
        const live = node.store.projection(v);
        const rebuilt = node.store.rebuild(v);
        expect(rebuilt.size).toBe(live.size);
        for (const [key, state] of live) {
          expect(statesEqual(rebuilt.get(key)!, state)).toBe(true);
          compared++;
        }
        if (node.store.logLength(v) < node.store.head(v)) compacted++;
      }
      return { compared, compacted };
    };
    const before = check();
    expect(before.compared).toBe(keys - collected);
    expect(before.compacted).toBeGreaterThan(32);

    await node.store.close();
    node = openNode(dir, 300);
    expect(check()).toEqual(before);
    await node.store.close();
  });

  test("while snapshots are built a step at a time between commits, snapshot + log rebuilds the live projection at every point", async () => {
    const { store, coordinator } = openNode(fresh(), 200);
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const keys = 20_000;
    const rebuildsLive = (v: number) => {
      const live = store.projection(v);
      const rebuilt = store.rebuild(v);
      expect(rebuilt.size).toBe(live.size);
      for (const [key, state] of live) expect(statesEqual(rebuilt.get(key)!, state)).toBe(true);
    };
    let midBuild = 0;
    for (let round = 0; round < 300; round++) {
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i++) {
        const key = `key-${rand(keys)}`;
        const r = rand(10);
        if (r === 0) writes.push(coordinator.write({ key, value: null, contentType: "", context: null }));
        else if (r === 1) {
          const state = await coordinator.get(key);
          if (state.siblings.length > 0 && state.siblings.every((v) => v.value === null))
            writes.push(store.applyEntries(vnodeOf(key, 64), [{ kind: "collect", key, digest: stateDigest(encodeState(state)) }]));
          else writes.push(coordinator.write({ key, value: null, contentType: "", context: state.ctx }));
        } else writes.push(coordinator.write({ key, value: bytes(`${key}@${round}`), contentType: "text/plain", context: null }));
      }
      await Promise.all(writes);
      const building = store.buildingSnapshotOf;
      if (building !== undefined) {
        expect(store.snapshotBacklog).toBeGreaterThan(0);
        midBuild++;
        rebuildsLive(building);
      }
      if (round % 30 === 29) for (let v = 0; v < 64; v++) rebuildsLive(v);
    }
    expect(midBuild).toBeGreaterThan(20);
    await store.settled();
    expect(store.snapshotBacklog).toBe(0);
    expect(store.stats.snapshots).toBeGreaterThan(64);
    await store.close();
  }, 60_000);

  test("a key changed while its snapshot is being built is snapshotted as it was at the snapshot's position", async () => {
    const { store, coordinator } = openNode(fresh(), 200);
    const vnode = 5;
    const keys = Array.from({ length: 40_000 }, (_, i) => `k-${i}`).filter((k) => vnodeOf(k, 64) === vnode).slice(0, 2_000);
    const last = [...keys].sort().at(-1)!;
    // Tombstones from two writers that never saw each other: a rebuild that lost the first
    // (the snapshot missing the key's state at its position) folds to a different tombstone,
    // which the collection below would then not remove.
    const tombstone = (actor: string) => ({ kind: "event" as const, event: { key: last, dot: { actor, counter: 1 }, context: emptyContext(), value: null, contentType: "", ts: 1 } });
    await Promise.all([
      ...keys.filter((k) => k !== last).map((key) => coordinator.write({ key, value: bytes(key), contentType: "", context: null })),
      store.applyEntries(vnode, [tombstone("a")]),
    ]);
    while (store.buildingSnapshotOf !== vnode) await new Promise((r) => setImmediate(r));
    await store.applyEntries(vnode, [tombstone("b")]);
    const tombstones = store.projection(vnode).get(last)!;
    expect(tombstones.siblings.length).toBe(2);
    await store.applyEntries(vnode, [{ kind: "collect", key: last, digest: stateDigest(encodeState(tombstones)) }]);
    expect(store.buildingSnapshotOf).toBe(vnode);
    await store.settled();
    expect(store.projection(vnode).has(last)).toBe(false);
    expect(store.rebuild(vnode).has(last)).toBe(false);
    await store.close();
  });

  test("a key changed while the snapshot still lists its tail's keys is snapshotted as it was at the snapshot's position", async () => {
    // One commit of 5,000 rows, so the listing takes five steps, and the key's first tombstone
    // is the tail's last row: the second tombstone and the collection both commit before the
    // listing reaches it. Kept too late, the snapshot would lack the key, and a rebuild would
    // fold the second tombstone alone, which the collection does not remove.
    const { store, coordinator } = openNode(fresh(), 200, 8192);
    const vnode = 5;
    const keys = Array.from({ length: 400_000 }, (_, i) => `k-${i}`).filter((k) => vnodeOf(k, 64) === vnode).slice(0, 5_000);
    const last = keys.at(-1)!;
    const tombstone = (actor: string) => ({ kind: "event" as const, event: { key: last, dot: { actor, counter: 1 }, context: emptyContext(), value: null, contentType: "", ts: 1 } });
    await Promise.all([...keys.slice(0, -1).map((key) => coordinator.write({ key, value: bytes(key), contentType: "", context: null })), store.applyEntries(vnode, [tombstone("a")])]);
    while (!((store.snapshotListing?.listed ?? 0) > 0)) await new Promise((r) => setImmediate(r));
    expect(store.buildingSnapshotOf).toBe(vnode);
    await store.applyEntries(vnode, [tombstone("b")]);
    const tombstones = store.projection(vnode).get(last)!;
    expect(tombstones.siblings.length).toBe(2);
    await store.applyEntries(vnode, [{ kind: "collect", key: last, digest: stateDigest(encodeState(tombstones)) }]);
    expect(store.snapshotListing).toBeDefined();
    await store.settled();
    expect(store.stats.snapshots).toBeGreaterThan(0);
    expect(store.logLength(vnode)).toBeLessThan(5_000);
    expect(store.projection(vnode).has(last)).toBe(false);
    expect(store.rebuild(vnode).has(last)).toBe(false);
    await store.close();
  });
});

describe("compacted log rows", () => {
  const tableRows = (db: Database) => (db.query("SELECT COUNT(*) AS n FROM events").get() as { n: number }).n;
  const liveRows = (store: LogStore) => Array.from({ length: 64 }, (_, v) => store.logLength(v)).reduce((a, b) => a + b, 0);

  test("leave the table from its front, stay out of every read across a restart, and a vnode written once is snapshotted out of turn when the rows behind its row outnumber snapshotEvery and the live ones", async () => {
    const dir = fresh();
    const snapshotEvery = 200;
    let node = openNode(dir, snapshotEvery);
    // The oldest row in the table, in a vnode whose log never reaches a tail limit.
    const rare = "rare";
    const rareVnode = vnodeOf(rare, 64);
    await node.coordinator.write({ key: rare, value: bytes("once"), contentType: "text/plain", context: null });
    const keys = Array.from({ length: 2_000 }, (_, i) => `key-${i}`).filter((k) => vnodeOf(k, 64) !== rareVnode).slice(0, 300);
    const contexts = new Map<string, ReturnType<typeof emptyContext>>();
    const overwrite = (from: number, to: number) =>
      (async () => {
        for (let round = from; round < to; round++) {
          await Promise.all(
            keys.map(async (key) => {
              const state = await node.coordinator.write({ key, value: bytes(`${key}@${round}`), contentType: "text/plain", context: contexts.get(key) ?? null });
              contexts.set(key, state.ctx);
            }),
          );
        }
      })();
    await overwrite(0, 60);

    // Stopped with compacted rows still in the table: they stay out of the logs after a restart.
    expect(tableRows(node.db)).toBeGreaterThan(liveRows(node.store));
    expect(node.store.sizes().compactedRows).toBe(tableRows(node.db) - liveRows(node.store));
    const projections = Array.from({ length: 64 }, (_, v) => node.store.projection(v));
    const lengths = Array.from({ length: 64 }, (_, v) => node.store.logLength(v));
    await node.store.close();
    node = openNode(dir, snapshotEvery);
    expect(Array.from({ length: 64 }, (_, v) => node.store.logLength(v))).toEqual(lengths);
    expect(node.store.sizes().compactedRows).toBe(tableRows(node.db) - liveRows(node.store));
    for (let v = 0; v < 64; v++) {
      const rebuilt = node.store.rebuild(v);
      expect(rebuilt.size).toBe(projections[v]!.size);
      for (const [key, state] of projections[v]!) expect(statesEqual(rebuilt.get(key)!, state)).toBe(true);
    }

    await overwrite(60, 120);
    await node.store.settled();
    expect(node.store.snapshotSeqOf(rareVnode)).toBe(1);
    const live = liveRows(node.store);
    const dead = tableRows(node.db) - live;
    expect(node.store.sizes().compactedRows).toBe(dead);
    console.log(`compacted log rows: ${live} live and ${dead} compacted rows left in the table after ${120 * keys.length + 1} writes`);
    // Held back behind the rare vnode's row, they would number most of the 36,001 writes. Held
    // back behind the longest log, they number at most what every vnode writes while it fills.
    expect(dead).toBeLessThanOrEqual(64 * 1.5 * snapshotEvery);
    expect(new TextDecoder().decode((await node.coordinator.get(rare)).siblings[0]!.value!)).toBe("once");
    await node.store.close();
  });
});

describe("the projection written behind the log", () => {
  const storedRows = (db: Database) => db.query("SELECT vnode, key, state FROM projection ORDER BY vnode, key").all() as { vnode: number; key: string; state: Uint8Array }[];
  const lagRows = (db: Database) => db.query("SELECT vnode, seq FROM projection_lag ORDER BY vnode").all() as { vnode: number; seq: number }[];

  test("changed states wait in memory, readable, until a vnode has projectionFlushKeys (stretched up to 1.5×) of them or they are projectionFlushMs old", async () => {
    const { db, store, coordinator } = openNode(fresh(), 10_000, 512, { projectionFlushKeys: 4, projectionFlushMs: 300 });
    const inVnode = (v: number, n: number) => Array.from({ length: 100_000 }, (_, i) => `k${i}`).filter((k) => vnodeOf(k, 64) === v).slice(0, n);
    const keys = inVnode(9, 6);
    const written: string[] = [];
    for (const key of keys) {
      await coordinator.write({ key, value: bytes(key), contentType: "", context: null });
      await store.settled();
      if (storedRows(db).length > 0) break;
      written.push(key);
      // Committed to the log, not yet to the stored projection, which lags from log position 0.
      expect(lagRows(db)).toEqual([{ vnode: 9, seq: 0 }]);
      expect(store.sizes().unwrittenStates).toBe(written.length);
      expect(new TextDecoder().decode((await coordinator.get(key)).siblings[0]!.value!)).toBe(key);
      expect([...store.scan(9)].map((r) => r.key).sort()).toEqual([...written].sort());
    }
    expect(written.length + 1).toBeGreaterThanOrEqual(4);
    expect(written.length + 1).toBeLessThanOrEqual(6);
    expect(storedRows(db).map((r) => r.key).sort()).toEqual(keys.slice(0, written.length + 1).sort());
    expect(lagRows(db)).toEqual([]);
    expect(store.stats.projectionWrites).toBe(1);

    const [d] = inVnode(17, 1);
    await coordinator.write({ key: d!, value: bytes("d"), contentType: "", context: null });
    expect(storedRows(db).some((r) => r.key === d)).toBe(false);
    const started = Date.now();
    while (!storedRows(db).some((r) => r.key === d)) {
      expect(Date.now() - started).toBeLessThan(2_000);
      await Bun.sleep(20);
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(store.sizes().unwrittenStates).toBe(0);
    await store.close();
  });

  test("a projection write that fails (the database locked) keeps the states in memory, readable, and succeeds on a later try", async () => {
    const dir = fresh();
    const { db, store, coordinator } = openNode(dir, 10_000, 512, { projectionFlushKeys: 1_000_000, projectionFlushMs: 100 });
    await coordinator.write({ key: "locked", value: bytes("v"), contentType: "", context: null });
    const other = new Database(join(dir, "ringlog.db"));
    other.exec("PRAGMA busy_timeout = 0");
    other.exec("BEGIN IMMEDIATE");
    // The write is due within 100 ms and fails at once (SQLite waits 5 ms for a lock, no more).
    while (store.stats.projectionWriteFailures === 0) await Bun.sleep(50);
    expect(storedRows(db)).toEqual([]);
    expect(store.sizes().unwrittenStates).toBe(1);
    expect(new TextDecoder().decode((await coordinator.get("locked")).siblings[0]!.value!)).toBe("v");
    other.exec("COMMIT");
    other.close();
    while (storedRows(db).length === 0) await Bun.sleep(50);
    expect(storedRows(db).map((r) => r.key)).toEqual(["locked"]);
    expect(lagRows(db)).toEqual([]);
    await store.close();
  }, 30_000);

  describe("on a full disk (SQLite's max_page_count holding the file at its size)", () => {
    const NEVER = { projectionFlushKeys: 1_000_000, projectionFlushMs: 600_000 };
    const fill = (db: Database) => db.exec(`PRAGMA max_page_count = ${(db.query("PRAGMA page_count").get() as { page_count: number }).page_count}`);
    const keysOf = (vnode: number) => Array.from({ length: 100_000 }, (_, i) => `k${i}`).filter((k) => vnodeOf(k, 64) === vnode).slice(0, 50);
    const valueOf = (store: LogStore, vnode: number, key: string) => new TextDecoder().decode(store.read(vnode, key).siblings[0]!.value!);
    // Values large enough that their states need more pages than the file has free.
    const big = (key: string) => `v-${key}-`.padEnd(2_000, "x");

    test("a node whose crash left states to fold starts anyway: they wait in memory, readable, and are written once there is room", async () => {
      const dir = fresh();
      const node = openNode(dir, 10_000, 512, NEVER);
      const keys = keysOf(9);
      await Promise.all(keys.map((key) => node.coordinator.write({ key, value: bytes(big(key)), contentType: "", context: null })));
      node.store.holdCommits();
      node.db.close();

      const db = openDatabase(dir, TUNING);
      fill(db);
      const store = new LogStore(db, { groupCommitMaxBatch: 512, snapshotEvery: 10_000, snapshotTailRatio: 1_000, ...NEVER, busyWaitMs: DEFAULTS.storageBusyWaitMs, now: Date.now });
      expect(store.stats.catchUpVnodes).toBe(1);
      expect(store.stats.projectionWriteFailures).toBe(1);
      expect(storedRows(db)).toEqual([]);
      expect(lagRows(db).map((r) => r.vnode)).toEqual([9]);
      for (const key of keys) expect(valueOf(store, 9, key)).toBe(big(key));
      expect(store.sizes().keys).toBe(keys.length);

      db.exec("PRAGMA max_page_count = 1073741823");
      const started = Date.now();
      while (lagRows(db).length > 0) {
        expect(Date.now() - started).toBeLessThan(5_000);
        await Bun.sleep(50);
      }
      expect(storedRows(db).map((r) => r.key).sort()).toEqual([...keys].sort());
      expect(store.sizes().unwrittenStates).toBe(0);
      await store.close();
    });

    test("closing leaves the states it cannot write to the next start's fold, and closes", async () => {
      const dir = fresh();
      const node = openNode(dir, 10_000, 512, NEVER);
      const keys = keysOf(11);
      await Promise.all(keys.map((key) => node.coordinator.write({ key, value: bytes(big(key)), contentType: "", context: null })));
      fill(node.db);
      await node.store.close();
      expect(node.store.stats.projectionWriteFailures).toBe(1);

      const again = openNode(dir, 10_000, 512, NEVER);
      expect(again.store.stats.catchUpVnodes).toBe(1);
      expect(again.store.stats.projectionWriteFailures).toBe(0);
      expect(storedRows(again.db).map((r) => r.key).sort()).toEqual([...keys].sort());
      for (const key of keys) expect(valueOf(again.store, 11, key)).toBe(big(key));
      await again.store.close();
    });
  });

  test("statesAfter pages through stored and unwritten states alike, in SQLite's key order, none skipped or repeated", async () => {
    const dir = fresh();
    const never = { projectionFlushKeys: 1_000_000, projectionFlushMs: 600_000 };
    const { store, coordinator } = openNode(dir, 10_000, 512, never);
    // Keys in one vnode, some outside the BMP (JS and SQLite order those differently).
    const all = Array.from({ length: 200_000 }, (_, i) => (i % 7 === 0 ? `\u{1F600}${i}` : i % 7 === 1 ? `\uFF10${i}` : `k${i}`)).filter((k) => vnodeOf(k, 64) === 3);
    const first = all.slice(0, 300);
    await Promise.all(first.map((key) => coordinator.write({ key, value: bytes("old"), contentType: "", context: null })));
    await store.close();
    // Closing wrote them: these are stored rows now.
    const node = openNode(dir, 10_000, 512, never);
    const deleted = first.filter((_, i) => i % 5 === 0);
    await Promise.all([
      ...all.slice(300, 400).map((key) => node.coordinator.write({ key, value: bytes("new"), contentType: "", context: null })),
      ...first.filter((_, i) => i % 5 === 1).map((key) => node.coordinator.write({ key, value: bytes("newer"), contentType: "", context: null })),
      ...deleted.map(async (key) => node.store.applyEntries(3, [{ kind: "collect", key, digest: stateDigest(encodeState(node.store.read(3, key))) }])),
    ]);
    expect(node.store.sizes().unwrittenStates).toBe(100 + 60 + 60);
    const expected = all.slice(0, 400).filter((k) => !deleted.includes(k)).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    const paged: string[] = [];
    for (let after = ""; ; ) {
      const page = node.store.statesAfter(3, after, 37);
      paged.push(...page.map((r) => r.key));
      if (page.length < 37) break;
      after = page.at(-1)!.key;
    }
    expect(paged).toEqual(expected);
    expect([...node.store.scan(3)].map((r) => r.key)).toEqual(expected);
    await node.store.close();
  });

  test("property: after a crash at any point, start-up folds the log into the stored projection and it equals what was acknowledged", async () => {
    // Ten keys in two vnodes, so their logs grow past snapshotEvery and snapshots run in between.
    const candidates = Array.from({ length: 10_000 }, (_, i) => `key-${i}`);
    const KEYS = [1, 2].flatMap((v) => candidates.filter((k) => vnodeOf(k, 64) === v).slice(0, 5));
    const op = fc.oneof(
      fc.record({ kind: fc.constant("put" as const), key: fc.nat({ max: KEYS.length - 1 }), withContext: fc.boolean() }),
      fc.record({ kind: fc.constant("burst" as const), keys: fc.array(fc.nat({ max: KEYS.length - 1 }), { minLength: 2, maxLength: 8 }) }),
      fc.record({ kind: fc.constant("delete" as const), key: fc.nat({ max: KEYS.length - 1 }) }),
      fc.record({ kind: fc.constant("collect" as const), key: fc.nat({ max: KEYS.length - 1 }) }),
      fc.record({ kind: fc.constant("turns" as const), n: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant("settle" as const) }),
      fc.record({ kind: fc.constant("crash" as const) }),
    );
    let runs = 0;
    let snapshots = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), fc.integer({ min: 1, max: 4 }), async (ops, flushKeys) => {
        runs++;
        const dir = fresh();
        const open = () => openNode(dir, 3, 512, { projectionFlushKeys: flushKeys, projectionFlushMs: 600_000 });
        let node = open();
        let value = 0;
        const vnodes = [...new Set(KEYS.map((k) => vnodeOf(k, 64)))];
        // What every acknowledged write left: the live projection, read before the crash.
        const crash = () => {
          const acked = new Map(vnodes.map((v) => [v, node.store.projection(v)]));
          snapshots += node.store.stats.snapshots;
          node.store.holdCommits();
          node.db.close();
          node = open();
          expect(lagRows(node.db)).toEqual([]);
          expect(node.store.sizes().unwrittenStates).toBe(0);
          for (const v of vnodes) {
            const stored = new Map(storedRows(node.db).filter((r) => r.vnode === v).map((r) => [r.key, r.state]));
            const rebuilt = node.store.rebuild(v);
            const want = acked.get(v)!;
            expect([...stored.keys()].sort()).toEqual([...want.keys()].sort());
            expect([...rebuilt.keys()].sort()).toEqual([...want.keys()].sort());
            for (const [key, state] of want) {
              expect(Buffer.from(stored.get(key)!).equals(Buffer.from(encodeState(state)))).toBe(true);
              expect(statesEqual(rebuilt.get(key)!, state)).toBe(true);
            }
          }
        };
        const put = (key: string, context: Awaited<ReturnType<typeof node.coordinator.get>>["ctx"] | null) =>
          node.coordinator.write({ key, value: bytes(`v${value++}`), contentType: "", context });
        for (const o of ops) {
          if (o.kind === "put") await put(KEYS[o.key]!, o.withContext ? (await node.coordinator.get(KEYS[o.key]!)).ctx : null);
          else if (o.kind === "burst") await Promise.all(o.keys.map((k) => put(KEYS[k]!, null)));
          else if (o.kind === "delete") await node.coordinator.write({ key: KEYS[o.key]!, value: null, contentType: "", context: null });
          else if (o.kind === "collect") {
            const key = KEYS[o.key]!;
            const vnode = vnodeOf(key, 64);
            await node.store.applyEntries(vnode, [{ kind: "collect", key, digest: stateDigest(encodeState(node.store.read(vnode, key))) }]);
          } else if (o.kind === "turns") for (let i = 0; i < o.n; i++) await new Promise((r) => setImmediate(r));
          else if (o.kind === "settle") await node.store.settled();
          else crash();
        }
        crash();
        await node.store.close();
      }),
      { numRuns: 40, seed: 20261201 },
    );
    expect(runs).toBe(40);
    expect(snapshots).toBeGreaterThan(20);
  });
});
