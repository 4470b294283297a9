/**
 * Every limit and tunable of a node, by name. Values come from defaults, then RINGLOG_*
 * environment variables, then explicit overrides (CLI flags, tests), and are validated once.
 */
import { isPowerOfTwo } from "../ring/partition.ts";

export type FsyncPolicy = "full" | "normal" | "off";

export interface Settings {
  /** Stable name of this node in the cluster. */
  nodeId: string;
  host: string;
  port: number;
  dataDir: string;
  /** Q: number of fixed vnodes, a power of two, fixed when the data folder is created. */
  partitions: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  /** Limit on any request body, checked before it is read into memory. */
  maxBodyBytes: number;
  maxContentTypeBytes: number;
  /** Versions a key may hold; a write that would exceed it is refused until the key is resolved. */
  maxSiblings: number;
  /** Distinct actors a causal context may name, and bytes its header form may take. */
  maxContextActors: number;
  maxContextBytes: number;
  /** full: fsync every group commit; normal: survives a process crash, not power loss; off: neither. */
  fsync: FsyncPolicy;
  /** WAL pages at which the background checkpointer rewinds the WAL (bounds the -wal file). */
  walCheckpointPages: number;
  /** How often the background checkpointer copies committed WAL pages into the database file. */
  walCheckpointIntervalMs: number;
  /** Longest a RESTART checkpoint waits on readers, with commits held, before it gives up until later. */
  walRestartWaitMs: number;
  /** Longest queued writes wait for a write lock another connection holds before they fail. */
  storageBusyWaitMs: number;
  /** Bytes of the database file SQLite may memory-map for reads. */
  mmapBytes: number;
  /** Most writes one group commit (one transaction) takes. */
  groupCommitMaxBatch: number;
  /** Most events a vnode's log grows past its last snapshot before a new snapshot compacts it. */
  snapshotEvery: number;
  /** A vnode is compacted sooner, once its log tail exceeds this many times its key count. */
  snapshotTailRatio: number;
  /**
   * Changed states a vnode keeps in memory before they are written to the stored projection in
   * one sorted transaction (the log, written at every commit, is what makes a write durable).
   * 0 writes the projection in every commit.
   */
  projectionFlushKeys: number;
  /** Longest a changed state stays only in memory (and in the log) before its vnode is written. */
  projectionFlushMs: number;
  /** Whole request must arrive within this (slow-client guard). */
  requestTimeoutMs: number;
  /** Idle keep-alive connections are closed after this. */
  keepAliveTimeoutMs: number;
  /** A socket with no activity at all is closed after this. */
  connectionTimeoutMs: number;
  /** Plain key reads and writes and node-to-node calls skip fastify's request machinery (src/api/fast-path.ts). */
  httpFastPath: boolean;
  /** Conflict resolution per key prefix, "prefix=lww,prefix=siblings"; default keeps siblings. */
  resolvers: string;
  logLevel: string;

