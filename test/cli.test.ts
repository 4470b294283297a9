/**
 * The real command line (bin/ringlog, which runs src/cli.ts with the project's Bun) against
 * a real node process: writes, reads, siblings and their resolution, deletes, stdin, status,
 * errors.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { NodeProcess } from "./support/node-process.ts";

const BIN = join(import.meta.dir, "..", "bin", "ringlog");
const CLI_TIMEOUT_MS = 20_000;

let node: NodeProcess;

beforeAll(async () => {
  node = await NodeProcess.start();
});

afterAll(async () => {
  await node?.destroy();
});

interface Run {
  code: number | null;
  stdout: Uint8Array;
  out: string;
  err: string;
}

/** Runs `bin/ringlog --url <node> ...args`, with optional bytes on standard input. */
async function cli(args: string[], opts: { stdin?: Uint8Array | string; url?: string | null; env?: Record<string, string> } = {}): Promise<Run> {
  const urlArgs = opts.url === null ? [] : ["--url", opts.url ?? node.url];
  const stdin = opts.stdin === undefined ? "ignore" : typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin;
  const proc = Bun.spawn([BIN, ...urlArgs, ...args], {
    stdin,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, RINGLOG_URL: "", RINGLOG_API_TOKEN: "", ...opts.env },
    timeout: CLI_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  const [stdout, err, code] = await Promise.all([new Response(proc.stdout).bytes(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, out: new TextDecoder().decode(stdout), err };
}

/** The context the CLI reports on standard error ("context: <token>"). */
const contextIn = (err: string): string => {
  const m = /^context: ([A-Za-z0-9_-]+)$/m.exec(err);
  if (!m) throw new Error(`no context in stderr: ${JSON.stringify(err)}`);
  return m[1]!;
};

let serial = 0;
const fresh = (prefix: string) => `${prefix}-${++serial}`;

describe("ringlog CLI", () => {
  test("put KEY VALUE, then get KEY prints the value", async () => {
    const key = fresh("greeting");
    const put = await cli(["put", key, "hello, world"]);
    expect(put.code).toBe(0);
    expect(put.out).toBe("");
    contextIn(put.err);

    const get = await cli(["get", key]);
    expect(get.code).toBe(0);
    expect(get.out).toBe("hello, world");
    expect(contextIn(get.err)).toBe(contextIn(put.err));

    // What the CLI wrote is what the HTTP API serves, with the default content type.
    const res = await fetch(`${node.url}/kv/${key}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain");
    expect(await res.text()).toBe("hello, world");
  });

  test("two blind puts: get prints both siblings; put --context with the read's context resolves them", async () => {
    const key = fresh("pair");
    expect((await cli(["put", key, "left"])).code).toBe(0);
    expect((await cli(["put", key, "right"])).code).toBe(0);

    const both = await cli(["get", key]);
    expect(both.code).toBe(0);
    expect(both.out.split("\n").filter(Boolean).sort()).toEqual(["left", "right"]);
    const ctx = contextIn(both.err);

    const resolved = await cli(["put", "--context", ctx, key, "merged"]);
    expect(resolved.code).toBe(0);
    expect((await fetch(`${node.url}/kv/${key}`, { method: "HEAD" })).headers.get("x-ringlog-siblings")).toBe("1");

    const one = await cli(["get", key]);
    expect(one.code).toBe(0);
    expect(one.out).toBe("merged");
  });

  test("del, then get exits non-zero with \"not found\"", async () => {
    const key = fresh("doomed");
    expect((await cli(["put", key, "short-lived"])).code).toBe(0);
    const del = await cli(["del", key]);
    expect(del.code).toBe(0);
    contextIn(del.err);

    const get = await cli(["get", key]);
    expect(get.code).not.toBe(0);
    expect(get.out).toBe("");
    expect(get.err).toContain("not found");
    // The tombstone's context is still reported, so a later write can supersede it.
    contextIn(get.err);

    const never = await cli(["get", fresh("never-written")]);
    expect(never.code).not.toBe(0);
    expect(never.err).toContain("not found");
  });

  test("put without a value reads it from standard input, bytes intact", async () => {
    const key = fresh("from-stdin");
    const text = await cli(["put", key], { stdin: "line one\nline two\n" });
    expect(text.code).toBe(0);
    expect((await cli(["get", key])).out).toBe("line one\nline two\n");

    const bin = fresh("binary");
    const bytes = new Uint8Array(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
    expect((await cli(["put", "--type", "application/octet-stream", bin], { stdin: bytes })).code).toBe(0);
    const got = await cli(["get", bin]);
    expect(got.code).toBe(0);
    expect(got.stdout).toEqual(bytes);
    const res = await fetch(`${node.url}/kv/${bin}`);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
  });

  test("keys with '/', spaces and non-ASCII characters round-trip", async () => {
    const key = fresh("dir/sub file/é€😀");
    expect((await cli(["put", key, "odd key"])).code).toBe(0);
    expect((await cli(["get", key])).out).toBe("odd key");
    const res = await fetch(`${node.url}/kv/${encodeURIComponent(key)}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("odd key");
  });

  test("status prints the member list", async () => {
    const run = await cli(["status"]);
    expect(run.code).toBe(0);
    expect(run.err).toBe("");
    const lines = run.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ring epoch \d+, 64 vnodes, N=\d+ \(as seen by n1\)$/);
    const header = lines.findIndex((l) => /^member\s+status\s+vnodes\s+address$/.test(l));
    expect(header).toBeGreaterThan(0);
    // A node started alone is a cluster of one: itself, up, owning every vnode.
    expect(lines.slice(header + 1).map((l) => l.trim().split(/\s+/))).toEqual([["n1", "up", "64", node.url]]);
  });

  test("the node comes from RINGLOG_URL when --url is not given", async () => {
    const key = fresh("by-env");
    expect((await cli(["put", key, "via env"], { url: null, env: { RINGLOG_URL: node.url } })).code).toBe(0);
    expect((await cli(["get", key], { url: null, env: { RINGLOG_URL: node.url } })).out).toBe("via env");
  });

  test("API errors and unreachable nodes exit non-zero with a message", async () => {
    const tooLong = await cli(["put", "k".repeat(1100), "v"]);
    expect(tooLong.code).toBe(2);
    expect(tooLong.err).toContain("400 invalid_key");

    const badContext = await cli(["put", "--context", "not-a-context!", fresh("bad-ctx"), "v"]);
    expect(badContext.code).toBe(2);
    expect(badContext.err).toContain("400 invalid_context");

    // Port 1 on 127.0.0.1: nothing listens there, the connection is refused at once.
    const down = await cli(["get", "anything"], { url: "http://127.0.0.1:1" });
    expect(down.code).not.toBe(0);
    expect(down.err).not.toBe("");
  });

  test("the node is still serving after the CLI runs", async () => {
    expect(node.running).toBe(true);
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
  });
});
