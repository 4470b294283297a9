/**
 * The coordinator's own hints, on real SQLite files: a hint it cannot store (its database
 * full) costs the owner that write until anti-entropy brings it, never the process.
 */
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { DEFAULTS } from "../../src/config/settings.ts";
import { Coordinator } from "../../src/coordinator/coordinator.ts";
import { HintStore } from "../../src/hints/hints.ts";
import { openDatabase } from "../../src/log/database.ts";
import { loadIdentity } from "../../src/log/identity.ts";
import { LogStore } from "../../src/log/store.ts";
import { claim } from "../../src/ring/ring.ts";
import { tempDir } from "../support/node-process.ts";

const TUNING = { fsync: DEFAULTS.fsync, walCheckpointPages: DEFAULTS.walCheckpointPages, mmapBytes: DEFAULTS.mmapBytes };
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const fresh = () => {
  const d = tempDir("ringlog-hints-");
  dirs.push(d);
  return d;
};

test("with n2 down and no fallback, a hint n1 cannot store is counted, the write still succeeds, and the process lives on", async () => {
  const db = openDatabase(fresh(), TUNING);
  const store = new LogStore(db, { groupCommitMaxBatch: 512, snapshotEvery: 10_000, snapshotTailRatio: 3, projectionFlushKeys: DEFAULTS.projectionFlushKeys, projectionFlushMs: DEFAULTS.projectionFlushMs, busyWaitMs: DEFAULTS.storageBusyWaitMs, now: Date.now });
  // The hints live in a database of their own here, held at its size as a full disk would.
  const hintDb = openDatabase(fresh(), TUNING);
  hintDb.exec(`PRAGMA max_page_count = ${(hintDb.query("PRAGMA page_count").get() as { page_count: number }).page_count}`);
  const noPeers = () => Promise.reject(new Error("n2 is down"));
  const coordinator = new Coordinator({
    store,
    hints: new HintStore(hintDb, Date.now),
    identity: loadIdentity(db, "n1", 64, Math.random),
    limits: { maxSiblings: 100, maxContextActors: 256 },
    resolvers: [],
    now: Date.now,
    // Two nodes at N=2: every vnode's other primary is n2, and there is no fallback.
    cluster: { ring: { epoch: 1, owners: claim(["n1", "n2"], 64, 2) }, isUp: (id) => id === "n1" },
    replicas: { apply: noPeers, read: noPeers },
    n: 2,
    timeoutMs: 1_000,
  });
  const writes = 20;
  // Values large enough that the hints need more pages than the file has free.
  const value = new Uint8Array(4_000).fill(97);
  for (let i = 0; i < writes; i++) {
    const { report } = await coordinator.write({ key: `k${i}`, value, contentType: "", context: null }, { total: 1, primaries: 0 });
    expect(report.answered).toEqual(["n1"]);
  }
  // The hint is stored after the write is answered, in a task nothing awaits.
  await Bun.sleep(20);
  expect(coordinator.counters.localHintFailures).toBeGreaterThan(0);
  expect(coordinator.counters.localHints + coordinator.counters.localHintFailures).toBe(writes);
  await store.close();
  hintDb.close();
});
