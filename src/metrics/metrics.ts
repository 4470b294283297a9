/**
 * Prometheus metrics (`GET /metrics`, text exposition format, via prom-client).
 *
 * Latencies and siblings per read are observed as they happen; everything the node already
 * counts (read repairs, fallback writes, hints, anti-entropy, handoff, storage sizes) is read
 * at scrape time from the module that owns it, so there is one source of truth per figure.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** What the node reports at scrape time. */
export interface MetricSources {
  coordinator: () => { readRepairs: number; fallbackWrites: number; localHints: number; localHintFailures: number; quorumFailures: number; handoffWritesMissed: number };
  forwarded: () => number;
  fastPath: () => number;
  hints: () => { queued: number; delivered: number; failedDeliveries: number };
  antiEntropy: () => { exchanges: number; keysRepaired: number; bytesSent: number; tombstonesCollected: number };
  handoff: () => { transfersCompleted: number; keysSent: number; bytesSent: number; running: number };
  storage: () => { fileBytes: number; walBytes: number; logEntries: number; compactedRows: number; snapshotKeys: number; keys: number; commits: number; snapshots: number; snapshotBacklog: number; unwrittenStates: number; projectionWrites: number; projectionWriteFailures: number; snapshotFailures: number };
  ring: () => { epoch: number; owned: number; replicated: number; membersUp: number; membersDown: number };
  checkpoints: () => { restarts: number; restartsDeferred: number; restartsGivenUp: number; failures: number };
}

export type Operation = "get" | "put" | "delete";

export class Metrics {
  readonly registry = new Registry();
  private readonly latency: Histogram<"operation" | "outcome">;
  private readonly siblings: Histogram<string>;

  /** Counts scrapes, so each source is read once per scrape however many metrics use it. */
  private scrape = 0;

