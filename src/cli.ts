#!/usr/bin/env bun
/** The `ringlog` command line: run a node, or talk to one. */
import { Command, InvalidArgumentError } from "commander";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ensureRuntimeOptions } from "./config/runtime.ts";
import { type Settings, loadSettings } from "./config/settings.ts";
import { startNode } from "./node.ts";
import { RinglogApiError, RinglogClient } from "./sdk/client.ts";
import { type Cluster, type Plan, RinglogAdmin } from "./sdk/admin.ts";
import { MultiBar, Presets, type SingleBar } from "cli-progress";

const program = new Command("ringlog").description("Ringlog: a leaderless, event-sourced key-value store").showHelpAfterError();

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError("not an integer");
  return n;
};

async function runUntilSignal(overrides: Partial<Settings>, banner: (url: string) => string): Promise<void> {
  const settings = loadSettings(overrides);
  ensureRuntimeOptions(settings);
  const node = await startNode(settings);
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
        `  Status      ${urls[0]}/ui   (live page)   bin/ringlog status   Metrics ${urls[0]}/metrics`,
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

type Transfer = Plan["transfers"][number];

/** The dev cluster's secret file is the default, so the admin commands work with `npm start`. */
function adminSecret(): string {
  const given = program.opts().secret ?? process.env.RINGLOG_CLUSTER_SECRET;
  if (given) return given;
  const file = join("data", "cluster-secret");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  throw new InvalidArgumentError("the cluster secret is needed: --secret or RINGLOG_CLUSTER_SECRET");
}

const baseUrl = () => program.opts().url ?? process.env.RINGLOG_URL ?? "http://127.0.0.1:8087";
const admin = (url = baseUrl(), secret = "") =>
  new RinglogAdmin({ baseUrl: url, secret, ...(process.env.RINGLOG_API_TOKEN ? { token: process.env.RINGLOG_API_TOKEN } : {}) });

/** Every member's view of the transfers, merged: only the sender of a transfer knows its progress. */
async function clusterWithProgress(): Promise<Cluster> {
  const c = await admin().cluster();
  if (!c.handoff?.committed) return c;
  const views = await Promise.all(c.members.filter((m) => m.status === "up" && !m.self && m.url).map((m) => admin(m.url).cluster().catch(() => undefined)));
  const rank = (t: Transfer) => ["planned", "waiting", "retrying", "running", "done"].indexOf(t.status) * 1e12 + t.keysSent;
  const best = new Map(c.handoff.transfers.map((t) => [t.id, t]));
  for (const v of views) for (const t of v?.handoff?.transfers ?? []) if (rank(t) > rank(best.get(t.id) ?? t) || !best.has(t.id)) best.set(t.id, t);
  const transfers = c.handoff.transfers.map((t) => best.get(t.id)!);
  return { ...c, handoff: { ...c.handoff, transfers, transfersDone: transfers.filter((t) => t.status === "done").length } };
}

const bar = (done: number, total: number, width = 24) => {
  const f = total > 0 ? Math.min(1, done / total) : 1;
  return `[${"#".repeat(Math.round(f * width)).padEnd(width, "-")}] ${String(Math.round(f * 100)).padStart(3)}%`;
};

function printPlan(p: Plan): string[] {
  const lines = [
    `plan at ring epoch ${p.epoch}: ${p.committed ? "committed, being carried out" : "staged (not committed)"}`,
    ...(p.staged.join.length ? [`  staged joins:  ${p.staged.join.join(", ")}`] : []),
    ...(p.staged.leave.length ? [`  staged leaves: ${p.staged.leave.join(", ")}`] : []),
    `  vnodes per node now:   ${Object.entries(p.owners.current).map(([n, c]) => `${n}=${c}`).join(" ")}`,
    `  vnodes per node after: ${Object.entries(p.owners.target).map(([n, c]) => `${n}=${c}`).join(" ")}`,
    `  transfers: ${p.transfers.length}${p.committed ? `, done ${p.transfersDone ?? 0}` : ""}`,
  ];
  if (p.committed) lines.push(`  overall ${bar(p.transfersDone ?? 0, p.transfers.length)}`);
  for (const t of p.transfers) {
    if (!p.committed) lines.push(`    vnode ${String(t.vnode).padStart(4)}  ${t.from} -> ${t.to}`);
    else if (t.status !== "done" && t.status !== "waiting")
      lines.push(`    vnode ${String(t.vnode).padStart(4)}  ${t.from} -> ${t.to}  ${t.status.padEnd(8)} ${bar(t.keysSent, t.keysTotal)} ${t.keysSent}/${t.keysTotal} entries ${t.phase ?? ""}`);
  }
  return lines;
}

program
  .command("status")
  .description("print the members, their health, the vnode ownership and any join/leave in progress")
  .option("--watch", "show transfer progress bars until the plan is carried out")
  .option("--timeout <seconds>", "stop watching after this long", int, 600)
  .action(async (o) => {
    const c = await clusterWithProgress();
    const owned = new Map<string, number>();
    for (const v of c.ring.owners) owned.set(v, (owned.get(v) ?? 0) + 1);
    const lines = [`ring epoch ${c.ring.epoch}, ${c.ring.partitions} vnodes, N=${c.replicas} (as seen by ${c.node})`, ``, `member  status  vnodes  address`];
    for (const m of c.members) lines.push(`${m.id.padEnd(7)} ${m.status.padEnd(7)} ${String(owned.get(m.id) ?? 0).padEnd(7)} ${m.url}`);
    if (c.ring.removed?.length) lines.push(``, `left the cluster: ${c.ring.removed.join(", ")}`);
    if (c.handoff) lines.push(``, ...printPlan(c.handoff));
    process.stdout.write(lines.join("\n") + "\n");
    if (o.watch && c.handoff?.committed) await watchTransfers(o.timeout * 1000);
  });

/** Progress bars (overall and per running transfer) until the ring flips or time runs out. */
async function watchTransfers(timeoutMs: number): Promise<void> {
  const bars = new MultiBar({ format: "{name} [{bar}] {percentage}% {value}/{total} {unit}", hideCursor: true, clearOnComplete: false }, Presets.legacy);
  const overall = bars.create(1, 0, { name: "all transfers".padEnd(22), unit: "transfers" });
  const each = new Map<string, SingleBar>();
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      const c = await clusterWithProgress();
      if (!c.handoff?.committed) {
        overall.update(overall.getTotal());
        break;
      }
      overall.setTotal(c.handoff.transfers.length);
      overall.update(c.handoff.transfersDone ?? 0);
      for (const t of c.handoff.transfers) {
        if (t.status !== "running" && !each.has(t.id)) continue;
        const b = each.get(t.id) ?? bars.create(Math.max(1, t.keysTotal), 0, { name: `vnode ${t.vnode} ${t.from}->${t.to}`.padEnd(22), unit: "entries" });
        each.set(t.id, b);
        b.setTotal(Math.max(1, t.keysTotal));
        b.update(t.status === "done" ? Math.max(1, t.keysTotal) : t.keysSent);
      }
      await Bun.sleep(1000);
    }
  } finally {
    bars.stop();
  }
}

