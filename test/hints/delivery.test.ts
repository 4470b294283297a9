/**
 * Hint delivery's pass runs from a timer: a pass that fails before it reaches a peer (its
 * queues unreadable) is logged and the next pass runs, instead of ending the process.
 */
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import type { Logger } from "pino";
import { DEFAULTS } from "../../src/config/settings.ts";
import { HintDelivery } from "../../src/hints/delivery.ts";
import { HintStore } from "../../src/hints/hints.ts";
import { openDatabase } from "../../src/log/database.ts";
import type { Membership } from "../../src/membership/membership.ts";
import { tempDir } from "../support/node-process.ts";

const dir = tempDir("ringlog-delivery-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a pass whose queues cannot be read is logged, and the passes go on", async () => {
  const db = openDatabase(dir, { fsync: DEFAULTS.fsync, walCheckpointPages: DEFAULTS.walCheckpointPages, mmapBytes: DEFAULTS.mmapBytes });
  const warnings: string[] = [];
  const logger = { warn: (_: unknown, msg: string) => warnings.push(msg), debug: () => {}, info: () => {} } as unknown as Logger;
  const membership = { ring: { epoch: 1, owners: [] }, isUp: () => true, self: { id: "n1", url: "" } } as unknown as Membership;
  const delivery = new HintDelivery({ hints: new HintStore(db, Date.now), membership, ship: async () => {}, primariesOf: () => [], intervalMs: 5, ratePerSec: 100, logger });
  // A closed database: every read of the queues throws.
  db.close();
  delivery.start();
  const deadline = Date.now() + 5_000;
  while (warnings.length < 3 && Date.now() < deadline) await Bun.sleep(10);
  delivery.stop();
  expect(warnings.length).toBeGreaterThanOrEqual(3);
  expect(warnings[0]).toBe("hint delivery pass failed; the next one retries");
});
