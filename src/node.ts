/**
 * One Ringlog node, composed from its parts: settings → storage → ring and membership →
 * transport → coordinator → HTTP. Time and randomness are injected so tests can drive them.
 */
import type { FastifyInstance } from "fastify";
import { type Settings, advertisedUrl, clusterMembers, seedUrls } from "./config/settings.ts";
import { databasePath, openDatabase } from "./log/database.ts";
import { Checkpointer } from "./log/checkpointer.ts";
import { loadIdentity, type Identity } from "./log/identity.ts";
import { readMeta, writeMeta } from "./log/meta.ts";
import { LogStore } from "./log/store.ts";
import { lockDataDir } from "./log/lock.ts";
import { HintStore } from "./hints/hints.ts";
import { HintDelivery } from "./hints/delivery.ts";
import { Handoff } from "./handoff/handoff.ts";
import { Metrics } from "./metrics/metrics.ts";
import { AAE_ROUTE, AntiEntropy } from "./antientropy/antientropy.ts";
import { Coordinator } from "./coordinator/coordinator.ts";
import { parseResolvers } from "./coordinator/resolver.ts";
import { Membership } from "./membership/membership.ts";
import { type Ring, claim } from "./ring/ring.ts";
import { HttpTransport, type Transport } from "./transport/transport.ts";
import { FaultLayer } from "./transport/faults.ts";
import { ReplicaClient } from "./transport/replica-client.ts";
import { buildServer } from "./api/server.ts";
import { kvHandlers } from "./api/kv.ts";
import { clusterHandlers } from "./api/cluster.ts";
import { adminHandlers } from "./api/admin.ts";
import { uiHandlers } from "./api/ui.ts";
import { apiTokenGuard, internalAuthorizer, internalHandlers } from "./api/internal.ts";
import { loadSpec } from "./api/spec.ts";
import { RinglogError } from "./errors.ts";
import { createLogger, type Logger } from "./telemetry/logger.ts";
import { startTracing } from "./telemetry/tracing.ts";

export interface NodeDeps {
  /** Wall clock (ms since the epoch): stamps writes and hints. */
  now: () => number;
  /** Monotonic clock (ms): timeouts and failure detection, immune to wall-clock jumps. */
  monotonic: () => number;
  random: () => number;
}

export interface RunningNode {
  identity: Identity;
  store: LogStore;
  membership: Membership;
  app: FastifyInstance;
  logger: Logger;
  url: string;
  close(): Promise<void>;
}

/** The ring this folder last knew, or the one the initial members claim at epoch 1. */
function loadRing(db: Parameters<typeof readMeta>[0], settings: Settings): Ring {
  const stored = readMeta(db, "ring");
  if (stored) return JSON.parse(stored) as Ring;
  const members = clusterMembers(settings);
  const ring: Ring = { epoch: 1, owners: claim(members, settings.partitions, settings.replicas), cluster: [...members].sort().join(",") };
  writeMeta(db, "ring", JSON.stringify(ring));
  return ring;
}