const planCommand = (name: string, description: string, run: (a: RinglogAdmin, ...args: string[]) => Promise<Plan>, args = "") =>
  program
    .command(`${name}${args ? ` ${args}` : ""}`)
    .description(description)
    .option("--commit", "commit the plan at once (otherwise review it with `ringlog plan`, then `ringlog commit`)")
    .action(async (...argv: unknown[]) => {
      const positional = argv.filter((a): a is string => typeof a === "string");
      const o = argv.find((a) => a && typeof a === "object" && !(a instanceof Command)) as { commit?: boolean } | undefined;
      const a = admin(baseUrl(), adminSecret());
      let plan = await run(a, ...positional);
      if (o?.commit && !plan.committed) plan = await a.commit();
      process.stdout.write(printPlan(plan).join("\n") + "\n");
    });

planCommand("join", "make the node at --url (empty) join the cluster SEED belongs to; staged until committed", (a, seed) => a.join(seed!), "<seed>");
planCommand("leave", "stage the leave of NODE (default: the node at --url); its vnodes move once committed", (a, node) => a.leave(node), "[node]");

program
  .command("plan")
  .description("show the staged joins and leaves and the transfers they imply (or the committed plan's progress)")
  .option("--clear", "drop the staged changes")
  .action(async (o) => {
    const a = admin(baseUrl(), adminSecret());
    process.stdout.write(printPlan(o.clear ? await a.clearPlan() : await a.plan()).join("\n") + "\n");
  });

program
  .command("commit")
  .description("commit the staged plan: transfers start, ownership flips when they are all done")
  .action(async () => {
    process.stdout.write(printPlan(await admin(baseUrl(), adminSecret()).commit()).join("\n") + "\n");
  });

const client = () =>
  new RinglogClient({
    baseUrl: baseUrl(),
    ...(process.env.RINGLOG_API_TOKEN ? { token: process.env.RINGLOG_API_TOKEN } : {}),
  });

program.option("--url <url>", "node to talk to (default $RINGLOG_URL or http://127.0.0.1:8087)");
program.option("--secret <secret>", "cluster secret for join, leave, plan and commit (default $RINGLOG_CLUSTER_SECRET, or ./data/cluster-secret)");

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
