/**
 * Bad input against one real node process: every case gets the 4xx openapi.yaml documents,
 * with the one Error body, and the node keeps serving. Also the happy paths the contract
 * promises (raw values, siblings, tombstones, encoded keys, HEAD, spec, docs, probes).
 *
 * The node runs with RINGLOG_MAX_SIBLINGS=3 so the sibling limit is cheap to reach, and with
 * RINGLOG_CLUSTER_SECRET set so the internal routes' guard can be checked; every other case
 * uses its own fresh key, so they do not interact.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { pack } from "msgpackr";
import { NodeProcess } from "./support/node-process.ts";
import { expectError, expectServing, errorShapeProblem } from "./support/api-checks.ts";

const MiB = 1024 * 1024;
const CTX = "x-ringlog-context";

/** Set so the internal routes are reachable at all; a lone node with a secret is still a cluster of one. */
const SECRET = "bad-input-cluster-secret-0123456789";

let node: NodeProcess;
let base: string;

beforeAll(async () => {
  node = await NodeProcess.start({ env: { RINGLOG_MAX_SIBLINGS: "3", RINGLOG_CLUSTER_SECRET: SECRET } });
  base = node.url;
});

afterAll(async () => {
  await node?.destroy();
});

// Whatever a case sent, a normal write and read still work afterwards.
afterEach(async () => {
  await expectServing(base);
});

let serial = 0;
/** A key no other case uses. */
const fresh = (prefix: string) => `${prefix}-${++serial}`;
const kv = (encodedKey: string) => `${base}/kv/${encodedKey}`;

const put = (encodedKey: string, body: RequestInit["body"], headers: Record<string, string> = {}) =>
  fetch(kv(encodedKey), { method: "PUT", body, headers });

/** Builds a context header the way src/api/context-header.ts encodes one. */
const contextHeader = (wire: unknown) => Buffer.from(pack(wire)).toString("base64url");

/** A raw HTTP/1.1 exchange over a socket; resolves with the status and body once the server answers or closes. */
function rawRequest(head: string, chunks: Buffer[], timeoutMs = 10_000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let data = "";
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (!m) return reject(new Error(`no HTTP response: ${JSON.stringify(data.slice(0, 200))}`));
      resolve({ status: Number(m[1]), text: data });
    };
    const timer = setTimeout(finish, timeoutMs);
    const sock = connect(node.port, "127.0.0.1", () => {
      sock.write(head);
      // Write the chunks one by one, stopping early if the server has already answered.
      const writeNext = (i: number) => {
        if (done || i >= chunks.length) return;
        sock.write(chunks[i]!, () => writeNext(i + 1));
      };
      writeNext(0);
    });
    sock.on("data", (d) => {
      data += d.toString("latin1");
      // The server answered with a complete body (content-length known): done.
      const headEnd = data.indexOf("\r\n\r\n");
      const len = /\r\ncontent-length: (\d+)/i.exec(data);
      if (headEnd >= 0 && len && data.length >= headEnd + 4 + Number(len[1])) finish();
    });
    sock.on("close", finish);
    sock.on("error", () => finish());
  });
}

