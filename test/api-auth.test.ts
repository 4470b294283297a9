/** The optional bearer token on public routes, and slow clients being cut off. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { NodeProcess } from "./support/node-process.ts";
import { RinglogClient } from "../src/sdk/client.ts";

let node: NodeProcess;
beforeAll(async () => {
  node = await NodeProcess.start({ env: { RINGLOG_API_TOKEN: "s3cret-token", RINGLOG_REQUEST_TIMEOUT_MS: "1000", RINGLOG_CONNECTION_TIMEOUT_MS: "2000" } });
});
afterAll(async () => {
  await node?.destroy();
});

test("public routes need the token when one is set; probes and the spec stay open", async () => {
  const put = (headers: Record<string, string>) => fetch(`${node.url}/kv/guarded`, { method: "PUT", body: "v", headers });
  for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "s3cret-token" }] as Record<string, string>[]) {
    const r = await put(headers);
    expect(r.status).toBe(401);
    expect(((await r.json()) as { code: string }).code).toBe("unauthorized");
  }
  expect((await put({ authorization: "Bearer s3cret-token" })).status).toBe(204);
  expect((await fetch(`${node.url}/cluster`)).status).toBe(401);
  for (const open of ["/healthz", "/readyz", "/openapi.json"]) expect((await fetch(node.url + open)).status).toBe(200);

  const sdk = new RinglogClient({ baseUrl: node.url, token: "s3cret-token" });
  expect((await sdk.get("guarded")).siblings.map((s) => new TextDecoder().decode(s.value))).toEqual(["v"]);
});

test("a client that sends half a request and stalls is disconnected, and the node keeps serving", async () => {
  const started = Date.now();
  const closed = await new Promise<string>((resolve) => {
    const sock = connect(node.port, "127.0.0.1", () => sock.write("PUT /kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"));
    let data = "";
    sock.on("data", (d) => (data += d.toString()));
    sock.on("close", () => resolve(data));
    sock.on("error", () => resolve(data));
    setTimeout(() => {
      sock.destroy();
      resolve("still open");
    }, 15_000);
  });
  expect(closed).not.toBe("still open");
  expect(Date.now() - started).toBeLessThan(10_000);
  expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
});

/** Sends `head`, then one byte of `trickle` every 200 ms; resolves with what came back and when the socket closed. */
function trickle(head: string, trickle: string): Promise<{ data: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    let data = "";
    let timer: ReturnType<typeof setInterval> | undefined;
    const sock = connect(node.port, "127.0.0.1", () => {
      sock.write(head);
      let i = 0;
      timer = setInterval(() => {
        if (!sock.destroyed && i < trickle.length) sock.write(trickle[i++]!);
      }, 200);
    });
    const done = () => {
      clearInterval(timer);
      resolve({ data, ms: Date.now() - started });
    };
    sock.on("data", (d) => (data += d.toString()));
    sock.on("close", done);
    sock.on("error", done);
    setTimeout(() => {
      sock.destroy();
      data = "still open";
    }, 15_000);
  });
}

test("a client trickling its body a byte at a time is answered 408 request_timeout within the request timeout (1 s here)", async () => {
  const r = await trickle("PUT /kv/trickle HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\nContent-Length: 100\r\n\r\n", "x".repeat(100));
  expect(r.data).toStartWith("HTTP/1.1 408");
  expect(r.data).toContain('"code":"request_timeout"');
  expect(r.ms).toBeLessThan(3_000);
  expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
});

test("a client trickling its headers a byte at a time is answered 408 and disconnected", async () => {
  const r = await trickle("GET /healthz HTTP/1.1\r\nHost: x\r\n", "X-Slow: " + "y".repeat(100));
  expect(r.data).toStartWith("HTTP/1.1 408");
  expect(r.ms).toBeLessThan(3_000);
});

test("a keep-alive connection serving requests back to back is not cut by the request timeout", async () => {
  for (let i = 0; i < 15; i++) {
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
    await Bun.sleep(100);
  }
});
