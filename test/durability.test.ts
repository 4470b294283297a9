/**
 * kill -9 durability of a real node process: a write is acknowledged (204) only after its
 * group commit, so every acknowledged write must survive SIGKILL, however often it comes.
 *
 * Each cycle starts (or restarts) the node on one data folder, runs concurrent writers and
 * SIGKILLs the node mid-load after a delay drawn from a seeded generator. A write whose 204
 * arrived is acknowledged; one in flight at the kill (or that failed on the wire) is unknown:
 * it may or may not have committed, but if it did, it must read back intact.
 *
 * The seed is printed; rerun a given schedule with RINGLOG_TEST_SEED=<n>.
 */
import { afterAll, expect, test } from "bun:test";
import { NodeProcess } from "./support/node-process.ts";

const SEED = Number(process.env.RINGLOG_TEST_SEED ?? 0x5eed_2025) >>> 0;
const CONTEXT = "x-ringlog-context";
const REQUEST_TIMEOUT_MS = 10_000;
const FILL = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(17);

/** mulberry32: a small deterministic generator, so the kill schedule follows from the seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A kill delay in [300, 800] ms. */
const killDelay = (rand: () => number) => 300 + Math.floor(rand() * 501);

const started: NodeProcess[] = [];
afterAll(async () => {
  for (const n of started) await n.destroy().catch(() => {});
});

type Outcome = "acked" | "unknown" | { status: number; body: string };