describe("keys", () => {
  test("a 1025-byte key gets 400 invalid_key; exactly 1024 bytes is fine", async () => {
    const ok = "k".repeat(1024);
    expect((await put(ok, "at the limit")).status).toBe(204);
    const got = await fetch(kv(ok));
    expect(got.status).toBe(200);
    expect(await got.text()).toBe("at the limit");

    const over = "k".repeat(1025);
    const body = await expectError(await put(over, "x"), 400, "invalid_key");
    expect(body.details).toMatchObject({ limit: 1024, size: 1025 });
    await expectError(await fetch(kv(over)), 400, "invalid_key");
    await expectError(await fetch(kv(over), { method: "DELETE" }), 400, "invalid_key");
    await expectServing(base);
  });

  test("the limit counts UTF-8 bytes of the decoded key, whatever the percent-encoding", async () => {
    // 2-, 3- and 4-byte characters, percent-encoded: 3 URL characters per byte.
    const atLimit = ["é".repeat(512), "€".repeat(341) + "a", "😀".repeat(256), "/".repeat(1024), "a/é€😀".repeat(92) + "a".repeat(12)];
    for (const key of atLimit) {
      expect(Buffer.byteLength(key)).toBe(1024);
      const enc = encodeURIComponent(key);
      const w = await put(enc, `value of ${key.slice(0, 4)}`);
      expect(w.status).toBe(204);
      const r = await fetch(kv(enc));
      expect(r.status).toBe(200);
      expect(await r.text()).toBe(`value of ${key.slice(0, 4)}`);
    }
    const overLimit = ["é".repeat(512) + "a", "€".repeat(342), "😀".repeat(256) + "a", "/".repeat(1025)];
    for (const key of overLimit) {
      expect(Buffer.byteLength(key)).toBeGreaterThan(1024);
      await expectError(await put(encodeURIComponent(key), "x"), 400, "invalid_key");
      await expectError(await fetch(kv(encodeURIComponent(key))), 400, "invalid_key");
    }
    await expectServing(base);
  });

  test("a much longer key (5000 characters) gets 400 invalid_key", async () => {
    const key = "L".repeat(5000);
    await expectError(await put(key, "x"), 400, "invalid_key");
    await expectError(await fetch(kv(key)), 400, "invalid_key");
    // HEAD has no body to check, only the status.
    expect((await fetch(kv(key), { method: "HEAD" })).status).toBe(400);
    await expectError(await fetch(kv(key), { method: "DELETE" }), 400, "invalid_key");
    await expectServing(base);
  });

  test("bad percent-encoding gets 400 invalid_key", async () => {
    for (const path of ["%E0%A4%A", "%zz", "%", "ok%", "a%2", "%FF", "%C3%28"]) {
      for (const method of ["GET", "PUT", "DELETE"]) {
        await expectError(await fetch(kv(path), { method, ...(method === "PUT" ? { body: "x" } : {}) }), 400, "invalid_key");
      }
      await expectServing(base);
    }
  });

  test("an empty key gets 400 invalid_key", async () => {
    for (const url of [`${base}/kv/`, `${base}/kv`, `${base}/kv/?r=1`, `${base}/kv?w=1`]) {
      for (const method of ["GET", "PUT", "DELETE"]) {
        await expectError(await fetch(url, { method, ...(method === "PUT" ? { body: "x" } : {}) }), 400, "invalid_key");
      }
    }
    await expectServing(base);
  });

  test("a key containing '/' round-trips, sent as %2F or as is", async () => {
    const key = fresh("dir/sub/file");
    expect((await put(encodeURIComponent(key), "slashed", { "content-type": "text/plain" })).status).toBe(204);
    expect(encodeURIComponent(key)).toContain("%2F");
    for (const path of [encodeURIComponent(key), key, encodeURIComponent(key).replace(/%2F/g, "%2f"), key.replace("/", "%2F")]) {
      const r = await fetch(kv(path));
      expect(r.status).toBe(200);
      expect(await r.text()).toBe("slashed");
    }
    // Other reserved characters percent-encoded are part of the key too, not the query.
    const odd = fresh("q?x#y z&r=1");
    expect((await put(encodeURIComponent(odd), "odd")).status).toBe(204);
    const r = await fetch(`${kv(encodeURIComponent(odd))}?r=1`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("odd");
    await expectServing(base);
  });
});

describe("sizes", () => {
  test("a value of 1 MiB + 1 gets 413 value_too_large; exactly 1 MiB is stored intact", async () => {
    const key = fresh("big");
    const value = new Uint8Array(MiB);
    for (let i = 0; i < value.length; i++) value[i] = (i * 31 + 7) & 0xff;
    expect((await put(key, value)).status).toBe(204);
    const r = await fetch(kv(key));
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/octet-stream");
    const back = new Uint8Array(await r.arrayBuffer());
    expect(back.length).toBe(MiB);
    expect(Bun.hash(back)).toBe(Bun.hash(value));

    const body = await expectError(await put(fresh("big"), new Uint8Array(MiB + 1)), 413, "value_too_large");
    expect(body.details).toMatchObject({ limit: MiB, size: MiB + 1 });
    // The refused write left the stored value alone.
    expect((await fetch(kv(key), { method: "HEAD" })).headers.get("x-ringlog-siblings")).toBe("1");
    await expectServing(base);
  });

  test("a 9 MiB body gets 413 body_too_large", async () => {
    const body = await expectError(await put(fresh("huge"), new Uint8Array(9 * MiB)), 413, "body_too_large");
    expect(body.details).toMatchObject({ limit: 8 * MiB });
    await expectServing(base);
  });

  test("a 9 MiB chunked body (a streamed fetch body, no content-length) gets 413 body_too_large", async () => {
    let sent = 0;
    const total = 9 * MiB;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= total) return c.close();
        c.enqueue(new Uint8Array(64 * 1024).fill(0x61));
        sent += 64 * 1024;
      },
    });
    // Bun's fetch sends a ReadableStream body with Transfer-Encoding: chunked.
    const key = fresh("stream");
    const res = await fetch(kv(key), { method: "PUT", body: stream, duplex: "half" } as RequestInit);
    await expectError(res, 413, "body_too_large");
    await expectError(await fetch(kv(key)), 404, "not_found");
    await expectServing(base);
  });

  test("a 9 MiB body with Transfer-Encoding: chunked over a raw socket gets 413 body_too_large", async () => {
    const key = fresh("rawchunk");
    const head = `PUT /kv/${key} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n`;
    const piece = 256 * 1024;
    const chunk = Buffer.concat([Buffer.from(`${piece.toString(16)}\r\n`), Buffer.alloc(piece, 0x62), Buffer.from("\r\n")]);
    const chunks = [...Array.from({ length: (9 * MiB) / piece }, () => chunk), Buffer.from("0\r\n\r\n")];
    const res = await rawRequest(head, chunks);
    expect(res.status).toBe(413);
    const bodyText = res.text.slice(res.text.indexOf("\r\n\r\n") + 4);
    const body = JSON.parse(bodyText) as unknown;
    expect(errorShapeProblem(body)).toBeNull();
    expect((body as { code: string }).code).toBe("body_too_large");
    await expectError(await fetch(kv(key)), 404, "not_found");
    await expectServing(base);
  });

  test("a small chunked body (streamed, no content-length) is stored", async () => {
    const key = fresh("smallstream");
    let i = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (i >= 3) return c.close();
        c.enqueue(new TextEncoder().encode(`part${i++};`));
      },
    });
    const w = await fetch(kv(key), { method: "PUT", body: stream, duplex: "half", headers: { "content-type": "text/plain" } } as RequestInit);
    expect(w.status).toBe(204);
    const r = await fetch(kv(key));
    expect(await r.text()).toBe("part0;part1;part2;");
  });

  test("a content type over 256 bytes gets 400 invalid_content_type; exactly 256 bytes is stored", async () => {
    const at = `text/plain; x=${"a".repeat(256 - "text/plain; x=".length)}`;
    expect(Buffer.byteLength(at)).toBe(256);
    const key = fresh("ct");
    expect((await put(key, "v", { "content-type": at })).status).toBe(204);
    const r = await fetch(kv(key));
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe(at);

    const over = `${at}b`;
    const body = await expectError(await put(fresh("ct"), "v", { "content-type": over }), 400, "invalid_content_type");
    expect(body.details).toMatchObject({ limit: 256 });
    await expectError(await put(fresh("ct"), "v", { "content-type": `application/json; p=${"z".repeat(2000)}` }), 400, "invalid_content_type");
    await expectServing(base);
  });
});

