/**
 * The coordinator runs a client's get, put and delete across the key's replicas.
 *
 * A write becomes an event stamped with this node's actor and the next dot for the key,
 * committed to the local log first (so this actor's history of the key is always local and
 * dots are never reused), then shipped as a segment to the other primaries. An unreachable
 * primary is replaced by the next healthy fallback, which holds the event as a hint naming
 * the owner (sloppy quorum); with no fallback left, this node keeps the hint itself. The
 * answer comes after W acks (PW of them from primaries), or 503 when that cannot happen in
 * time. A read asks the primaries, answers after R, merges their states, and repairs
 * replicas that were behind once every reply is in.
 */
import { type CausalContext, actorCount, emptyContext } from "../clock/context.ts";
import { type KeyState, EMPTY_STATE, applyEvent, mergeStates, nextDot, replicaDecoder, statesEqual } from "../clock/fold.ts";
import type { Event } from "../event/event.ts";
import type { LogEntry } from "../log/entry.ts";
import type { Identity } from "../log/identity.ts";
import type { LogStore } from "../log/store.ts";
import type { HintStore } from "../hints/hints.ts";
import { type PreferenceList, type Ring, preferenceList } from "../ring/ring.ts";
import { transfers } from "../ring/plan.ts";
import { vnodeOf } from "../ring/partition.ts";
import type { Segment } from "../segment/segment.ts";
import { RinglogError } from "../errors.ts";
import { type Need, type Tally, verdict } from "./quorum.ts";
import { SpanStatusCode, type Span } from "@opentelemetry/api";
import { tracer } from "../telemetry/tracing.ts";
import { currentOrigin, linkTo, linksTo, originsOf } from "../telemetry/origin.ts";
import { type ResolverRule, resolve, resolverFor } from "./resolver.ts";

export interface WriteRequest {
  key: string;
  /** null writes a tombstone. */
  value: Uint8Array | null;
  contentType: string;
  /** The context of the read this write follows, if any. */
  context: CausalContext | null;
  /** Trace id of the client request, kept with the event. */
  origin?: string;
}

export interface CoordinatorLimits {
  maxSiblings: number;
  maxContextActors: number;
}

/** How this node reaches other replicas (batched per peer underneath). */
export interface Replicas {
  apply(peer: string, segment: Segment): Promise<void>;
  /** The replica's stored state bytes for the key, null when it has none. */
  read(peer: string, vnode: number, key: string): Promise<Uint8Array | null>;
}

export interface ClusterView {
  readonly ring: Ring;
  isUp(id: string): boolean;
}

/** What a response reports about how it was reached. */
export interface ConsistencyReport {
  asked: string[];
  answered: string[];
  /** Fallback nodes that acked a write in place of a primary, as "fallback>owner". */
  fallbacks: string[];
}

export interface Quorum {
  total: number;
  primaries: number;
}

export interface CoordinatorCounters {
  readRepairs: number;
  fallbackWrites: number;
  localHints: number;
  /** Hints this coordinator could not store (a full disk, say): the owner gets those writes from anti-entropy. */
  localHintFailures: number;
  quorumFailures: number;
  /** Writes an incoming primary did not take while its vnode was being handed off (anti-entropy repairs them). */
  handoffWritesMissed: number;
}

export interface CoordinatorOptions {
  store: LogStore;
  hints: HintStore;
  identity: Identity;
  limits: CoordinatorLimits;
  resolvers: readonly ResolverRule[];
  now: () => number;
  cluster: ClusterView;
  replicas: Replicas;
  n: number;
  timeoutMs: number;
  /** Told of every coordinated operation's latency and outcome, and of every read's sibling count. */
  observer?: {
    observe(operation: "get" | "put" | "delete", outcome: "ok" | "error", seconds: number): void;
    observeSiblings(count: number): void;
  };
}