  constructor(nodeId: string, given: MetricSources) {
    const perScrape = <T>(read: () => T): (() => T) => {
      let readAt = -1;
      let value: T;
      return () => {
        if (readAt !== this.scrape) {
          value = read();
          readAt = this.scrape;
        }
        return value;
      };
    };
    // Storage sizes count table rows; eight gauges read them, and each read was a count.
    const sources = Object.fromEntries(Object.entries(given).map(([name, read]) => [name, perScrape(read as () => unknown)])) as unknown as MetricSources;
    this.registry.setDefaultLabels({ node: nodeId });
    collectDefaultMetrics({ register: this.registry, prefix: "ringlog_process_" });
    const r = [this.registry];
    this.latency = new Histogram({
      name: "ringlog_operation_duration_seconds",
      help: "Coordinated client operations, from the coordinator's start to its answer",
      labelNames: ["operation", "outcome"],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers: r,
    });
    this.siblings = new Histogram({ name: "ringlog_read_siblings", help: "Live versions a read returned", buckets: [0, 1, 2, 3, 5, 10, 20, 50, 100], registers: r });

    const counter = (name: string, help: string, read: () => number) => {
      let last = 0;
      new Counter({
        name,
        help,
        registers: r,
        collect() {
          const now = read();
          if (now > last) this.inc(now - last);
          last = now;
        },
      });
    };
    const gauge = (name: string, help: string, read: () => number) => new Gauge({ name, help, registers: r, collect() { this.set(read()); } });

    counter("ringlog_quorum_failures_total", "Operations answered 503 because the quorum was not met in time", () => sources.coordinator().quorumFailures);
    counter("ringlog_fallback_writes_total", "Writes a fallback node took for an unreachable primary (sloppy quorum)", () => sources.coordinator().fallbackWrites);
    counter("ringlog_local_hints_total", "Writes this coordinator kept as hints itself (no fallback reachable)", () => sources.coordinator().localHints);
    counter("ringlog_local_hint_failures_total", "Hints this coordinator could not store (a full disk, say); anti-entropy brings those writes to their owner", () => sources.coordinator().localHintFailures);
    counter("ringlog_read_repairs_total", "Replicas brought up to date by read repair", () => sources.coordinator().readRepairs);
    counter("ringlog_forwarded_requests_total", "Client requests relayed to a primary of their key", sources.forwarded);
    counter("ringlog_http_fast_path_requests_total", "Requests answered by the data path in front of fastify", sources.fastPath);
    counter("ringlog_hints_delivered_total", "Hints delivered to their owner (or its successors)", () => sources.hints().delivered);
    counter("ringlog_hint_delivery_failures_total", "Hint deliveries that failed and will be retried", () => sources.hints().failedDeliveries);
    gauge("ringlog_hint_queue_depth", "Hints this node holds for other nodes", () => sources.hints().queued);
    counter("ringlog_aae_exchanges_total", "Anti-entropy vnode exchanges this node started", () => sources.antiEntropy().exchanges);
    counter("ringlog_aae_keys_repaired_total", "Keys anti-entropy shipped because replicas differed", () => sources.antiEntropy().keysRepaired);
    counter("ringlog_aae_bytes_sent_total", "Bytes anti-entropy exchanges sent", () => sources.antiEntropy().bytesSent);
    counter("ringlog_tombstones_collected_total", "Tombstones collected once every replica held them", () => sources.antiEntropy().tombstonesCollected);
    counter("ringlog_handoff_transfers_total", "Vnode transfers this node completed as the sender", () => sources.handoff().transfersCompleted);
    counter("ringlog_handoff_keys_sent_total", "Keys and log entries shipped by vnode transfers", () => sources.handoff().keysSent);
    counter("ringlog_handoff_bytes_sent_total", "Bytes shipped by vnode transfers", () => sources.handoff().bytesSent);
    gauge("ringlog_handoff_transfers_running", "Vnode transfers this node is sending now", () => sources.handoff().running);
    counter("ringlog_handoff_writes_missed_total", "Writes an incoming primary did not take during a handoff", () => sources.coordinator().handoffWritesMissed);
    counter("ringlog_log_commits_total", "Group commits of the event log", () => sources.storage().commits);
    counter("ringlog_snapshots_total", "Vnode snapshots taken (each compacts that vnode's log)", () => sources.storage().snapshots);
    counter("ringlog_snapshot_failures_total", "Steps of snapshot or compaction work that failed and were retried a second later", () => sources.storage().snapshotFailures);
    gauge("ringlog_snapshot_backlog", "Vnode snapshots due or being built, plus one while compacted log rows wait to be deleted", () => sources.storage().snapshotBacklog);
    gauge("ringlog_db_file_bytes", "Size of the database file", () => sources.storage().fileBytes);
    gauge("ringlog_wal_file_bytes", "Size of the write-ahead log file", () => sources.storage().walBytes);
    counter("ringlog_wal_rewinds_total", "RESTART checkpoints that rewound the write-ahead log", () => sources.checkpoints().restarts);
    counter("ringlog_wal_rewinds_deferred_total", "WAL rewinds not started because a reader pinned older frames", () => sources.checkpoints().restartsDeferred);
    counter("ringlog_wal_rewinds_given_up_total", "WAL rewinds that waited RINGLOG_WAL_RESTART_WAIT_MS on a reader and gave up", () => sources.checkpoints().restartsGivenUp);
    counter("ringlog_wal_checkpoint_failures_total", "WAL checkpoints that failed (a full disk, say) and were tried again at the next interval", () => sources.checkpoints().failures);
    gauge("ringlog_log_entries", "Log entries not yet compacted into a snapshot", () => sources.storage().logEntries);
    gauge("ringlog_log_compacted_rows", "Compacted log rows still in the table, waiting for the sweep (held back by the oldest row a vnode still needs)", () => sources.storage().compactedRows);
    gauge("ringlog_snapshot_keys", "Keys held in vnode snapshots", () => sources.storage().snapshotKeys);
    gauge("ringlog_keys", "Keys in the projection (live, siblings or tombstones)", () => sources.storage().keys);
    gauge("ringlog_projection_unwritten_states", "Key states committed to the log but not yet written to the stored projection", () => sources.storage().unwrittenStates);
    counter("ringlog_projection_writes_total", "Transactions that wrote a vnode's changed states to the stored projection", () => sources.storage().projectionWrites);
    counter("ringlog_projection_write_failures_total", "Projection writes that failed and were retried (the states wait in memory, safe in the log)", () => sources.storage().projectionWriteFailures);
    gauge("ringlog_ring_epoch", "Ring epoch this node holds", () => sources.ring().epoch);
    gauge("ringlog_vnodes_owned", "Vnodes this node owns", () => sources.ring().owned);
    gauge("ringlog_vnodes_replicated", "Vnodes this node is a primary for", () => sources.ring().replicated);
    gauge("ringlog_members_up", "Members this node sees up", () => sources.ring().membersUp);
    gauge("ringlog_members_down", "Members this node sees down", () => sources.ring().membersDown);
  }

  observe(operation: Operation, outcome: "ok" | "error", seconds: number): void {
    this.latency.observe({ operation, outcome }, seconds);
  }

  observeSiblings(count: number): void {
    this.siblings.observe(count);
  }

  async render(): Promise<{ body: string; contentType: string }> {
    this.scrape++;
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