// KNOWN FAILURE (src bug): a content type that is not type/subtype gets 415
// unsupported_media_type from fastify's body parser, a status openapi.yaml does not list for
// PUT or DELETE on /kv/{key} (the body is */*; the only documented content-type error is
// 400 invalid_content_type).
test("a malformed content type gets a documented answer: stored as is, or 400 invalid_content_type", async () => {
  const got: string[] = [];
  for (const ct of ["foo", "a/b/c", "/", "x y"]) {
    for (const method of ["PUT", "DELETE"]) {
      const res = await fetch(kv(fresh("ct-odd")), { method, body: "v", headers: { "content-type": ct } });
      const text = await res.text();
      const code = res.status === 400 ? (JSON.parse(text) as { code: string }).code : "";
      if (!(res.status === 204 || (res.status === 400 && code === "invalid_content_type"))) got.push(`${method} ${JSON.stringify(ct)} → ${res.status} ${text}`);
    }
  }
  expect(got).toEqual([]);
  await expectServing(base);
});

describe("causal context header", () => {
  const bad = async (value: string) => {
    const res = await put(fresh("ctx"), "v", { [CTX]: value });
    return expectError(res, 400, "invalid_context");
  };

  test("a well-formed context is accepted (the baseline the bad ones are compared with)", async () => {
    expect((await put(fresh("ctx"), "v", { [CTX]: contextHeader([[], []]) })).status).toBe(204);
    expect((await put(fresh("ctx"), "v", { [CTX]: contextHeader([[["some-actor", 3]], [["other", [5, 9]]]]) })).status).toBe(204);
    // 255 client actors plus the coordinating node's own: 256, the limit. (A context naming
    // 256 actors passes the header check but its write is refused, since the key's clock
    // would then name 257.)
    const actors = Array.from({ length: 255 }, (_, i) => [`actor-${i}`, 1]);
    expect((await put(fresh("ctx"), "v", { [CTX]: contextHeader([actors, []]) })).status).toBe(204);
  });

  test("not base64url gets 400 invalid_context", async () => {
    for (const v of ["not base64!", "abc+/def", "abc=", "kpCQ.", "%41%41"]) await bad(v);
    await expectServing(base);
  });

  test("base64url of garbage gets 400 invalid_context", async () => {
    for (const raw of ["hello world garbage", "\x00\x01\x02", "\xc1", "\xdd\xff\xff\xff\xff"]) await bad(Buffer.from(raw, "latin1").toString("base64url"));
    await bad("A"); // not even whole bytes
    await expectServing(base);
  });

  test("valid msgpack of the wrong shape gets 400 invalid_context", async () => {
    const shapes: unknown[] = [
      [1, 2],
      [],
      [[], [], []],
      "a string",
      42,
      null,
      { vv: [], cloud: [] },
      [[["a", 0]], []],
      [[["a", -1]], []],
      [[["a", 1.5]], []],
      [[["a", 2 ** 60]], []],
      [[[1, 1]], []],
      [[["a"]], []],
      [[], [["a", 3]]],
      [[], [["a", ["x"]]]],
      [[], [["a", [0]]]],
    ];
    for (const s of shapes) await bad(contextHeader(s));
    await expectServing(base);
  });

  test("a context naming more than 256 actors gets 400 invalid_context", async () => {
    const actors = Array.from({ length: 257 }, (_, i) => [`actor-${i}`, 1] as [string, number]);
    const header = contextHeader([actors, []]);
    expect(header.length).toBeLessThan(16 * 1024); // it is the actor count that is over, not the size
    const body = await bad(header);
    expect(body.details).toMatchObject({ limit: 256 });
    // Counted across the vector and the dot cloud.
    await bad(contextHeader([actors.slice(0, 200), actors.slice(200).map(([a]) => [a, [7]])]));
    await expectServing(base);
  });

  test("the context header sent twice gets 400 invalid_context", async () => {
    const v = contextHeader([[], []]);
    const res = await fetch(kv(fresh("ctx")), { method: "PUT", body: "v", headers: [[CTX, v], [CTX, v]] });
    await expectError(res, 400, "invalid_context");
    await expectServing(base);
  });

  // KNOWN FAILURE (src bug): the node's HTTP server refuses request heads over ~16 KiB with
  // 431 and fastify's default body ({error, message, statusCode}) before the handler runs,
  // so the documented 400 invalid_context for a context over maxContextBytes is unreachable.
  test("a context header over 16 KiB gets 400 invalid_context", async () => {
    for (const len of [16 * 1024 + 1, 20_000]) {
      // keepalive: false, because the HTTP layer closes the connection after its 431 without
      // saying so, and a pooled connection would break the next request.
      const res = await fetch(kv(fresh("ctx")), { method: "PUT", body: "v", headers: { [CTX]: "A".repeat(len) }, keepalive: false });
      const body = await expectError(res, 400, "invalid_context");
      expect(body.details).toMatchObject({ limit: 16 * 1024 });
    }
    await expectServing(base);
  });
});