async function put(url: string, key: string, value: string, context?: string): Promise<{ outcome: Outcome; context?: string; siblings?: number }> {
  let res: Response;
  try {
    res = await fetch(`${url}/kv/${key}`, {
      method: "PUT",
      body: value,
      headers: { "content-type": "text/plain", ...(context ? { [CONTEXT]: context } : {}) },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch {
    return { outcome: "unknown" };
  }
  let body: string;
  try {
    body = await res.text();
  } catch {
    // The status line came, so the node answered; the body is empty for a 204 anyway.
    body = "";
  }
  if (res.status !== 204) return { outcome: { status: res.status, body } };
  return { outcome: "acked", context: res.headers.get(CONTEXT) ?? "", siblings: Number(res.headers.get("x-ringlog-siblings")) };
}

/** A key's live values: [] when absent, one for 200, every sibling for 300. Retries only network errors. */
async function read(url: string, key: string): Promise<{ status: number; values: string[]; context: string | null }> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    let res: Response;
    try {
      res = await fetch(`${url}/kv/${key}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } catch (err) {
      lastErr = err;
      await Bun.sleep(50);
      continue;
    }
    if (res.status === 200) return { status: 200, values: [await res.text()], context: res.headers.get(CONTEXT) };
    if (res.status === 300) {
      const body = (await res.json()) as { siblings: { value: string }[]; context: string };
      expect(typeof body.context).toBe("string");
      return { status: 300, values: body.siblings.map((s) => Buffer.from(s.value, "base64").toString("utf8")), context: body.context };
    }
    const text = await res.text();
    if (res.status === 404) return { status: 404, values: [], context: res.headers.get(CONTEXT) };
    throw new Error(`GET ${key}: ${res.status} ${text}`);
  }
  throw new Error(`GET ${key}: ${(lastErr as Error)?.message}`);
}

/** Runs fn over items with a fixed number of concurrent workers. */
async function pool<T>(items: readonly T[], workers: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

interface Load {
  /** Writes whose request was sent and whose answer had not arrived when the kill was sent. */
  inflightAtKill: number;
  elapsedMs: number;
}

/**
 * Runs `writers` loops of `step` against the node and SIGKILLs it after delayMs. A loop stops
 * once the kill is sent, at a hard deadline, or after maxPerWriter steps.
 */
async function loadThenKill(node: NodeProcess, writers: number, delayMs: number, maxPerWriter: number, step: (writer: number, i: number) => Promise<void>): Promise<Load> {
  let stopped = false;
  let inflight = 0;
  const hardDeadline = performance.now() + delayMs + 5_000;
  const t0 = performance.now();
  const loops = Array.from({ length: writers }, async (_, w) => {
    for (let i = 0; i < maxPerWriter && !stopped && performance.now() < hardDeadline; i++) {
      inflight++;
      try {
        await step(w, i);
      } finally {
        inflight--;
      }
    }
  });
  await Bun.sleep(delayMs);
  const inflightAtKill = inflight;
  const killed = node.kill("SIGKILL");
  stopped = true;
  await killed;
  await Promise.all(loops);
  expect(node.proc.signalCode).toBe("SIGKILL");
  return { inflightAtKill, elapsedMs: performance.now() - t0 };
}

test("every write acknowledged before a kill -9 reads back with its value after restart, over repeated kill cycles", async () => {
  const MIN_CYCLES = 5;
  const MAX_CYCLES = 10;
  const MIN_ACKED = 2_000;
  /** Extra cycles (up to MAX_CYCLES) run on a slow machine until this many writes are acknowledged. */
  const COMFORTABLE = 4_000;
  const WRITERS = 32;

  const rand = seeded(SEED);
  const run = Date.now().toString(36);
  const node = await NodeProcess.start();
  started.push(node);

  const acked = new Map<string, string>();
  const unknown = new Map<string, string>();
  const refused: string[] = [];
  const cycles: { delayMs: number; acked: number; inflightAtKill: number; unknown: number }[] = [];
  /** Log entries start-ups folded into the projection a kill left behind the log. */
  let caughtUp = 0;
  const restart = async () => {
    await node.restart();
    caughtUp += ((await (await fetch(`${node.url}/debug/counters`)).json()) as { catchUpEntries: number }).catchUpEntries;
  };

  for (let cycle = 0; cycle < MAX_CYCLES && (cycle < MIN_CYCLES || acked.size < COMFORTABLE); cycle++) {
    if (cycle > 0) await restart();
    const delayMs = killDelay(rand);
    const filler = Math.floor(rand() * 400);
    const ackedBefore = acked.size;
    const unknownBefore = unknown.size;
    const load = await loadThenKill(node, WRITERS, delayMs, 20_000, async (w, i) => {
      const key = `d/${run}/${cycle}-${w}-${i}`;
      // Unique, and of varying length (so commits span pages), deterministic per key.
      const value = `${key}#${SEED}:${FILL.slice(0, (i * 37 + w * 11 + filler) % FILL.length)}`;
      const r = await put(node.url, key, value);
      if (r.outcome === "acked") acked.set(key, value);
      else if (r.outcome === "unknown") unknown.set(key, value);
      else refused.push(`${key}: ${r.outcome.status} ${r.outcome.body}`);
    });
    cycles.push({ delayMs, acked: acked.size - ackedBefore, inflightAtKill: load.inflightAtKill, unknown: unknown.size - unknownBefore });
  }
  console.log(`durability seed=${SEED} cycles=${JSON.stringify(cycles)} acked=${acked.size} unknown=${unknown.size}`);

  // A lone node is never short of a quorum: every write that got an answer got 204.
  expect(refused).toEqual([]);
  expect(cycles.length).toBeGreaterThanOrEqual(4);
  expect(acked.size).toBeGreaterThanOrEqual(MIN_ACKED);
  for (const c of cycles) {
    expect(c.acked).toBeGreaterThan(0);
    // The kill came mid-load: writes were outstanding when it was sent (some of their
    // answers may already have been on the wire, and then count as acknowledged).
    expect(c.inflightAtKill).toBeGreaterThan(0);
  }
  // And the kills did cut writes off.
  expect(unknown.size).toBeGreaterThan(0);

  await restart();
  // The kills left acknowledged states unwritten to the projection, and start-up folded them from the log.
  expect(caughtUp).toBeGreaterThan(0);
  const lost: string[] = [];
  await pool([...acked], 32, async ([key, value]) => {
    const r = await read(node.url, key);
    if (r.status !== 200 || r.values.length !== 1 || r.values[0] !== value) {
      lost.push(`${key}: ${r.status} ${JSON.stringify(r.values.map((v) => v.slice(0, 60)))}`);
    }
  });
  expect(lost.slice(0, 20)).toEqual([]);
  expect(lost.length).toBe(0);

  // A write whose fate is unknown is either absent or intact, never anything else.
  let unknownCommitted = 0;
  const corrupt: string[] = [];
  await pool([...unknown], 32, async ([key, value]) => {
    const r = await read(node.url, key);
    if (r.status === 404) return;
    if (r.status === 200 && r.values[0] === value) unknownCommitted++;
    else corrupt.push(`${key}: ${r.status} ${JSON.stringify(r.values.map((v) => v.slice(0, 60)))}`);
  });
  expect(corrupt).toEqual([]);
  console.log(`durability: ${acked.size} acknowledged writes read back; ${unknownCommitted}/${unknown.size} in-flight writes had committed; start-ups folded ${caughtUp} log entries into the projection`);
  await node.destroy();
}, 60_000);

