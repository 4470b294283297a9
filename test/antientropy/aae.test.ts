/** Anti-entropy on real node processes: replicas that are never read still converge. */
import { describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { emptyContext } from "../../src/clock/context.ts";
import { encodeState } from "../../src/clock/fold.ts";
import { DEFAULTS } from "../../src/config/settings.ts";
import { openDatabase } from "../../src/log/database.ts";
import { loadIdentity } from "../../src/log/identity.ts";
import type { LogEntry } from "../../src/log/entry.ts";
import { LogStore } from "../../src/log/store.ts";
import { vnodeOf } from "../../src/ring/partition.ts";
import { TestCluster, eventually } from "../support/cluster.ts";
import { tempDir } from "../support/node-process.ts";

async function roundsAtLeast(c: TestCluster, target: number[]): Promise<void> {
  await eventually("anti-entropy rounds", async () => (await Promise.all(c.nodes.map((n) => c.aae(n)))).every((a, i) => a.rounds >= target[i]!), 120_000);
}

describe("anti-entropy", () => {
  test("10,000 keys written while a node was cut off converge within two exchange rounds without any read; later rounds repair nothing", async () => {
    // Hints are held back so that only anti-entropy can bring the cut-off node up to date.
    const c = await TestCluster.start({ env: { RINGLOG_HINT_INTERVAL_MS: "600000", RINGLOG_AAE_INTERVAL_MS: "20" } });
    try {
      await c.partition("n3", "n1");
      await c.partition("n3", "n2");
      const n1 = c.node("n1");
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < 10_000) {
            const i = next++;
            const r = await fetch(`${n1.url}/kv/aae/${i}?w=1`, { method: "PUT", body: `v${i}` });
            if (r.status !== 204) throw new Error(`write ${i}: ${r.status}`);
          }
        }),
      );
      expect(await c.rootsAgree()).toBe(false);
      await c.heal();
      await c.waitAllUp();

      const start = (await Promise.all(c.nodes.map((n) => c.aae(n)))).map((a) => a.rounds);
      await roundsAtLeast(c, start.map((r) => r + 2));
      expect(await c.rootsAgree()).toBe(true);
      const repaired = (await c.aae(n1)).keysRepaired + (await c.aae(c.node("n2"))).keysRepaired;
      expect(repaired).toBeGreaterThanOrEqual(10_000);
      expect(await c.hintTotal(n1)).toBeGreaterThan(0);

      const settled = (await Promise.all(c.nodes.map((n) => c.aae(n)))).map((a) => a.rounds);
      await roundsAtLeast(c, settled.map((r) => r + 1));
      const again = (await c.aae(n1)).keysRepaired + (await c.aae(c.node("n2"))).keysRepaired;
      expect(again).toBe(repaired);
    } finally {
      await c.destroy();
    }
  }, 180_000);

  test("100,000 keys of which 100 differ: the exchange sends at most 2% of the data set's bytes", async () => {
    const keys = 100_000;
    const dirs = ["n1", "n2", "n3"].map(() => tempDir("ringlog-aae-"));
    let dataBytes = 0;
    // Each node's data is laid down directly in its own database, as a real write would
    // leave it; n3 then misses the last 100 keys.
    for (const [i, id] of ["n1", "n2", "n3"].entries()) {
      const db = openDatabase(dirs[i]!, { fsync: "off", walCheckpointPages: DEFAULTS.walCheckpointPages, mmapBytes: DEFAULTS.mmapBytes });
      loadIdentity(db, id, 64, Math.random);
      const store = new LogStore(db, { groupCommitMaxBatch: 100_000, snapshotEvery: 1_000_000, snapshotTailRatio: 1_000, projectionFlushKeys: DEFAULTS.projectionFlushKeys, projectionFlushMs: DEFAULTS.projectionFlushMs, busyWaitMs: DEFAULTS.storageBusyWaitMs, now: Date.now });
      const byVnode = new Map<number, LogEntry[]>();
      for (let k = 0; k < (id === "n3" ? keys - 100 : keys); k++) {
        const key = `bulk/${k}`;
        const ctx = emptyContext();
        ctx.vv.set("loader.1", 1);
        const state = { siblings: [{ dot: { actor: "loader.1", counter: 1 }, value: new TextEncoder().encode(`value-${k}`.padEnd(100, ".")), contentType: "text/plain", ts: 1 }], ctx };
        if (id === "n1") dataBytes += key.length + encodeState(state).byteLength;
        const v = vnodeOf(key, 64);
        byVnode.set(v, [...(byVnode.get(v) ?? []), { kind: "state", key, state }]);
      }
      await Promise.all([...byVnode].map(([v, entries]) => store.applyEntries(v, entries)));
      await store.close();
    }

    const c = await TestCluster.start({ dataDirs: dirs, env: { RINGLOG_AAE_INTERVAL_MS: "5" } });
    try {
      expect(await c.rootsAgree()).toBe(false);
      await eventually("roots to agree", () => c.rootsAgree(), 120_000);
      const stats = await Promise.all(c.nodes.map((n) => c.aae(n)));
      const wire = stats.reduce((sum, a) => sum + a.bytesSent + a.bytesReceived, 0);
      const repaired = stats.reduce((sum, a) => sum + a.keysRepaired, 0);
      console.log(`AAE: ${repaired} keys repaired with ${wire} bytes on the wire; data set ${dataBytes} bytes (${((100 * wire) / dataBytes).toFixed(3)}%)`);
      expect(repaired).toBeGreaterThanOrEqual(100);
      expect(wire).toBeLessThanOrEqual(0.02 * dataBytes);
    } finally {
      await c.destroy();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  }, 240_000);
});