/** Waits on a set of replica calls until the quorum is met, cannot be met, or time runs out. */
class Round {
  readonly tally: Tally = { ok: 0, primaryOk: 0, pending: 0, primaryPending: 0 };
  readonly answered: string[] = [];
  private wake: (() => void) | undefined;

  constructor(private readonly need: Need) {}

  start(primary: boolean): void {
    this.tally.pending++;
    if (primary) this.tally.primaryPending++;
  }

  settle(node: string, primary: boolean, ok: boolean): void {
    this.tally.pending--;
    if (primary) this.tally.primaryPending--;
    if (ok) {
      this.tally.ok++;
      if (primary) this.tally.primaryOk++;
      this.answered.push(node);
    }
    if (verdict(this.tally, this.need) !== "waiting") this.wake?.();
  }

  async outcome(timeoutMs: number): Promise<boolean> {
    if (verdict(this.tally, this.need) === "waiting") {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
    }
    return verdict(this.tally, this.need) === "met";
  }
}

export class Coordinator {
  readonly counters: CoordinatorCounters = { readRepairs: 0, fallbackWrites: 0, localHints: 0, localHintFailures: 0, quorumFailures: 0, handoffWritesMissed: 0 };
  /** Preference lists of the current ring, computed once per ring (they are on every request's path). */
  private placement: { ring: Ring; n: number; lists: PreferenceList[]; incoming: string[][] } | undefined;

  constructor(private readonly o: CoordinatorOptions) {}

  private placementOf(): { n: number; lists: PreferenceList[]; incoming: string[][] } {
    const ring = this.o.cluster.ring;
    if (this.placement?.ring !== ring) {
      const n = Math.min(this.o.n, new Set(ring.owners).size);
      const incoming = ring.owners.map((): string[] => []);
      for (const t of transfers(ring, this.o.n)) incoming[t.vnode]!.push(t.to);
      this.placement = { ring, n, lists: ring.owners.map((_, v) => preferenceList(ring, v, n)), incoming };
    }
    return this.placement;
  }

  get self(): string {
    return this.o.identity.nodeId;
  }

  /** A request hashes its key several times on its way through (route, trace, replicas): once is enough. */
  private lastKey: string | undefined;
  private lastVnode = 0;

  vnodeOf(key: string): number {
    if (key !== this.lastKey) {
      this.lastVnode = vnodeOf(key, this.o.identity.partitions);
      this.lastKey = key;
    }
    return this.lastVnode;
  }

  /** N as configured, but never more than the nodes that own vnodes. */
  replicaCount(): number {
    return this.placementOf().n;
  }

  /** The primaries of a vnode under the current ring. */
  primariesOf(vnode: number): string[] {
    return this.placementOf().lists[vnode]!.primaries;
  }

  primaries(key: string): string[] {
    return this.placementOf().lists[this.vnodeOf(key)]!.primaries;
  }

  /**
   * Where a write of this key should be coordinated: null for here (this node is a primary,
   * or no primary answers), otherwise the first healthy primary.
   */
  writeTarget(key: string): string | null {
    const primaries = this.primaries(key);
    if (primaries.includes(this.self)) return null;
    return primaries.find((p) => this.o.cluster.isUp(p)) ?? null;
  }

  /** Runs one client operation in a coordinator span that records how it was reached. */
  private traced<T extends { state: KeyState; report: ConsistencyReport }>(op: "get" | "put" | "delete", key: string, run: () => Promise<T>): Promise<T> {
    return tracer.startActiveSpan(`coordinator.${op}`, { attributes: { "ringlog.vnode": this.vnodeOf(key) } }, async (span: Span) => {
      const started = performance.now();
      let outcome: "ok" | "error" = "error";
      try {
        const out = await run();
        outcome = "ok";
        if (op === "get") this.o.observer?.observeSiblings(out.state.siblings.filter((v) => v.value !== null).length);
        if (span.isRecording()) {
          span.setAttributes({
            "ringlog.replicas.asked": out.report.asked.join(","),
            "ringlog.replicas.answered": out.report.answered.join(","),
            "ringlog.fallbacks": out.report.fallbacks.join(","),
            "ringlog.siblings": out.state.siblings.length,
          });
        }
        return out;
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        throw err;
      } finally {
        this.o.observer?.observe(op, outcome, (performance.now() - started) / 1000);
        span.end();
      }
    });
  }