/** Everything one key's writer sent, in order; a write's basis is the acknowledged write whose context it carried. */
interface KeyHistory {
  key: string;
  writes: { value: string; basis: number; outcome: "acked" | "unknown" }[];
  seqOf: Map<string, number>;
  lastAck: number;
  context: string | undefined;
}

/**
 * Which sibling sets a read may return, given a sequential writer that always sends the
 * context of its last acknowledged write. That context covers exactly the writes committed
 * up to that acknowledgement (each write commits, if at all, before the next is sent), so
 * write j survives iff it committed and no committed write carries a basis at or after j.
 * With L the newest write that committed, the live set is the committed writes after
 * basis(L): L is at least the last acknowledged write, every acknowledged write in
 * (basis(L), L] is present, nothing at or before basis(L) is, and nothing unwritten is.
 */
function explain(h: KeyHistory, values: string[]): string[] {
  const problems: string[] = [];
  const seqs: number[] = [];
  for (const v of values) {
    const s = h.seqOf.get(v);
    if (s === undefined) problems.push(`${h.key}: value never written: ${JSON.stringify(v.slice(0, 80))}`);
    else seqs.push(s);
  }
  if (new Set(seqs).size !== seqs.length) problems.push(`${h.key}: a sibling appears twice`);
  if (problems.length > 0) return problems;
  if (seqs.length === 0) return h.lastAck >= 0 ? [`${h.key}: absent, but write #${h.lastAck} was acknowledged`] : [];
  const newest = Math.max(...seqs);
  if (newest < h.lastAck) return [`${h.key}: newest live write is #${newest}, older than acknowledged #${h.lastAck}`];
  const basis = h.writes[newest]!.basis;
  for (const s of seqs) if (s <= basis) problems.push(`${h.key}: #${s} is live although #${newest} carried the context of #${basis}`);
  for (let j = basis + 1; j <= newest; j++) {
    if (h.writes[j]!.outcome === "acked" && !seqs.includes(j)) problems.push(`${h.key}: acknowledged #${j} is missing (live: ${seqs.join(",")})`);
  }
  return problems;
}

