/** `npm start` (ringlog dev): three node processes, one banner, Ctrl-C stops them all. */
import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { freePort, tempDir } from "./support/node-process.ts";

test("ringlog dev brings up a 3-node cluster, prints where to look, and stops every node on SIGINT", async () => {
  const data = tempDir("ringlog-dev-");
  // The dev cluster takes three consecutive ports from the one given.
  const port = Math.min(await freePort(), 65000);
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "..", "src", "cli.ts"), "dev", "--port", String(port), "--data", data], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, RINGLOG_LOG_LEVEL: "warn" },
  });
  try {
    let out = "";
    const reader = proc.stdout.getReader();
    const deadline = Date.now() + 30_000;
    while (!out.includes("Ctrl-C") && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    expect(out).toContain(`http://127.0.0.1:${port}/docs`);
    expect(out).toContain(`http://127.0.0.1:${port + 2}/kv/{key}`);
    expect(out).toContain(`http://127.0.0.1:${port}/ui`);
    // What the banner points at is served.
    expect((await fetch(`http://127.0.0.1:${port}/ui`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);

    const members = async () => ((await (await fetch(`http://127.0.0.1:${port}/cluster`)).json()) as { members: { status: string }[] }).members;
    for (let i = 0; i < 50 && (await members()).some((m) => m.status !== "up"); i++) await Bun.sleep(100);
    expect((await members()).map((m) => m.status)).toEqual(["up", "up", "up"]);

    const put = await fetch(`http://127.0.0.1:${port + 1}/kv/hello`, { method: "PUT", body: "world" });
    expect(put.status).toBe(204);
    expect(await (await fetch(`http://127.0.0.1:${port + 2}/kv/hello`)).text()).toBe("world");

    proc.kill("SIGINT");
    expect(await proc.exited).toBe(0);
    for (const p of [port, port + 1, port + 2]) {
      const alive = await fetch(`http://127.0.0.1:${p}/healthz`).then(() => true, () => false);
      expect(alive).toBe(false);
    }
  } finally {
    proc.kill("SIGKILL");
    rmSync(data, { recursive: true, force: true });
  }
}, 60_000);
