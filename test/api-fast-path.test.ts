/**
 * The data path in front of fastify (src/api/fast-path.ts) must answer exactly as fastify
 * does. Two real nodes, one with the fast path and one without, get the same generated
 * requests in the same order (plain and odd keys, queries, content types, bodies over the
 * limit, contexts, tokens, methods, internal calls) and must give the same answers: status,
 * headers and body. What differs by nature is left out: each node's actor (inside contexts
 * and stored states) and write timestamps.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import fc from "fast-check";
import { pack } from "msgpackr";
import { NodeProcess } from "./support/node-process.ts";

const TOKEN = "fast-path-token";
const SECRET = "fast-path-cluster-secret";
const env = {
  RINGLOG_API_TOKEN: TOKEN,
  RINGLOG_CLUSTER_SECRET: SECRET,
  RINGLOG_MAX_BODY_BYTES: "2048",
  RINGLOG_MAX_VALUE_BYTES: "1024",
  RINGLOG_MAX_KEY_BYTES: "24",
  RINGLOG_MAX_SIBLINGS: "4",
  RINGLOG_RESOLVERS: "lww/=lww",
};

let fast: NodeProcess;
let slow: NodeProcess;
beforeAll(async () => {
  [fast, slow] = await Promise.all([NodeProcess.start({ env }), NodeProcess.start({ env: { ...env, RINGLOG_HTTP_FAST_PATH: "false" } })]);
});
afterAll(async () => {
  await Promise.all([fast?.destroy(), slow?.destroy()]);
});

interface Req {
  method: string;
  path: string;
  query: string;
  contentType: string | undefined;
  body: "none" | "small" | "empty" | "over";
  context: "none" | "own" | "garbage";
  auth: "none" | "good" | "bad";
}

const keys = ["a", "b/c", "lww/x", "x~y", "a%2Fb", "%zz", "%E2%9C%93", "", "k".repeat(30), "a;b", "a//b", "a+b", "q(1)"];
/** Anything: most of these are fastify's to answer, some the fast path's. */
const anyRequest: fc.Arbitrary<Req> = fc.record({
  method: fc.constantFrom("GET", "PUT", "PUT", "DELETE", "HEAD", "POST", "PATCH"),
  path: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...keys).map((k) => `/kv/${k}`) }, fc.constantFrom("/kv", "/kv/", "/internal/read", "/internal/apply", "/healthz")),
  query: fc.constantFrom("", "", "", "?w=1", "?w=quorum", "?r=all", "?w=bogus", "?pw=3", "?"),
  contentType: fc.constantFrom(undefined, "application/octet-stream", "text/plain", "text/plain; charset=utf-8", "garbage", "application/json"),
  body: fc.constantFrom("none", "small", "small", "empty", "over"),
  context: fc.constantFrom("none", "none", "own", "garbage"),
  auth: fc.constantFrom("good", "good", "good", "none", "bad"),
});
/** The requests a client mostly sends, which the fast path takes (reads, writes with and without contexts, deletes, the odd wrong token). */
const plainRequest: fc.Arbitrary<Req> = fc.record({
  method: fc.constantFrom("GET", "GET", "PUT", "PUT", "PUT", "DELETE"),
  path: fc.constantFrom("a", "b/c", "lww/x", "x~y", "q(1)", "a+b").map((k) => `/kv/${k}`),
  query: fc.constant(""),
  contentType: fc.constantFrom("application/octet-stream", "text/plain", "application/json"),
  body: fc.constant("small"),
  context: fc.constantFrom("none", "own", "own", "garbage"),
  auth: fc.constantFrom("good", "good", "good", "good", "bad"),
});
const request = fc.oneof(plainRequest, anyRequest);

/** The last context each node answered per path: a write "with its context" sends that node's own. */
const contexts = new Map<NodeProcess, Map<string, string>>();

