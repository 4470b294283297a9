/**
 * One Ringlog node, composed from its parts: settings → storage → coordinator → HTTP.
 * Time and randomness are injected so tests can drive them.
 */
import type { FastifyInstance } from "fastify";
import type { Settings } from "./config/settings.ts";
import { openDatabase } from "./log/database.ts";
import { loadIdentity, type Identity } from "./log/identity.ts";
import { LogStore } from "./log/store.ts";
import { Coordinator } from "./coordinator/coordinator.ts";
import { parseResolvers } from "./coordinator/resolver.ts";
import { buildServer } from "./api/server.ts";
import { kvHandlers } from "./api/kv.ts";
import { loadSpec } from "./api/spec.ts";
import { RinglogError } from "./errors.ts";
import { createLogger, type Logger } from "./telemetry/logger.ts";
import { startTracing } from "./telemetry/tracing.ts";

export interface NodeDeps {
  now: () => number;
  random: () => number;
}

export interface RunningNode {
  identity: Identity;
  store: LogStore;
  app: FastifyInstance;
  logger: Logger;
  url: string;
  close(): Promise<void>;
}

export async function startNode(settings: Settings, deps: NodeDeps = { now: Date.now, random: Math.random }): Promise<RunningNode> {
  const logger = createLogger(settings.logLevel, settings.nodeId);
  const tracing = startTracing(settings.nodeId);
  const db = openDatabase(settings.dataDir, settings.fsync);
  const identity = loadIdentity(db, settings.nodeId, settings.partitions, deps.random);
  const store = new LogStore(db, { groupCommitMaxBatch: settings.groupCommitMaxBatch, snapshotEvery: settings.snapshotEvery, now: deps.now });
  const coordinator = new Coordinator(store, identity, settings, parseResolvers(settings.resolvers), deps.now);

  let ready = false;
  const health = { status: "ok" as const, node: identity.nodeId };
  const app = await buildServer({
    spec: loadSpec(),
    logger,
    tracing: tracing.enabled,
    maxBodyBytes: settings.maxBodyBytes,
    maxParamLength: settings.maxKeyBytes * 3,
    requestTimeoutMs: settings.requestTimeoutMs,
    keepAliveTimeoutMs: settings.keepAliveTimeoutMs,
    connectionTimeoutMs: settings.connectionTimeoutMs,
    handlers: {
      ...kvHandlers(coordinator, settings),
      healthz: async () => health,
      readyz: async () => {
        if (!ready) throw new RinglogError("not_ready", "node is starting or stopping");
        return health;
      },
    },
  });
  await app.listen({ host: settings.host, port: settings.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : settings.port;
  const url = `http://${settings.host}:${port}`;
  ready = true;
  logger.info({ url, actor: identity.actor, partitions: identity.partitions, fsync: settings.fsync }, "node started");

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      ready = false;
      await app.close();
      await store.close();
      await tracing.shutdown();
      logger.info("node stopped");
    })());
  return { identity, store, app, logger, url, close };
}