describe("routes and methods", () => {
  test("wrong methods get 405 method_not_allowed with an Allow header", async () => {
    const cases: [string, string, string[]][] = [
      ["POST", "/kv/x", ["GET", "PUT", "DELETE", "HEAD"]],
      ["PATCH", "/kv/x", ["GET", "PUT", "DELETE", "HEAD"]],
      ["OPTIONS", "/kv/x", ["GET", "PUT", "DELETE", "HEAD"]],
      ["POST", "/kv/a/b/c", ["GET", "PUT", "DELETE", "HEAD"]],
      ["PUT", "/healthz", ["GET", "HEAD"]],
      ["DELETE", "/healthz", ["GET", "HEAD"]],
      ["POST", "/readyz", ["GET", "HEAD"]],
      ["DELETE", "/openapi.json", ["GET", "HEAD"]],
    ];
    for (const [method, path, allow] of cases) {
      const res = await fetch(base + path, { method, ...(method === "GET" || method === "HEAD" ? {} : { body: "x" }) });
      const header = res.headers.get("allow");
      await expectError(res, 405, "method_not_allowed");
      expect(header).toBeTruthy();
      expect(new Set(header!.split(",").map((m) => m.trim()))).toEqual(new Set(allow));
    }
    await expectServing(base);
  });

  test("an unknown route gets 404 not_found", async () => {
    for (const [method, path] of [
      ["GET", "/nope"],
      ["POST", "/nope"],
      ["GET", "/healthz/extra"],
      ["GET", "/kvx/a"],
      ["GET", "/KV/a"],
      ["DELETE", "/"],
      ["GET", "/internal"],
    ] as const) {
      await expectError(await fetch(base + path, { method }), 404, "not_found");
    }
    await expectServing(base);
  });
});

