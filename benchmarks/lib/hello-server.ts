/**
 * The hello-world servers the Ringlog figures are compared with, run as their own process:
 * `bun benchmarks/lib/hello-server.ts bare|fastify <port>`. Both answer every path, so the
 * load tool sends them exactly the requests it sends Ringlog's GET phase.
 */
import Fastify from "fastify";

const [kind, portArg] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || (kind !== "bare" && kind !== "fastify")) {
  process.stderr.write("usage: bun benchmarks/lib/hello-server.ts bare|fastify <port>\n");
  process.exit(2);
}

if (kind === "bare") {
  Bun.serve({ hostname: "127.0.0.1", port, fetch: () => new Response("hello world") });
} else {
  const app = Fastify({ logger: false });
  app.get("/*", async () => "hello world");
  await app.listen({ host: "127.0.0.1", port });
}