  get(key: string, quorum: Quorum): Promise<{ state: KeyState; report: ConsistencyReport }> {
    return this.traced("get", key, () => this.read(key, quorum));
  }

  private async read(key: string, quorum: Quorum): Promise<{ state: KeyState; report: ConsistencyReport }> {
    const vnode = this.vnodeOf(key);
    const primaries = this.primaries(key);
    const round = new Round(quorum);
    const states = new Map<string, KeyState>();
    const decode = replicaDecoder();
    const calls = primaries.map(async (node) => {
      if (node !== this.self && !this.o.cluster.isUp(node)) return;
      round.start(true);
      try {
        const bytes = node === this.self ? this.o.store.readBytes(vnode, key) : await this.o.replicas.read(node, vnode, key);
        states.set(node, decode(bytes));
        round.settle(node, true, true);
      } catch {
        round.settle(node, true, false);
      }
    });
    const asked = primaries.filter((p) => p === this.self || this.o.cluster.isUp(p));
    const met = await round.outcome(this.o.timeoutMs);
    const report = { asked, answered: [...round.answered], fallbacks: [] };
    if (!met) throw this.unavailable("read", quorum, report);
    const merged = [...states.values()].reduce(mergeStates, EMPTY_STATE);
    const cause = currentOrigin();
    void Promise.allSettled(calls).then(() => this.repair(vnode, key, states, cause));
    return { state: resolve(resolverFor(this.o.resolvers, key), merged), report };
  }

  /**
   * Sends the merged state to every replica that answered with less, in a trace of its own
   * linked to the read that found the difference and to the writes being repaired.
   */
  private async repair(vnode: number, key: string, states: Map<string, KeyState>, cause: string | undefined): Promise<void> {
    if (states.size < 2) return;
    const merged = [...states.values()].reduce(mergeStates, EMPTY_STATE);
    const behind = [...states].filter(([, s]) => !statesEqual(s, merged)).map(([node]) => node);
    if (behind.length === 0) return;
    const links = [linkTo(cause), ...linksTo(originsOf(merged))].filter((l) => l !== undefined);
    const entry: LogEntry = { kind: "state", key, state: merged };
    await tracer.startActiveSpan("read.repair", { root: true, links, attributes: { "ringlog.vnode": vnode, "ringlog.repaired": behind.join(",") } }, async (span) => {
      await Promise.allSettled(
        behind.map(async (node) => {
          this.counters.readRepairs++;
          if (node === this.self) await this.o.store.applyEntries(vnode, [entry]);
          else await this.o.replicas.apply(node, { vnode, entries: [entry] });
        }),
      );
      span.end();
    });
  }

  write(req: WriteRequest, quorum: Quorum): Promise<{ state: KeyState; report: ConsistencyReport }> {
    return this.traced(req.value === null ? "delete" : "put", req.key, () => this.replicate(req, quorum));
  }

