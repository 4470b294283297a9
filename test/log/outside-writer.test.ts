/**
 * A real node while another process's connection holds its database's write lock: reads and
 * health checks go on being answered, and a write waits for the lock instead of stalling the
 * node.
 */
import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { NodeProcess } from "../support/node-process.ts";

let node: NodeProcess | undefined;
afterAll(async () => {
  await node?.destroy();
});

const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const started = performance.now();
  const out = await f();
  return [out, performance.now() - started];
};

test("with the write lock held from outside for 2 s, reads answer at once and a write commits when the lock is gone", async () => {
  node = await NodeProcess.start();
  const url = node.url;
  expect((await fetch(`${url}/kv/before`, { method: "PUT", body: "one" })).status).toBe(204);

  const other = new Database(join(node.dataDir, "ringlog.db"));
  other.exec("PRAGMA busy_timeout = 5000");
  other.exec("BEGIN IMMEDIATE");
  const lockedAt = performance.now();
  const write = timed(() => fetch(`${url}/kv/during`, { method: "PUT", body: "two" }));
  await Bun.sleep(200);
  for (let i = 0; i < 5; i++) {
    const [res, ms] = await timed(() => fetch(`${url}/kv/before`));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("one");
    expect(ms).toBeLessThan(500);
    const [ready, readyMs] = await timed(() => fetch(`${url}/readyz`));
    expect(ready.status).toBe(200);
    expect(readyMs).toBeLessThan(500);
    await Bun.sleep(200);
  }
  await Bun.sleep(Math.max(0, 2_000 - (performance.now() - lockedAt)));
  other.exec("COMMIT");
  other.close();
  const [res, ms] = await write;
  expect(res.status).toBe(204);
  expect(ms).toBeGreaterThanOrEqual(1_500);
  expect(await (await fetch(`${url}/kv/during`)).text()).toBe("two");
}, 30_000);