  /** N: replicas of each vnode. */
  replicas: number;
  /** Default read and write quorums when a request names none. */
  defaultR: number;
  defaultW: number;
  /** A client request that cannot meet its quorum within this gets 503. */
  coordinatorTimeoutMs: number;
  /** One node-to-node call gives up after this. */
  peerTimeoutMs: number;
  /** Replica calls (writes, reads) in flight to one peer at once; what arrives meanwhile shares the next call. */
  peerMaxInFlight: number;
  /** Shared secret every internal route requires; mandatory once a node has peers. */
  clusterSecret: string;
  /** When set, public routes require "Authorization: Bearer <apiToken>". */
  apiToken: string;
  /** Comma-separated base URLs of nodes to gossip with at start. */
  seeds: string;
  /** Comma-separated node ids the cluster was created with; they claim ring epoch 1. */
  initialMembers: string;
  /** The URL peers reach this node at (default http://host:port). */
  advertiseUrl: string;
  gossipIntervalMs: number;
  /** A peer not heard from for this long is down (it only changes where writes go). */
  downAfterMs: number;
  /** How often hint queues are checked for delivery, and the most hints sent per second. */
  hintIntervalMs: number;
  hintRatePerSec: number;
  /** Pause between two anti-entropy vnode visits (one vnode at a time; a round over all of them begins with one roots call per peer); 0 turns AAE off. */
  aaeIntervalMs: number;
  /** Anti-entropy passes over a vnode written to within this long (its replicas differ by writes in flight). */
  aaeQuietMs: number;
  /** …but never for longer than this in a row. */
  aaeMaxDeferMs: number;
  /** A tombstone younger than this is never collected, even once every replica holds it. */
  tombstoneGraceMs: number;
  /** Vnode transfers this node sends at once during a join or leave. */
  handoffConcurrency: number;
  /** Keys (snapshot) or log entries (tail) per segment a transfer ships. */
  handoffBatch: number;
  /** How often pending transfers are checked and started. */
  handoffIntervalMs: number;
  /**
   * Scales the JavaScript engine's thresholds for optimizing a function (JSC's jitPolicyScale,
   * 1 = the engine's own): lower compiles the hot paths sooner after a start. See runtime.ts.
   */
  jitPolicyScale: number;
  /**
   * How long the memory allocator keeps freed pages before it returns them to the system
   * (mimalloc's purge delay); -1 keeps them for reuse, as a JVM with -Xms = -Xmx keeps its heap.
   */
  mallocPurgeDelayMs: number;
  /** Enables the fault-injection layer and its /debug/faults route. Tests only. */
  testFaults: boolean;
}

export const DEFAULTS: Settings = {
  nodeId: "n1",
  host: "127.0.0.1",
  port: 8087,
  dataDir: "./data/n1",
  partitions: 64,
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxBodyBytes: 8 * 1024 * 1024,
  maxContentTypeBytes: 256,
  maxSiblings: 100,
  maxContextActors: 256,
  maxContextBytes: 16 * 1024,
  fsync: "normal",
  walCheckpointPages: 32_768,
  walCheckpointIntervalMs: 250,
  walRestartWaitMs: 200,
  storageBusyWaitMs: 5_000,
  mmapBytes: 256 * 1024 * 1024,
  groupCommitMaxBatch: 512,
  snapshotEvery: 10_000,
  snapshotTailRatio: 3,
  projectionFlushKeys: 256,
  projectionFlushMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  connectionTimeoutMs: 30_000,
  httpFastPath: true,
  resolvers: "",
  logLevel: "info",
  replicas: 3,
  defaultR: 2,
  defaultW: 2,
  coordinatorTimeoutMs: 5_000,
  peerTimeoutMs: 2_000,
  peerMaxInFlight: 2,
  clusterSecret: "",
  apiToken: "",
  seeds: "",
  initialMembers: "",
  advertiseUrl: "",
  gossipIntervalMs: 1_000,
  downAfterMs: 3_000,
  hintIntervalMs: 250,
  hintRatePerSec: 5_000,
  aaeIntervalMs: 100,
  aaeQuietMs: 250,
  aaeMaxDeferMs: 30_000,
  tombstoneGraceMs: 10_000,
  handoffConcurrency: 2,
  handoffBatch: 500,
  handoffIntervalMs: 500,
  jitPolicyScale: 0.3,
  mallocPurgeDelayMs: -1,
  testFaults: false,
};

const ENV_PREFIX = "RINGLOG_";

/** camelCase setting name → RINGLOG_SNAKE_CASE variable. */
export function envName(key: keyof Settings): string {
  return ENV_PREFIX + key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

export class SettingsError extends Error {}

function coerce(key: keyof Settings, raw: string): Settings[keyof Settings] {
  if (typeof DEFAULTS[key] === "boolean") return ["1", "true", "yes"].includes(raw.toLowerCase());
  if (typeof DEFAULTS[key] !== "number") return raw;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new SettingsError(`${envName(key)}=${raw} is not a number`);
  return n;
}

export function loadSettings(overrides: Partial<Settings> = {}, env: Record<string, string | undefined> = process.env): Settings {
  const s: Settings = { ...DEFAULTS };
  const mutable = s as unknown as Record<string, unknown>;
  for (const key of Object.keys(DEFAULTS) as (keyof Settings)[]) {
    const raw = env[envName(key)];
    if (raw !== undefined && raw !== "") mutable[key] = coerce(key, raw);
  }
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) mutable[key] = value;
  validate(s);
  return s;
}

