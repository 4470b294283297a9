/**
 * The typed SDK against a running 3-node cluster: get, put and delete, and `update`
 * resolving a real sibling conflict made by writing one key on both sides of a partition.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { RinglogApiError, RinglogClient } from "../src/sdk/index.ts";
import { TestCluster, eventually } from "./support/cluster.ts";

let cluster: TestCluster;
const client = (id: string) => new RinglogClient(cluster.node(id).url);
const text = (v: Uint8Array) => new TextDecoder().decode(v);

beforeAll(async () => {
  cluster = await TestCluster.start();
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
});

test("get, put and delete through different nodes", async () => {
  const written = await client("n1").put("sdk/plain", "hello", { contentType: "text/plain" });
  expect(written.context).not.toBe("");
  const read = await client("n2").get("sdk/plain");
  expect(read.siblings.map((s) => text(s.value))).toEqual(["hello"]);
  expect(read.siblings[0]!.contentType).toBe("text/plain");
  await client("n3").delete("sdk/plain", { context: read.context! });
  expect((await client("n1").get("sdk/plain")).siblings).toEqual([]);
  const bad = await client("n1").put("", "x").catch((e: unknown) => e);
  expect(bad).toBeInstanceOf(RinglogApiError);
  expect((bad as RinglogApiError).status).toBe(400);
  expect((bad as RinglogApiError).code).toBe("invalid_key");
});

test("update resolves siblings written on both sides of a partition into one merged value", async () => {
  const key = "sdk/cart";
  await client("n1").put(key, JSON.stringify(["milk"]), { contentType: "application/json" });
  await eventually("the first version on every replica", async () => {
    const states = await Promise.all(cluster.nodes.map((n) => cluster.replica(n, key)));
    return states.every((s) => s.siblings.length === 1);
  });

  // n1 is cut off from the others; each side takes a write of the cart the other does not see.
  const base = await client("n1").get(key);
  await cluster.partition("n1", "n2");
  await cluster.partition("n1", "n3");
  await client("n1").put(key, JSON.stringify(["milk", "eggs"]), { contentType: "application/json", context: base.context!, w: 1 });
  await client("n2").put(key, JSON.stringify(["milk", "bread"]), { contentType: "application/json", context: base.context!, w: 1 });
  await cluster.heal();
  await cluster.waitAllUp();

  // Hints and read repair bring both versions to every replica.
  await eventually("both sides' versions on every replica", async () => {
    const states = await Promise.all(cluster.nodes.map((n) => cluster.replica(n, key)));
    return states.every((s) => s.siblings.length === 2);
  });
  const conflicted = await client("n3").get(key);
  expect(conflicted.siblings.map((s) => JSON.parse(text(s.value))).sort()).toEqual([["milk", "bread"], ["milk", "eggs"]]);

  let merged: string[] = [];
  const result = await client("n3").update(
    key,
    (siblings) => {
      merged = [...new Set(siblings.flatMap((s) => JSON.parse(text(s.value)) as string[]))].sort();
      return JSON.stringify(merged);
    },
    { r: "all" },
  );
  expect(result.siblings).toBe(1);
  expect(merged).toEqual(["bread", "eggs", "milk"]);
  for (const id of ["n1", "n2", "n3"]) {
    const r = await client(id).get(key);
    expect(r.siblings.map((s) => JSON.parse(text(s.value)))).toEqual([["bread", "eggs", "milk"]]);
    expect(r.siblings[0]!.contentType).toBe("application/json");
  }
}, 60_000);