test("overwrites carrying the previous acknowledged write's context survive kill -9 with exactly the right versions", async () => {
  const KEYS = 16;
  const CYCLES = 6;
  /** Share of writes whose 204 the writer disregards, as a client that timed out would: they stay unknown. */
  const IGNORED = 1 / 40;
  const rand = seeded(SEED ^ 0x9e3779b9);
  const run = Date.now().toString(36);
  const node = await NodeProcess.start();
  started.push(node);

  const histories: KeyHistory[] = Array.from({ length: KEYS }, (_, k) => ({ key: `o/${run}/${k}`, writes: [], seqOf: new Map(), lastAck: -1, context: undefined }));
  const refused: string[] = [];
  const problems: string[] = [];
  const stats = { restartReads300: 0, inflightCommitted: 0, siblingWrites: 0, ignored: 0 };

  /** Sends one write for the key on its last acknowledged context and records it. */
  const write = async (h: KeyHistory, value: string, ignoreAnswer = false) => {
    const seq = h.writes.length;
    h.writes.push({ value, basis: h.lastAck, outcome: "unknown" });
    h.seqOf.set(value, seq);
    const r = await put(node.url, h.key, value, h.context);
    if (r.outcome === "acked") {
      if (ignoreAnswer) return;
      h.writes[seq]!.outcome = "acked";
      h.lastAck = seq;
      h.context = r.context;
      if (r.siblings! > 1) stats.siblingWrites++;
    } else if (r.outcome !== "unknown") {
      refused.push(`${h.key}: ${r.outcome.status} ${r.outcome.body}`);
    }
    return r;
  };

  /** Reads every key and checks its live versions against its history. */
  const checkAll = async () => {
    const live = new Map<string, string[]>();
    await pool(histories, 8, async (h) => {
      const r = await read(node.url, h.key);
      if (r.status === 300) stats.restartReads300++;
      problems.push(...explain(h, r.values));
      live.set(h.key, r.values);
    });
    return live;
  };

  for (let cycle = 0; cycle < CYCLES; cycle++) {
    if (cycle > 0) {
      await node.restart();
      const live = await checkAll();
      for (const h of histories) {
        const last = h.writes.at(-1);
        if (last?.outcome === "unknown" && live.get(h.key)!.includes(last.value)) stats.inflightCommitted++;
      }
    }
    const delayMs = killDelay(rand);
    // One sequential writer per key: each PUT sends the context of that key's last acknowledged write.
    const load = await loadThenKill(node, KEYS, delayMs, 20_000, async (k, i) => {
      const ignore = rand() < IGNORED;
      if (ignore) stats.ignored++;
      await write(histories[k]!, `${histories[k]!.key}@${cycle}.${i}#${SEED}`, ignore);
    });
    expect(load.inflightAtKill).toBeGreaterThan(0);
  }

  await node.restart();
  await checkAll();
  // Every other key gets one more write whose answer is disregarded, so it is certainly
  // committed but unacknowledged; then one more kill -9 (no load) and restart.
  await pool(
    histories.filter((_, k) => k % 2 === 0),
    8,
    async (h) => void (await write(h, `${h.key}@unanswered#${SEED}`, true)),
  );
  await node.kill("SIGKILL");
  await node.restart();
  const atRestart = await checkAll();
  expect(refused).toEqual([]);
  expect(problems).toEqual([]);

  // One more acknowledged write per key, on the last acknowledged context: it replaces that
  // write, and is concurrent with any later unacknowledged write that committed.
  let finalSiblings = 0;
  await pool(histories, 8, async (h) => {
    const prevAck = h.lastAck;
    const value = `${h.key}@final#${SEED}`;
    const w = await write(h, value);
    if (w?.outcome !== "acked") {
      problems.push(`${h.key}: final write not acknowledged: ${JSON.stringify(w?.outcome)}`);
      return;
    }
    const r = await read(node.url, h.key);
    problems.push(...explain(h, r.values));
    // The last acknowledged value is live, alone or beside the unacknowledged writes after
    // the previous acknowledgement that committed (as read right after the restart), and
    // nothing else.
    const unackedLive = atRestart.get(h.key)!.filter((v) => h.seqOf.get(v)! > prevAck);
    expect(r.values).toContain(value);
    expect(new Set(r.values)).toEqual(new Set([value, ...unackedLive]));
    expect(r.status).toBe(unackedLive.length > 0 ? 300 : 200);
    expect(w.siblings).toBe(r.values.length);
    if (r.values.length > 1) finalSiblings++;
  });
  expect(problems).toEqual([]);
  // The keys that got an unanswered write end with two siblings.
  expect(finalSiblings).toBeGreaterThanOrEqual(KEYS / 2);

  const acks = histories.reduce((n, h) => n + h.writes.filter((w) => w.outcome === "acked").length, 0);
  console.log(
    `overwrites seed=${SEED}: ${acks} acknowledged over ${CYCLES + 1} kills; ${JSON.stringify(stats)}; keys with siblings at the end: ${finalSiblings}/${KEYS}`,
  );
  for (const h of histories) expect(h.writes.filter((w) => w.outcome === "acked").length).toBeGreaterThanOrEqual(CYCLES);
  await node.destroy();
}, 60_000);