function validate(s: Settings): void {
  const positive: (keyof Settings)[] = [
    "maxKeyBytes",
    "maxValueBytes",
    "maxBodyBytes",
    "maxContentTypeBytes",
    "maxSiblings",
    "maxContextActors",
    "maxContextBytes",
    "groupCommitMaxBatch",
    "walCheckpointPages",
    "walCheckpointIntervalMs",
    "walRestartWaitMs",
    "storageBusyWaitMs",
    "snapshotEvery",
    "projectionFlushMs",
    "requestTimeoutMs",
    "keepAliveTimeoutMs",
    "connectionTimeoutMs",
    "replicas",
    "defaultR",
    "defaultW",
    "coordinatorTimeoutMs",
    "peerTimeoutMs",
    "peerMaxInFlight",
    "gossipIntervalMs",
    "downAfterMs",
    "hintIntervalMs",
    "hintRatePerSec",
    "tombstoneGraceMs",
    "aaeMaxDeferMs",
    "handoffConcurrency",
    "handoffBatch",
    "handoffIntervalMs",
  ];
  for (const key of positive) {
    const v = s[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new SettingsError(`${key} must be a positive integer, got ${v}`);
  }
  if (!isPowerOfTwo(s.partitions) || s.partitions > 65536) throw new SettingsError(`partitions must be a power of two ≤ 65536, got ${s.partitions}`);
  if (!Number.isInteger(s.port) || s.port < 0 || s.port > 65535) throw new SettingsError(`port must be 0–65535, got ${s.port}`);
  if (!["full", "normal", "off"].includes(s.fsync)) throw new SettingsError(`fsync must be full, normal or off, got ${s.fsync}`);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(s.nodeId)) throw new SettingsError(`nodeId must be 1–64 of [A-Za-z0-9_.-], got ${s.nodeId}`);
  if (s.maxValueBytes > s.maxBodyBytes) throw new SettingsError("maxValueBytes cannot exceed maxBodyBytes");
  if (!Number.isInteger(s.projectionFlushKeys) || s.projectionFlushKeys < 0) throw new SettingsError(`projectionFlushKeys must be 0 or a positive integer, got ${s.projectionFlushKeys}`);
  if (!(s.jitPolicyScale > 0 && s.jitPolicyScale <= 1)) throw new SettingsError(`jitPolicyScale must be above 0 and at most 1, got ${s.jitPolicyScale}`);
  if (!Number.isInteger(s.mallocPurgeDelayMs) || s.mallocPurgeDelayMs < -1) throw new SettingsError(`mallocPurgeDelayMs must be -1 or a whole number of milliseconds, got ${s.mallocPurgeDelayMs}`);
  if (!(s.snapshotTailRatio > 0)) throw new SettingsError(`snapshotTailRatio must be positive, got ${s.snapshotTailRatio}`);
  if (s.defaultR > s.replicas || s.defaultW > s.replicas) throw new SettingsError("defaultR and defaultW cannot exceed replicas");
  if (clusterMembers(s).length > 1 && s.clusterSecret === "") {
    throw new SettingsError(`a node with peers needs a cluster secret: set ${envName("clusterSecret")}`);
  }
}

/** The ids the ring was created with; a lone node is a cluster of itself. */
export function clusterMembers(s: Settings): string[] {
  const ids = s.initialMembers.split(",").map((x) => x.trim()).filter(Boolean);
  return ids.length > 0 ? [...new Set(ids)] : [s.nodeId];
}

export function seedUrls(s: Settings): string[] {
  return s.seeds.split(",").map((x) => x.trim().replace(/\/$/, "")).filter(Boolean);
}

export function advertisedUrl(s: Settings, port: number): string {
  return s.advertiseUrl || `http://${s.host}:${port}`;
}
