/** Compaction keeps the database bounded under an overwrite-heavy workload. */
import { expect, test } from "bun:test";
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { statesEqual } from "../../src/clock/fold.ts";
import { DEFAULTS } from "../../src/config/settings.ts";
import { Coordinator } from "../../src/coordinator/coordinator.ts";
import { HintStore } from "../../src/hints/hints.ts";
import { openDatabase } from "../../src/log/database.ts";
import { loadIdentity } from "../../src/log/identity.ts";
import { LogStore } from "../../src/log/store.ts";
import { claim } from "../../src/ring/ring.ts";
import { tempDir } from "../support/node-process.ts";

test("200,000 overwrites of 1,000 keys: after compaction the database file is at most 10× the live data", async () => {
  const dir = tempDir("ringlog-compact-");
  try {
    const db = openDatabase(dir, DEFAULTS);
    const identity = loadIdentity(db, "n1", 64, Math.random);
    const store = new LogStore(db, { groupCommitMaxBatch: 512, snapshotEvery: DEFAULTS.snapshotEvery, snapshotTailRatio: DEFAULTS.snapshotTailRatio, projectionFlushKeys: DEFAULTS.projectionFlushKeys, projectionFlushMs: DEFAULTS.projectionFlushMs, busyWaitMs: DEFAULTS.storageBusyWaitMs, now: Date.now });
    const coordinator = new Coordinator({
      store,
      hints: new HintStore(db, Date.now),
      identity,
      limits: { maxSiblings: 100, maxContextActors: 256 },
      resolvers: [{ prefix: "", mode: "lww" }],
      now: Date.now,
      cluster: { ring: { epoch: 1, owners: claim(["n1"], 64, 1) }, isUp: () => true },
      replicas: { apply: () => Promise.reject(new Error("no peers")), read: () => Promise.reject(new Error("no peers")) },
      n: 1,
      timeoutMs: 1000,
    });
    const one = { total: 1, primaries: 0 };
    const value = new Uint8Array(100).fill(7);
    for (let i = 0; i < 200_000; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => coordinator.write({ key: `key-${(i + j) % 1000}`, value, contentType: "application/octet-stream", context: null }, one)));
    }
    await store.settled();
    expect(store.stats.snapshots).toBeGreaterThan(64);

    let live = 0;
    let logRows = 0;
    for (let v = 0; v < 64; v++) {
      const projection = store.projection(v);
      for (const row of store.scan(v)) live += row.key.length + row.state.byteLength;
      const rebuilt = store.rebuild(v);
      for (const [k, s] of projection) expect(statesEqual(rebuilt.get(k)!, s)).toBe(true);
      logRows += store.logLength(v);
    }
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    const file = statSync(join(dir, "ringlog.db")).size;
    console.log(`compaction: live data ${live} bytes, database file ${file} bytes (${(file / live).toFixed(1)}×), ${logRows} log rows left of 200,000 writes`);
    expect(logRows).toBeLessThan(20_000);
    expect(file).toBeLessThanOrEqual(10 * live);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