  private async replicate(req: WriteRequest, quorum: Quorum): Promise<{ state: KeyState; report: ConsistencyReport }> {
    const vnode = this.vnodeOf(req.key);
    const placement = this.placementOf();
    const { primaries, fallbacks } = placement.lists[vnode]!;
    const context = req.context ?? (req.value === null ? (await this.read(req.key, { total: 1, primaries: 0 })).state.ctx : null);
    const outcome = await this.commitLocally(vnode, { ...req, context });
    const entries = [outcome.entry];

    const selfPrimary = primaries.includes(this.self);
    const round = new Round(quorum);
    round.start(selfPrimary);
    round.settle(this.self, selfPrimary, true);
    const report: ConsistencyReport = { asked: [this.self], answered: round.answered, fallbacks: [] };
    const spare = fallbacks.filter((f) => f !== this.self && this.o.cluster.isUp(f));

    const viaFallback = async (owner: string): Promise<void> => {
      for (let f = spare.shift(); f !== undefined; f = spare.shift()) {
        report.asked.push(f);
        round.start(false);
        try {
          await this.o.replicas.apply(f, { vnode, hintFor: owner, entries });
          this.counters.fallbackWrites++;
          report.fallbacks.push(`${f}>${owner}`);
          round.settle(f, false, true);
          return;
        } catch {
          round.settle(f, false, false);
        }
      }
      // Nothing awaits this task: thrown from it, a failure would end the process.
      try {
        this.o.hints.add(owner, vnode, entries);
        this.counters.localHints++;
      } catch {
        this.counters.localHintFailures++;
      }
    };

    for (const node of primaries) {
      if (node === this.self) continue;
      if (!this.o.cluster.isUp(node)) {
        void viaFallback(node);
        continue;
      }
      report.asked.push(node);
      round.start(true);
      this.o.replicas.apply(node, { vnode, entries }).then(
        () => round.settle(node, true, true),
        () => {
          round.settle(node, true, false);
          void viaFallback(node);
        },
      );
    }
    // A vnode being handed off also sends its writes to its incoming primaries, which do not
    // count towards W: the copy then misses nothing written while it runs.
    for (const node of placement.incoming[vnode]!) {
      if (node !== this.self && this.o.cluster.isUp(node)) this.o.replicas.apply(node, { vnode, entries }).catch(() => this.counters.handoffWritesMissed++);
    }
    const met = await round.outcome(this.o.timeoutMs);
    if (!met) throw this.unavailable("write", quorum, { ...report, answered: [...report.answered] });
    return { state: resolve(resolverFor(this.o.resolvers, req.key), outcome.state), report: { ...report, answered: [...report.answered] } };
  }

  private async commitLocally(vnode: number, req: WriteRequest): Promise<{ state: KeyState; entry: LogEntry }> {
    const mode = resolverFor(this.o.resolvers, req.key);
    let entry: LogEntry | undefined;
    const outcome = await this.o.store.write(vnode, req.key, (state) => {
      // Any blind write under lww replaces what this node has seen.
      const context = req.context ?? (mode === "lww" ? state.ctx : emptyContext());
      const event: Event = {
        key: req.key,
        dot: nextDot(state, this.o.identity.actor),
        context,
        value: req.value,
        contentType: req.contentType,
        ts: this.o.now(),
        ...(req.origin ? { origin: req.origin } : {}),
      };
      const next = applyEvent(state, event);
      if (next.siblings.length > this.o.limits.maxSiblings) {
        return {
          reject: new RinglogError("too_many_siblings", `key would have ${next.siblings.length} versions; resolve its siblings first`, {
            limit: this.o.limits.maxSiblings,
            siblings: state.siblings.length,
          }),
        };
      }
      const actors = actorCount(next.ctx);
      if (actors > this.o.limits.maxContextActors) {
        return { reject: new RinglogError("invalid_context", `causal context would name ${actors} actors`, { limit: this.o.limits.maxContextActors }) };
      }
      entry = { kind: "event", event };
      return { entry, next };
    });
    return { state: outcome.state, entry: entry! };
  }

  private unavailable(op: string, quorum: Quorum, report: ConsistencyReport): RinglogError {
    this.counters.quorumFailures++;
    return new RinglogError("quorum_unavailable", `${op} quorum not met within ${this.o.timeoutMs} ms`, {
      needed: quorum.total,
      neededPrimaries: quorum.primaries,
      asked: report.asked,
      answered: report.answered,
      fallbacks: report.fallbacks,
    });
  }
}