export async function startNode(settings: Settings, given: NodeDeps = { now: Date.now, monotonic: () => performance.now(), random: Math.random }): Promise<RunningNode> {
  // Before the database opens: start-up itself writes (a projection catch-up, say).
  const lock = lockDataDir(settings.dataDir, { nodeId: settings.nodeId, pid: process.pid, now: given.now() });
  try {
    const node = await runNode(settings, given);
    return {
      ...node,
      close: async () => {
        await node.close();
        lock.release();
      },
    };
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function runNode(settings: Settings, given: NodeDeps): Promise<RunningNode> {
  const http = new HttpTransport(settings.nodeId, settings.clusterSecret, settings.peerTimeoutMs);
  const faults = settings.testFaults ? new FaultLayer(http) : undefined;
  const transport: Transport = faults ?? http;
  const deps: NodeDeps = faults ? { ...given, now: () => given.now() + faults.clockOffsetMs } : given;

  const logger = createLogger(settings.logLevel, settings.nodeId);
  const tracing = startTracing(settings.nodeId);
  const db = openDatabase(settings.dataDir, settings);
  const checkpointer = await Checkpointer.start(databasePath(settings.dataDir), { intervalMs: settings.walCheckpointIntervalMs, restartPages: settings.walCheckpointPages, restartWaitMs: settings.walRestartWaitMs });
  const identity = loadIdentity(db, settings.nodeId, settings.partitions, deps.random);
  const store = new LogStore(db, {
    groupCommitMaxBatch: settings.groupCommitMaxBatch,
    snapshotEvery: settings.snapshotEvery,
    snapshotTailRatio: settings.snapshotTailRatio,
    projectionFlushKeys: settings.projectionFlushKeys,
    projectionFlushMs: settings.projectionFlushMs,
    busyWaitMs: settings.storageBusyWaitMs,
    now: deps.now,
  });
  checkpointer.committer = store;
  const hints = new HintStore(db, deps.now);
  const ring = loadRing(db, settings);

  // The listening port is known only after listen (port 0 in tests), so the server is built
  // first and membership learns its own address before gossip starts.
  const self = { id: settings.nodeId, url: "" };
  const membership = new Membership({
    self,
    ring,
    seeds: seedUrls(settings),
    transport,
    now: deps.monotonic,
    gossipIntervalMs: settings.gossipIntervalMs,
    downAfterMs: settings.downAfterMs,
    logger,
    onRing: (r) => writeMeta(db, "ring", JSON.stringify(r)),
    replicas: settings.replicas,
    hintedVnodes: () => hints.vnodes(),
  });
  const replicas = new ReplicaClient(transport, membership, settings.peerMaxInFlight);
  // The sources are read only at scrape time, after every part below exists.
  const metrics: Metrics = new Metrics(settings.nodeId, {
    coordinator: () => coordinator.counters,
    forwarded: () => kvCounters.forwarded,
    fastPath: () => httpCounters.fastPathRequests,
    hints: () => ({ queued: hints.total(), delivered: hints.delivered, failedDeliveries: hints.failedDeliveries }),
    antiEntropy: () => antiEntropy.stats,
    checkpoints: () => checkpointer.stats,
    handoff: () => ({ ...handoff.stats, running: handoff.status().filter((t) => t.status === "running").length }),
    storage: () => ({ ...store.sizes(), commits: store.stats.commits, snapshots: store.stats.snapshots, projectionWrites: store.stats.projectionWrites, projectionWriteFailures: store.stats.projectionWriteFailures, snapshotFailures: store.stats.snapshotFailures, snapshotBacklog: store.snapshotBacklog }),
    ring: () => {
      const members = membership.members();
      return {
        epoch: membership.ring.epoch,
        owned: membership.ring.owners.filter((o) => o === settings.nodeId).length,
        replicated: replicated().length,
        membersUp: members.filter((m) => m.status === "up").length,
        membersDown: members.filter((m) => m.status === "down").length,
      };
    },
  });
  const coordinator: Coordinator = new Coordinator({
    store,
    hints,
    identity,
    limits: settings,
    resolvers: parseResolvers(settings.resolvers),
    now: deps.now,
    cluster: membership,
    replicas,
    n: settings.replicas,
    timeoutMs: settings.coordinatorTimeoutMs,
    observer: metrics,
  });
  const antiEntropy = new AntiEntropy({
    store,
    membership,
    transport,
    partitions: settings.partitions,
    replicasOf: (vnode) => {
      const primaries = coordinator.primariesOf(vnode);
      return primaries.includes(settings.nodeId) ? primaries.filter((p) => p !== settings.nodeId) : [];
    },
    intervalMs: settings.aaeIntervalMs,
    quietMs: settings.aaeQuietMs,
    maxDeferMs: settings.aaeMaxDeferMs,
    monotonic: deps.monotonic,
    logger,
    traffic: () => http.traffic.get(AAE_ROUTE) ?? { sent: 0, received: 0 },
    now: deps.now,
    tombstoneGraceMs: settings.tombstoneGraceMs,
  });
  antiEntropy.rebuild();
  store.onChange = antiEntropy.onChange;
  const replicated = () => [...Array(settings.partitions).keys()].filter((v) => coordinator.primariesOf(v).includes(settings.nodeId));
  const delivery = new HintDelivery({
    hints,
    membership,
    ship: (peer, segments) => replicas.ship(peer, segments),
    primariesOf: (vnode) => coordinator.primariesOf(vnode),
    intervalMs: settings.hintIntervalMs,
    ratePerSec: settings.hintRatePerSec,
    logger,
  });

  const handoff = new Handoff({
    store,
    membership,
    ship: (peer, segments) => replicas.ship(peer, segments),
    n: settings.replicas,
    concurrency: settings.handoffConcurrency,
    batch: settings.handoffBatch,
    intervalMs: settings.handoffIntervalMs,
    monotonic: deps.monotonic,
    logger,
  });

  let ready = false;
  const health = { status: "ok" as const, node: identity.nodeId };
  const kvCounters = { forwarded: 0 };
  const httpCounters = { fastPathRequests: 0 };
  const app = await buildServer({
    spec: loadSpec(),
    logger,
    tracing: tracing.enabled,
    maxBodyBytes: settings.maxBodyBytes,
    maxHeaderBytes: settings.maxContextBytes + settings.maxKeyBytes * 3 + 16 * 1024,
    maxParamLength: settings.maxKeyBytes * 3,
    requestTimeoutMs: settings.requestTimeoutMs,
    keepAliveTimeoutMs: settings.keepAliveTimeoutMs,
    connectionTimeoutMs: settings.connectionTimeoutMs,
    fastPath: settings.httpFastPath,
    counters: httpCounters,
    guards: {
      clusterSecret: internalAuthorizer({ secret: settings.clusterSecret, ...(faults ? { faults } : {}) }),
      apiToken: apiTokenGuard(settings.apiToken),
    },
    dataHandlers: {
      ...kvHandlers({ coordinator, membership, transport, limits: settings, counters: kvCounters }),
      ...internalHandlers({ antiEntropy, store, hints, membership, logger, secret: settings.clusterSecret, partitions: settings.partitions, ...(faults ? { faults } : {}) }),
    },
    handlers: {
      ...adminHandlers({ membership, store, handoff, transport, logger, replicas: settings.replicas, partitions: settings.partitions }),
      ...clusterHandlers({
        antiEntropy,
        replicated,
        monotonic: deps.monotonic,
        membership,
        hints,
        handoff,
        replicas: settings.replicas,
        partitions: settings.partitions,
        counters: () => ({ ...coordinator.counters, ...kvCounters, ...httpCounters, ...replicas.traffic, ...store.stats, hintsDelivered: hints.delivered }),
        ...(faults ? { faults } : {}),
      }),
      getMetrics: async (_req, reply) => {
        const { body, contentType } = await metrics.render();
        return reply.type(contentType).send(body);
      },
      ...uiHandlers(),
      healthz: async () => health,
      readyz: async () => {
        if (!ready) throw new RinglogError("not_ready", "node is starting or stopping");
        if (!membership.hasRingState()) throw new RinglogError("not_ready", "no gossip exchanged with any other member yet");
        return health;
      },
    },
  });
  await app.listen({ host: settings.host, port: settings.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : settings.port;
  self.url = advertisedUrl(settings, port);
  membership.start();
  delivery.start();
  antiEntropy.start();
  handoff.start();
  ready = true;
  logger.info(
    { url: self.url, actor: identity.actor, projectionCaughtUp: { vnodes: store.stats.catchUpVnodes, logEntries: store.stats.catchUpEntries }, partitions: identity.partitions, ringEpoch: ring.epoch, fsync: settings.fsync, merkleRebuildMs: antiEntropy.stats.lastRebuildMs },
    "node started",
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      ready = false;
      membership.stop();
      delivery.stop();
      antiEntropy.stop();
      handoff.stop();
      await app.close();
      await checkpointer.stop();
      await store.close();
      await tracing.shutdown();
      logger.info("node stopped");
    })());
  return { identity, store, membership, app, logger, url: self.url, close };
}
