/**
 * One process per data folder: a second node on a folder in use refuses to start before it
 * touches the database, and the lock goes with its holder, even when that is kill -9.
 */
import { afterAll, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DataDirInUseError, lockDataDir } from "../../src/log/lock.ts";
import { NodeProcess, tempDir } from "../support/node-process.ts";

const dirs: string[] = [];
const nodes: NodeProcess[] = [];
afterAll(async () => {
  for (const n of nodes) if (n.running) await n.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const holder = { nodeId: "n1", pid: process.pid, now: 0 };

test("a folder locked by one connection cannot be locked by another in the same process until released", () => {
  const dir = tempDir();
  dirs.push(dir);
  const first = lockDataDir(dir, holder);
  expect(() => lockDataDir(dir, holder)).toThrow(DataDirInUseError);
  expect(() => lockDataDir(dir, holder)).toThrow(`data folder ${dir} is in use by another Ringlog process`);
  first.release();
  first.release();
  lockDataDir(dir, holder).release();
});

async function put(url: string, key: string, value: string): Promise<number> {
  return (await fetch(`${url}/kv/${key}`, { method: "PUT", body: value, headers: { "content-type": "text/plain" } })).status;
}

async function get(url: string, key: string): Promise<string> {
  const res = await fetch(`${url}/kv/${key}`);
  expect(res.status).toBe(200);
  return res.text();
}

test("a second node process on a folder in use exits with a clear error; the first keeps serving; after kill -9 the folder is free", async () => {
  const dir = tempDir();
  dirs.push(dir);
  const first = await NodeProcess.start({ dataDir: dir });
  nodes.push(first);
  expect(await put(first.url, "before", "one")).toBe(204);

  const second = await NodeProcess.start({ dataDir: dir, waitReady: false });
  nodes.push(second);
  expect(await second.proc.exited).toBe(1);
  expect(readFileSync(join(dir, "node.log"), "utf8")).toContain(`data folder ${dir} is in use by another Ringlog process`);

  expect(first.running).toBe(true);
  expect(await put(first.url, "after", "two")).toBe(204);
  expect(await get(first.url, "before")).toBe("one");

  await first.kill("SIGKILL");
  const third = await NodeProcess.start({ dataDir: dir });
  nodes.push(third);
  expect(await get(third.url, "before")).toBe("one");
  expect(await get(third.url, "after")).toBe("two");
}, 60_000);