describe("quorum parameters", () => {
  test("r=9 and w=abc get 400 invalid_request, as do other out-of-range r, w, pr, pw", async () => {
    const r9 = await expectError(await fetch(`${kv(fresh("q"))}?r=9`), 400, "invalid_request");
    expect(r9.details).toMatchObject({ r: "9", n: 1 });
    await expectError(await fetch(`${kv(fresh("q"))}?w=abc`, { method: "PUT", body: "x" }), 400, "invalid_request");
    const cases: [string, string][] = [
      ["GET", "r=abc"],
      ["GET", "r=-1"],
      ["GET", "r=0"],
      ["GET", "r=1.5"],
      ["GET", "r="],
      ["GET", "pr=9"],
      ["GET", "pr=x"],
      ["PUT", "w=9"],
      ["PUT", "w=0"],
      ["PUT", "w=ALL"],
      ["PUT", "pw=9"],
      ["PUT", "pw=quorumm"],
      ["DELETE", "w=abc"],
      ["DELETE", "w=9"],
      ["DELETE", "pw=-2"],
    ];
    for (const [method, q] of cases) {
      const key = fresh("q");
      await expectError(await fetch(`${kv(key)}?${q}`, { method, ...(method === "PUT" ? { body: "x" } : {}) }), 400, "invalid_request");
      // A refused write stored nothing.
      if (method === "PUT") expect((await fetch(kv(key))).status).toBe(404);
    }
    // In range on a cluster of one: 1, one, quorum, all.
    for (const v of ["1", "one", "quorum", "all"]) {
      const key = fresh("q");
      expect((await fetch(`${kv(key)}?w=${v}&pw=${v}`, { method: "PUT", body: v })).status).toBe(204);
      const r = await fetch(`${kv(key)}?r=${v}&pr=${v}`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe(v);
    }
    await expectServing(base);
  });
});

describe("siblings", () => {
  test("past maxSiblings (3) a blind write gets 409 too_many_siblings; a write with the read's context resolves to one version", async () => {
    const key = fresh("sib");
    for (let i = 1; i <= 3; i++) {
      const w = await put(key, `v${i}`, { "content-type": "text/plain" });
      expect(w.status).toBe(204);
      expect(w.headers.get("x-ringlog-siblings")).toBe(String(i));
    }
    const body = await expectError(await put(key, "v4"), 409, "too_many_siblings");
    expect(body.details).toMatchObject({ limit: 3 });

    const read = await fetch(kv(key));
    expect(read.status).toBe(300);
    const list = (await read.json()) as { siblings: { value: string }[]; context: string };
    expect(list.siblings.map((s) => Buffer.from(s.value, "base64").toString()).sort()).toEqual(["v1", "v2", "v3"]);

    const resolved = await put(key, "merged", { [CTX]: read.headers.get(CTX)!, "content-type": "text/plain" });
    expect(resolved.status).toBe(204);
    expect(resolved.headers.get("x-ringlog-siblings")).toBe("1");
    const after = await fetch(kv(key));
    expect(after.status).toBe(200);
    expect(after.headers.get("x-ringlog-siblings")).toBe("1");
    expect(await after.text()).toBe("merged");
    await expectServing(base);
  });
});

describe("happy paths the contract promises", () => {
  test("200 with the raw value and its stored content type", async () => {
    const key = fresh("raw");
    const value = new Uint8Array([0, 1, 2, 255, 254, 0x0a, 0x0d, 0]);
    const w = await put(key, value, { "content-type": "image/png" });
    expect(w.status).toBe(204);
    const ctx = w.headers.get(CTX);
    expect(ctx).toMatch(/^[A-Za-z0-9_-]+$/);
    const r = await fetch(kv(key));
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("image/png");
    expect(r.headers.get(CTX)).toBe(ctx);
    expect(r.headers.get("x-ringlog-siblings")).toBe("1");
    expect(r.headers.get("x-ringlog-replicas-asked")).toBe("n1");
    expect(r.headers.get("x-ringlog-replicas-answered")).toBe("n1");
    expect(new Uint8Array(await r.arrayBuffer())).toEqual(value);

    // No content type: stored as application/octet-stream. Empty body: an empty value.
    const k2 = fresh("raw");
    expect((await fetch(kv(k2), { method: "PUT" })).status).toBe(204);
    const r2 = await fetch(kv(k2));
    expect(r2.status).toBe(200);
    expect(r2.headers.get("content-type")).toBe("application/octet-stream");
    expect((await r2.arrayBuffer()).byteLength).toBe(0);
  });

  test("300 with a SiblingList after two blind writes", async () => {
    const key = fresh("pair");
    const before = Date.now();
    expect((await put(key, "first", { "content-type": "text/plain" })).status).toBe(204);
    expect((await put(key, new Uint8Array([0xff, 0]), { "content-type": "application/x-bin" })).status).toBe(204);
    const r = await fetch(kv(key));
    expect(r.status).toBe(300);
    expect(r.headers.get("content-type")).toContain("application/json");
    expect(r.headers.get("x-ringlog-siblings")).toBe("2");
    const body = (await r.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["context", "siblings"]);
    expect(body.context).toBe(r.headers.get(CTX));
    const siblings = body.siblings as Record<string, unknown>[];
    expect(siblings).toHaveLength(2);
    for (const s of siblings) {
      expect(Object.keys(s).sort()).toEqual(["contentType", "timestamp", "value"]);
      expect(typeof s.value).toBe("string");
      expect(s.value).toMatch(/^[A-Za-z0-9+/]*={0,2}$/);
      expect(Number.isInteger(s.timestamp)).toBe(true);
      expect(s.timestamp as number).toBeGreaterThanOrEqual(before - 60_000);
      expect(s.timestamp as number).toBeLessThanOrEqual(Date.now() + 60_000);
    }
    const seen = siblings.map((s) => `${s.contentType}:${Buffer.from(s.value as string, "base64").toString("hex")}`).sort();
    expect(seen).toEqual([`application/x-bin:ff00`, `text/plain:${Buffer.from("first").toString("hex")}`].sort());

    // HEAD on a key with siblings: the same status and headers, no body.
    const h = await fetch(kv(key), { method: "HEAD" });
    expect(h.status).toBe(300);
    expect(h.headers.get(CTX)).toBe(body.context as string);
  });

  test("404 after a delete, still carrying X-Ringlog-Context; a key never written has none", async () => {
    const key = fresh("gone");
    expect((await put(key, "soon gone")).status).toBe(204);
    const read = await fetch(kv(key));
    expect(read.status).toBe(200);
    const d = await fetch(kv(key), { method: "DELETE", headers: { [CTX]: read.headers.get(CTX)! } });
    expect(d.status).toBe(204);
    expect(d.headers.get(CTX)).toBeTruthy();
    const r = await fetch(kv(key));
    const ctx = r.headers.get(CTX);
    await expectError(r, 404, "not_found");
    expect(ctx).toMatch(/^[A-Za-z0-9_-]+$/);
    // A write with that context replaces the tombstone: one live version.
    const w = await put(key, "back", { [CTX]: ctx! });
    expect(w.status).toBe(204);
    expect(w.headers.get("x-ringlog-siblings")).toBe("1");

    const never = await fetch(kv(fresh("never")));
    expect(never.headers.get(CTX)).toBeNull();
    await expectError(never, 404, "not_found");
    // A blind delete of a key never written is fine too.
    expect((await fetch(kv(fresh("never")), { method: "DELETE" })).status).toBe(204);
  });

  test("HEAD on a key answers the GET's status and headers without a body", async () => {
    const key = fresh("head");
    expect((await put(key, "12345", { "content-type": "text/csv" })).status).toBe(204);
    const h = await fetch(kv(key), { method: "HEAD" });
    expect(h.status).toBe(200);
    expect(h.headers.get("content-type")).toBe("text/csv");
    expect(h.headers.get(CTX)).toBeTruthy();
    expect(h.headers.get("x-ringlog-siblings")).toBe("1");
    expect((await h.arrayBuffer()).byteLength).toBe(0);
    const missing = await fetch(kv(fresh("head")), { method: "HEAD" });
    expect(missing.status).toBe(404);
  });

  test("/openapi.json is the OpenAPI 3.1 document", async () => {
    const r = await fetch(`${base}/openapi.json`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("application/json");
    const doc = (await r.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(Object.keys(doc.paths)).toContain("/kv/{key}");
  });

  test("/docs serves Swagger UI", async () => {
    const r = await fetch(`${base}/docs`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/html");
    const html = await r.text();
    expect(html.toLowerCase()).toContain("swagger");
  });

  test("/cluster lists one member: this node, up, owning every vnode", async () => {
    const r = await fetch(`${base}/cluster`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("application/json");
    const c = (await r.json()) as { node: string; replicas: number; members: Record<string, unknown>[]; ring: { epoch: number; partitions: number; owners: string[] } };
    expect(Object.keys(c).sort()).toEqual(["members", "node", "replicas", "ring"]);
    expect(c.node).toBe("n1");
    expect(c.members).toEqual([{ id: "n1", url: base, status: "up", self: true }]);
    expect(c.ring.partitions).toBe(64);
    expect(c.ring.owners).toHaveLength(64);
    expect(new Set(c.ring.owners)).toEqual(new Set(["n1"]));
  });

  test("/healthz and /readyz answer 200 ok", async () => {
    for (const p of ["/healthz", "/readyz"]) {
      const r = await fetch(base + p);
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ status: "ok", node: "n1" });
      expect((await fetch(base + p, { method: "HEAD" })).status).toBe(200);
    }
  });
});

// KNOWN FAILURES (src bug, same cause as the 16 KiB context): requests the HTTP layer refuses
// before fastify routes them get fastify's default client-error body ({error, message,
// statusCode}), not the Error shape openapi.yaml promises for every 4xx.
describe("requests refused by the HTTP layer", () => {
  test("an oversize request head (a 30 000-character URL) gets a 4xx with the Error body", async () => {
    // 5000 two-byte characters, percent-encoded: well past the key limit, and past ~16 KiB of head.
    const res = await fetch(kv(encodeURIComponent("é".repeat(5000))), { method: "PUT", body: "x", keepalive: false });
    const text = await res.text();
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(errorShapeProblem(JSON.parse(text))).toBeNull();
    await expectServing(base);
  });

  test("a malformed request (conflicting Content-Length headers) gets 400 with the Error body", async () => {
    const head = `PUT /kv/${fresh("cl")} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab`;
    const res = await rawRequest(head, []);
    expect(res.status).toBe(400);
    const body = JSON.parse(res.text.slice(res.text.indexOf("\r\n\r\n") + 4)) as unknown;
    expect(errorShapeProblem(body)).toBeNull();
    await expectServing(base);
  });
});

// Last, since a refused gossip message can (src bug) leave a phantom member behind.
describe("internal routes", () => {
  const ROUTES = ["/internal/read", "/internal/apply", "/internal/gossip", "/internal/aae"];
  const post = (path: string, body: Uint8Array | string, secret?: string) =>
    fetch(base + path, {
      method: "POST",
      body,
      headers: { "content-type": "application/msgpack", ...(secret === undefined ? {} : { "x-ringlog-secret": secret }) },
    });

  test("without or with a wrong X-Ringlog-Secret: 401 unauthorized", async () => {
    for (const path of ROUTES) {
      for (const secret of [undefined, "", "wrong", SECRET.slice(0, -1), `${SECRET}x`, SECRET.toUpperCase(), `${SECRET} ${SECRET}`]) {
        // A well-formed body, so only the secret is wrong.
        await expectError(await post(path, pack([]), secret), 401, "unauthorized");
      }
      // The secret in another header does not count.
      const res = await fetch(base + path, { method: "POST", body: pack([]), headers: { authorization: `Bearer ${SECRET}` } });
      await expectError(res, 401, "unauthorized");
    }
    // Fault and clock routes are absent without RINGLOG_TEST_FAULTS, whatever the caller.
    await expectError(await fetch(`${base}/debug/faults`, { headers: { "x-ringlog-secret": SECRET } }), 404, "not_found");
    await expectServing(base);
  });

  test("with the right secret, a body that is not msgpack gets 400 invalid_request", async () => {
    const bodies: [string, Uint8Array | string][] = [
      ["text", "garbage, not msgpack!!"],
      ["empty", new Uint8Array(0)],
      ["truncated str32", new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff])],
      ["never-used byte 0xc1", new Uint8Array([0xc1])],
    ];
    const failures: string[] = [];
    for (const path of ROUTES) {
      for (const [name, body] of bodies) {
        const res = await post(path, body, SECRET);
        const text = await res.text();
        if (res.status !== 400) failures.push(`${path} ${name} → ${res.status} ${text.slice(0, 120)}`);
        else expect(errorShapeProblem(JSON.parse(text))).toBeNull();
      }
    }
    // KNOWN FAILURE (src bug): /internal/gossip answers 500 for 0xc1, which msgpackr decodes without throwing.
    expect(failures).toEqual([]);
    await expectServing(base);
  });

  // KNOWN FAILURE (src bug): a gossip message {from: 1} is refused (500) but has already
  // added a member with no id to the membership, which /cluster then lists.
  test("a refused gossip message leaves the membership as it was", async () => {
    const members = async () => ((await (await fetch(`${base}/cluster`)).json()) as { members: unknown[] }).members;
    const before = await members();
    expect(before).toHaveLength(1);
    const serverErrors: string[] = [];
    for (const shape of [{ from: 1 }, { from: { id: "ghost", url: "http://127.0.0.1:1" } }, [1]]) {
      const res = await post("/internal/gossip", pack(shape), SECRET);
      if (res.status >= 500) serverErrors.push(`${JSON.stringify(shape)} → ${res.status}`);
    }
    expect({ serverErrors, members: await members() }).toEqual({ serverErrors: [], members: before });
  });

  test("with the right secret, msgpack of the wrong shape gets 400 invalid_request, never 5xx", async () => {
    const shapes: unknown[] = [null, 1, "x", {}, [1], [[1, 2]], [["a", "b"]], [[0, null, [1]]], [[0, null, [[1]]]], [[0, "n9", [1]]], [[999, null, []]], { op: "tree" }, { from: 1 }];
    const failures: string[] = [];
    for (const path of ROUTES) {
      for (const shape of shapes) {
        const res = await post(path, pack(shape), SECRET);
        const text = await res.text();
        // Some shapes are valid (an empty list of keys, say): 200 is fine; a 5xx never is.
        if (res.status >= 500 || (res.status !== 200 && res.status !== 400)) failures.push(`${path} ${JSON.stringify(shape)} → ${res.status} ${text.slice(0, 100)}`);
      }
    }
    expect(failures).toEqual([]);
    await expectServing(base);
  });
});

test("after all of it the node is alive and serving", async () => {
  expect(node.running).toBe(true);
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  expect((await fetch(`${base}/readyz`)).status).toBe(200);
  await expectServing(base);
});