async function send(node: NodeProcess, r: Req, i: number): Promise<{ status: number; headers: Record<string, string>; body: unknown }> {
  const headers: Record<string, string> = {};
  if (r.contentType !== undefined) headers["content-type"] = r.contentType;
  if (r.auth !== "none") headers.authorization = `Bearer ${r.auth === "good" ? TOKEN : "nope"}`;
  if (r.path.startsWith("/internal/")) headers["x-ringlog-secret"] = r.auth === "bad" ? "wrong" : SECRET;
  const own = contexts.get(node)?.get(r.path);
  if (r.context === "garbage") headers["x-ringlog-context"] = "not-a-context!";
  if (r.context === "own" && own) headers["x-ringlog-context"] = own;
  let body: Uint8Array | undefined;
  if (r.path === "/internal/read" && r.body !== "none") body = r.body === "small" ? pack([[0, "a"]]) : new Uint8Array([0xc1]);
  else if (r.body === "small") body = new TextEncoder().encode(`value-${i % 5}`);
  else if (r.body === "empty") body = new Uint8Array(0);
  else if (r.body === "over") body = new Uint8Array(3000).fill(7);
  const canHaveBody = !["GET", "HEAD"].includes(r.method);
  const res = await fetch(node.url + r.path + r.query, { method: r.method, headers, ...(body && canHaveBody ? { body } : {}) });
  const out: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (k !== "date" && k !== "keep-alive" && k !== "connection") out[k] = v;
  });
  const ctx = out["x-ringlog-context"];
  if (ctx !== undefined) {
    if (!contexts.has(node)) contexts.set(node, new Map());
    contexts.get(node)!.set(r.path, ctx);
    out["x-ringlog-context"] = "(present)";
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  let parsed: unknown = Buffer.from(bytes).toString("base64");
  // A 200 carries the raw value, whatever its content type says; other JSON answers are sibling lists and errors.
  if (res.status !== 200 && (out["content-type"] ?? "").includes("json") && bytes.byteLength > 0) {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
    const siblings = (parsed as { siblings?: { timestamp?: number }[]; context?: string }).siblings;
    if (siblings) {
      for (const s of siblings) delete s.timestamp;
      delete (parsed as { context?: string }).context;
    }
    // A sibling list's length differs with its (actor-bearing) context.
    delete out["content-length"];
  }
  // Stored states name the node's own actor.
  if (r.path === "/internal/read" && res.status === 200) {
    parsed = "(state)";
    delete out["content-length"];
  }
  return { status: res.status, headers: out, body: parsed };
}

const counter = async (node: NodeProcess) => ((await (await fetch(`${node.url}/debug/counters`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { fastPathRequests: number }).fastPathRequests;

test("generated requests get the same answers with and without the fast path", async () => {
  let i = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 30 }), async (reqs) => {
      for (const r of reqs) {
        i++;
        const [a, b] = [await send(fast, r, i), await send(slow, r, i)];
        expect({ request: r, ...a }).toEqual({ request: r, ...b });
      }
    }),
    { numRuns: 60, seed: 20261202 },
  );
  // The comparison is between the two paths only if the fast one really answered most of them.
  expect(await counter(fast)).toBeGreaterThan(i / 3);
  expect(await counter(slow)).toBe(0);
}, 120_000);

test("a plain write and read take the fast path; an encoded key and a query go through fastify", async () => {
  const auth = { authorization: `Bearer ${TOKEN}` };
  const before = await counter(fast);
  expect((await fetch(`${fast.url}/kv/plain`, { method: "PUT", headers: { ...auth, "content-type": "text/plain" }, body: "v" })).status).toBe(204);
  expect(await (await fetch(`${fast.url}/kv/plain`, { headers: auth })).text()).toBe("v");
  expect(await counter(fast)).toBe(before + 2);
  expect((await fetch(`${fast.url}/kv/pl%61in?r=1`, { headers: auth })).status).toBe(200);
  expect((await fetch(`${fast.url}/kv/plain`, { headers: auth, method: "HEAD" })).status).toBe(200);
  expect(await counter(fast)).toBe(before + 2);
});
