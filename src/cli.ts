#!/usr/bin/env bun
/** The `ringlog` command line: run a node, or talk to one. */
import { Command, InvalidArgumentError } from "commander";
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
  .action(async (o) => {
    await runUntilSignal(
      { dataDir: o.data, port: o.port, host: o.host, nodeId: o.nodeId, partitions: o.partitions, fsync: o.fsync },
      (url) => `ringlog node listening on ${url}\n`,
    );
  });

program
  .command("dev")
  .description("run a local node on embedded storage in ./data (what `npm start` does)")
  .option("--port <port>", "HTTP port", int, 8087)
  .action(async (o) => {
    await runUntilSignal({ dataDir: "./data/n1", port: o.port }, (url) =>
      [``, `Ringlog is running (data in ./data/n1).`, `  API         ${url}/kv/{key}`, `  Swagger UI  ${url}/docs`, `  Spec        ${url}/openapi.json`, `Ctrl-C stops it.`, ``].join("\n"),
    );
  });

const client = () => new RinglogClient(program.opts().url ?? process.env.RINGLOG_URL ?? "http://127.0.0.1:8087");

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
