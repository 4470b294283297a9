#!/usr/bin/env bun
/** The `ringlog` command line: run a node, or talk to one. */
import { Command, InvalidArgumentError } from "commander";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { type Settings, loadSettings } from "./config/settings.ts";
import { startNode } from "./node.ts";
import { RinglogApiError, RinglogClient } from "./sdk/client.ts";

const program = new Command("ringlog").description("Ringlog: a leaderless, event-sourced key-value store").showHelpAfterError();

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError("not an integer");
  return n;
};

async function runUntilSignal(settings: Partial<Settings>, banner: (url: string) => string): Promise<void> {
  const node = await startNode(loadSettings(settings));
  process.stdout.write(banner(node.url));
  const stop = async () => {
    await node.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

program
  .command("node")
  .description("run one node in the foreground")
  .option("--data <dir>", "data folder")
  .option("--port <port>", "HTTP port", int)
  .option("--host <host>", "address to listen on")
  .option("--node-id <id>", "this node's name")
  .option("--partitions <q>", "number of vnodes (power of two; fixed per cluster)", int)
  .option("--fsync <policy>", "full | normal | off")
  .option("--seeds <urls>", "comma-separated URLs of nodes to gossip with")
  .option("--initial-members <ids>", "comma-separated node ids the cluster is created with")
  .action(async (o) => {
    await runUntilSignal(
      {
        dataDir: o.data,
        port: o.port,
        host: o.host,
        nodeId: o.nodeId,
        partitions: o.partitions,
        fsync: o.fsync,
        seeds: o.seeds,
        initialMembers: o.initialMembers,
      },
      (url) => `ringlog node listening on ${url}\n`,
    );
  });

/** The dev cluster's secret, minted once per ./data so restarts of the cluster agree. */
function devSecret(dir: string): string {
  const file = join(dir, "cluster-secret");
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, randomBytes(24).toString("base64url"), { mode: 0o600 });
  }
  return readFileSync(file, "utf8").trim();
}

program
  .command("dev")
  .description("run a local 3-node cluster on embedded storage in ./data (what `npm start` does)")
  .option("--nodes <count>", "how many nodes", int, 3)
  .option("--port <port>", "first node's port; the others follow", int, 8087)
  .option("--data <dir>", "parent folder of the nodes' data folders", "./data")
  .action(async (o) => {
    const ids = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`);
    const urls = ids.map((_, i) => `http://127.0.0.1:${o.port + i}`);
    const secret = devSecret(o.data);
    const children = ids.map((id, i) =>
      Bun.spawn([process.execPath, import.meta.path, "node", "--node-id", id, "--port", String(o.port + i), "--data", join(o.data, id), "--seeds", urls.join(","), "--initial-members", ids.join(",")], {
        env: { ...process.env, RINGLOG_CLUSTER_SECRET: secret, RINGLOG_LOG_LEVEL: process.env.RINGLOG_LOG_LEVEL ?? "warn" },
        stdout: "ignore",
        stderr: "inherit",
      }),
    );
    let stopping = false;
    const stop = async (code: number) => {
      stopping = true;
      for (const c of children) c.kill("SIGTERM");
      await Promise.all(children.map((c) => c.exited));
      process.exit(code);
    };
    process.once("SIGINT", () => stop(0));
    process.once("SIGTERM", () => stop(0));
    for (const c of children) void c.exited.then((code) => !stopping && (process.stderr.write(`a node exited (${code}); stopping the cluster\n`), stop(1)));
    await Promise.all(urls.map(waitReady));
    process.stdout.write(
      [
        ``,
        `Ringlog: a local ${o.nodes}-node cluster is running (data in ${o.data}/).`,
        ...ids.map((id, i) => `  ${id}  API ${urls[i]}/kv/{key}   Swagger UI ${urls[i]}/docs`),
        `  Status      bin/ringlog status   (or ${urls[0]}/cluster)`,
        `Ctrl-C stops every node.`,
        ``,
      ].join("\n"),
    );
  });

async function waitReady(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) return;
    await Bun.sleep(100);
  }
  throw new Error(`${url} did not become ready`);
}

program
  .command("status")
  .description("print the members, their health and the vnode ownership")
  .action(async () => {
    const base = program.opts().url ?? process.env.RINGLOG_URL ?? "http://127.0.0.1:8087";
    const res = await fetch(`${base}/cluster`);
    const c = (await res.json()) as { node: string; replicas: number; members: { id: string; url: string; status: string; lastContactAgoMs?: number }[]; ring: { epoch: number; partitions: number; owners: string[] } };
    const owned = new Map<string, number>();
    for (const o of c.ring.owners) owned.set(o, (owned.get(o) ?? 0) + 1);
    const lines = [`ring epoch ${c.ring.epoch}, ${c.ring.partitions} vnodes, N=${c.replicas} (as seen by ${c.node})`, ``, `member  status  vnodes  address`];
    for (const m of c.members) lines.push(`${m.id.padEnd(7)} ${m.status.padEnd(7)} ${String(owned.get(m.id) ?? 0).padEnd(7)} ${m.url}`);
    process.stdout.write(lines.join("\n") + "\n");
  });

const client = () =>
  new RinglogClient({
    baseUrl: program.opts().url ?? process.env.RINGLOG_URL ?? "http://127.0.0.1:8087",
    ...(process.env.RINGLOG_API_TOKEN ? { token: process.env.RINGLOG_API_TOKEN } : {}),
  });

program.option("--url <url>", "node to talk to (default $RINGLOG_URL or http://127.0.0.1:8087)");

program
  .command("get <key>")
  .description("print a key's value, or its siblings one per line")
  .action(async (key: string) => {
    const r = await client().get(key);
    if (r.siblings.length === 0) {
      process.stderr.write("not found\n");
      process.exitCode = 1;
    } else if (r.siblings.length === 1) {
      process.stdout.write(r.siblings[0]!.value);
    } else {
      for (const s of r.siblings) process.stdout.write(`${Buffer.from(s.value).toString()}\n`);
    }
    if (r.context) process.stderr.write(`context: ${r.context}\n`);
  });

program
  .command("put <key> [value]")
  .description("write a value (from the argument, or standard input)")
  .option("--type <contentType>", "content type", "text/plain")
  .option("--context <ctx>", "causal context from an earlier read")
  .action(async (key: string, value: string | undefined, o) => {
    const body = value ?? new Uint8Array(await Bun.stdin.arrayBuffer());
    const r = await client().put(key, body, { contentType: o.type, ...(o.context ? { context: o.context } : {}) });
    process.stderr.write(`context: ${r.context}\n`);
  });

program
  .command("del <key>")
  .description("delete a key")
  .option("--context <ctx>", "causal context from an earlier read")
  .action(async (key: string, o) => {
    const r = await client().delete(key, o.context ? { context: o.context } : {});
    process.stderr.write(`context: ${r.context}\n`);
  });

program.parseAsync().catch((err) => {
  process.stderr.write(err instanceof RinglogApiError ? `${err.message}\n` : `${(err as Error).message}\n`);
  process.exit(err instanceof RinglogApiError ? 2 : 1);
});
