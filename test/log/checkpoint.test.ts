/**
 * The background checkpointer on a real database: RESTART checkpoints run only while the
 * store holds its commits, so no commit ever waits inside SQLite's busy handler, and a
 * reader from outside the node cannot make a RESTART hold commits for long.
 */
import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { emptyContext } from "../../src/clock/context.ts";
import { EMPTY_STATE, applyEvent } from "../../src/clock/fold.ts";
import { DEFAULTS } from "../../src/config/settings.ts";
import { Checkpointer } from "../../src/log/checkpointer.ts";
import { databasePath, openDatabase } from "../../src/log/database.ts";
import { LogStore } from "../../src/log/store.ts";
import { tempDir } from "../support/node-process.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function freshStore() {
  const dir = tempDir("ringlog-checkpoint-");
  dirs.push(dir);
  const db = openDatabase(dir, { fsync: "normal", walCheckpointPages: 64, mmapBytes: 0 });
  const store = new LogStore(db, { groupCommitMaxBatch: 512, snapshotEvery: 10_000, snapshotTailRatio: 1_000, projectionFlushKeys: DEFAULTS.projectionFlushKeys, projectionFlushMs: DEFAULTS.projectionFlushMs, busyWaitMs: DEFAULTS.storageBusyWaitMs, now: Date.now });
  return { dir, store };
}

let counter = 0;
const put = (store: LogStore, key: string) =>
  store.write(0, key, (state) => {
    const event = { key, dot: { actor: "a", counter: ++counter }, context: emptyContext(), value: new Uint8Array(200), contentType: "x", ts: 0 };
    return { entry: { kind: "event" as const, event }, next: applyEvent(state, event) };
  });

test("held commits queue without committing, and all commit once released", async () => {
  const { store } = freshStore();
  store.holdCommits();
  let committed = 0;
  const writes = Array.from({ length: 10 }, (_, i) => put(store, `k${i}`).then(() => committed++));
  await Bun.sleep(20);
  expect(committed).toBe(0);
  expect(store.read(0, "k0")).toBe(EMPTY_STATE);
  store.releaseCommits();
  await Promise.all(writes);
  expect(committed).toBe(10);
  expect(store.stats.commits).toBe(1);
  await store.close();
});

test("every RESTART checkpoint runs between a hold and a release of the store's commits", async () => {
  const { dir, store } = freshStore();
  const checkpointer = await Checkpointer.start(databasePath(dir), { intervalMs: 5, restartPages: 64, restartWaitMs: 100 });
  const events: string[] = [];
  const commitsAt: number[] = [];
  checkpointer.committer = {
    holdCommits: () => {
      events.push("hold");
      commitsAt.push(store.stats.commits);
      store.holdCommits();
    },
    releaseCommits: () => {
      events.push("release");
      commitsAt.push(store.stats.commits);
      store.releaseCommits();
    },
  };
  // 64 pages of WAL fill quickly: keep writing until several RESTARTs have happened.
  const deadline = Date.now() + 20_000;
  let i = 0;
  while (checkpointer.stats.restarts < 3 && Date.now() < deadline) {
    await Promise.all(Array.from({ length: 50 }, () => put(store, `key-${i++ % 2000}`)));
  }
  await checkpointer.stop();
  expect(checkpointer.stats.restarts).toBeGreaterThanOrEqual(3);
  // Holds and releases alternate and every hold was released (by its RESTART, or by the stop).
  expect(events.length).toBeGreaterThanOrEqual(2 * checkpointer.stats.restarts);
  expect(events.length % 2).toBe(0);
  events.forEach((e, n) => expect(e).toBe(n % 2 === 0 ? "hold" : "release"));
  // Nothing committed while held, although writers kept queueing.
  for (let n = 0; n < commitsAt.length; n += 2) expect(commitsAt[n + 1]).toBe(commitsAt[n]!);
  expect(store.read(0, "key-0")).not.toBe(EMPTY_STATE);
  await store.close();
});

test("an outside reader (a backup, say) delays commits by at most the RESTART wait, and the WAL is rewound once it ends", async () => {
  const { dir, store } = freshStore();
  const checkpointer = await Checkpointer.start(databasePath(dir), { intervalMs: 5, restartPages: 64, restartWaitMs: 100 });
  checkpointer.committer = store;
  let i = 0;
  /** Writes a batch; returns how long it took (ms). */
  const batch = async () => {
    const started = performance.now();
    await Promise.all(Array.from({ length: 20 }, () => put(store, `key-${i++ % 2000}`)));
    return performance.now() - started;
  };
  const until = async (done: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!done() && Date.now() < deadline) await batch();
    expect(done()).toBe(true);
  };
  await until(() => checkpointer.stats.restarts >= 1, 20_000);

  const reader = new Database(databasePath(dir));
  reader.exec("BEGIN");
  reader.query("SELECT COUNT(*) FROM events").get();
  const restartsBefore = checkpointer.stats.restarts;
  let slowest = 0;
  const readerEnds = Date.now() + 3_000;
  while (Date.now() < readerEnds) slowest = Math.max(slowest, await batch());
  // Without the bound, commits held for 2 s were released into a RESTART that kept waiting
  // (5 s) on the reader: a batch then took 5 s and blocked the event loop for 3 of them.
  expect(slowest).toBeLessThan(1_000);
  expect(checkpointer.stats.restartsDeferred + checkpointer.stats.restartsGivenUp).toBeGreaterThan(0);
  expect(checkpointer.stats.restarts).toBe(restartsBefore);

  reader.exec("COMMIT");
  reader.close();
  await until(() => checkpointer.stats.restarts > restartsBefore, 20_000);
  await checkpointer.stop();
  await store.close();
}, 60_000);

test("a checkpoint that fails is counted and tried again at the next interval: the thread lives on", async () => {
  const dir = tempDir("ringlog-checkpoint-");
  dirs.push(dir);
  // Not a database: every checkpoint fails, as on a full disk, but at once.
  const path = join(dir, "not-a-database");
  writeFileSync(path, Buffer.alloc(8_192, 7));
  const checkpointer = await Checkpointer.start(path, { intervalMs: 5, restartPages: 64, restartWaitMs: 100 });
  const deadline = Date.now() + 5_000;
  while (checkpointer.stats.failures < 3 && Date.now() < deadline) await Bun.sleep(10);
  expect(checkpointer.stats.failures).toBeGreaterThanOrEqual(3);
  // A dead thread never answers the stop; stop() then gives up after 2 s.
  const stopping = performance.now();
  await checkpointer.stop();
  expect(performance.now() - stopping).toBeLessThan(1_000);
});
