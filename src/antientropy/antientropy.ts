/**
 * Active anti-entropy: one Merkle tree per vnode, kept current by every committed change
 * and rebuilt from the projection at start-up; a paced loop that exchanges one vnode at a
 * time with each other replica of it, descending only into differing subtrees, and ships
 * the differing keys' states both ways as segments, applied with the usual fold.
 */
import type { Logger } from "pino";
import { type StateWire, decodeState, isTombstone, stateFromWire, stateToWire } from "../clock/fold.ts";
import { trace } from "@opentelemetry/api";
import type { LogEntry } from "../log/entry.ts";
import { entryOrigins, inOwnTrace, linksTo } from "../telemetry/origin.ts";
import type { LogStore, StateChange } from "../log/store.ts";
import type { Membership } from "../membership/membership.ts";
import type { Transport } from "../transport/transport.ts";
import { FANOUT, MerkleTree, differing, leafOf, stateDigest } from "./merkle.ts";

export const AAE_ROUTE = "/internal/aae";

export type AaeRequest =
  | { op: "roots" }
  | { op: "tree"; vnode: number }
  | { op: "leaves"; vnode: number; branches: number[] }
  | { op: "keys"; vnode: number; leaves: number[] }
  | { op: "push"; vnode: number; states: [string, StateWire][] }
  | { op: "pull"; vnode: number; keys: string[] }
  | { op: "collect"; vnode: number; tombstones: [string, bigint][] };

export interface VnodeExchange {
  vnode: number;
  peer: string;
  atMs: number;
  keysRepaired: number;
}

export interface AaeStats {
  rounds: number;
  exchanges: number;
  /** Vnode turns passed over because the vnode was taking writes. */
  deferred: number;
  keysRepaired: number;
  /** Bytes of AAE request and response bodies this node sent and received as initiator. */
  bytesSent: number;
  bytesReceived: number;
  lastRebuildMs: number;
  tombstonesCollected: number;
  /** Completed passes over all of a vnode's states to find its tombstones (once per vnode after start-up; at once for a vnode empty then). */
  tombstoneScans: number;
}

export interface AntiEntropyOptions {
  store: LogStore;
  membership: Membership;
  transport: Transport;
  partitions: number;
  /** The vnodes this node replicates, and each one's other replicas, under the current ring. */
  replicasOf: (vnode: number) => string[];
  intervalMs: number;
  monotonic: () => number;
  logger: Logger;
  /** Counts AAE bytes on the wire (request, response). */
  traffic: () => { sent: number; received: number };
  /**
   * A vnode written to within this long is passed over (its replicas are most likely only
   * apart by writes in flight, and comparing would scan it under load), but never for longer
   * than maxDeferMs in a row.
   */
  quietMs: number;
  maxDeferMs: number;
  /** Wall clock, and how old a tombstone must be before it may be collected. */
  now: () => number;
  tombstoneGraceMs: number;
}

/** States a visit of the first tombstone pass decodes: about a millisecond of work. */
const TOMBSTONE_PASS_STEP = 512;

const toBytes = (a: BigUint64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const fromBytes = (b: Uint8Array) => new BigUint64Array(new Uint8Array(b).buffer);

export class AntiEntropy {
  private readonly trees: MerkleTree[];
  readonly stats: AaeStats = { rounds: 0, exchanges: 0, deferred: 0, keysRepaired: 0, bytesSent: 0, bytesReceived: 0, lastRebuildMs: 0, tombstonesCollected: 0, tombstoneScans: 0 };
  readonly last = new Map<number, VnodeExchange>();
  /** Per vnode, the root each peer was last found to share with this node. */
  private readonly agreed = new Map<number, Map<string, bigint>>();
  /**
   * Per peer, every vnode's root as the peer had it when this round began: one call per peer
   * per round instead of one per vnode. A vnode whose root still matches is not exchanged;
   * one the peer changed since is found in the next round.
   */
  private readonly roundRoots = new Map<string, BigUint64Array>();
  /**
   * Per vnode, the keys whose state is a tombstone, kept current from every committed change,
   * and how far the first pass over the vnode's stored states has come (undefined once it is
   * done; "" before it starts). Collection reads only the kept keys. Before, every collection
   * round decoded every state of the vnode in one go: under a read-only load that was 16% of
   * the initiating node's profile samples. The first pass after start-up goes a bounded
   * number of states per visit, so it never holds the event loop for long.
   */
  private readonly tombstoneKeys: Set<string>[];
  private readonly tombstonePass: (string | undefined)[];
  private cursor: number;
  /** Per vnode, when it last changed and when it was last exchanged (monotonic ms). */
  private readonly lastWrite: Float64Array;
  private readonly lastExchange: Float64Array;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(private readonly o: AntiEntropyOptions) {
    this.trees = Array.from({ length: o.partitions }, () => new MerkleTree());
    this.tombstoneKeys = Array.from({ length: o.partitions }, () => new Set<string>());
    this.tombstonePass = new Array<string | undefined>(o.partitions).fill("");
    // Nodes start their rounds at different vnodes: two initiators that both find a third
    // replica behind then rarely repair the same vnode at the same moment.
    this.cursor = Number(Bun.hash.wyhash(o.membership.self.id) % BigInt(o.partitions));
    this.lastWrite = new Float64Array(o.partitions).fill(-Infinity);
    // Under steady writes every vnode waits out maxDeferMs; staggered start times keep their
    // forced exchanges spread out instead of all coming due in the same round.
    const now = o.monotonic();
    this.lastExchange = Float64Array.from({ length: o.partitions }, (_, v) => now - (o.maxDeferMs * v) / o.partitions);
  }

  /**
   * Builds every tree from the projection: one pass over the stored states. A vnode that
   * holds no state has no tombstone from before start-up: its first pass is done already.
   * (On a fresh node under load, the pass would otherwise chase every new key of every vnode.)
   */
  rebuild(): void {
    const started = this.o.monotonic();
    for (let v = 0; v < this.o.partitions; v++) {
      const t = new MerkleTree();
      let states = 0;
      for (const row of this.o.store.scan(v)) {
        t.update(row.key, null, stateDigest(row.state));
        states++;
      }
      this.trees[v] = t;
      if (states === 0) this.passDone(v);
    }
    this.stats.lastRebuildMs = Math.round(this.o.monotonic() - started);
  }

  onChange = (changes: StateChange[]): void => {
    const now = this.o.monotonic();
    for (const c of changes) {
      this.trees[c.vnode]!.update(c.key, c.before ? stateDigest(c.before) : null, c.after ? stateDigest(c.after) : null);
      this.lastWrite[c.vnode] = now;
      if (c.tombstone) this.tombstoneKeys[c.vnode]!.add(c.key);
      else this.tombstoneKeys[c.vnode]!.delete(c.key);
    }
  };

  root(vnode: number): bigint {
    return this.trees[vnode]!.root();
  }

  start(): void {
    if (this.o.intervalMs <= 0) return;
    const loop = async () => {
      if (this.stopped) return;
      try {
        await this.step();
      } catch (err) {
        this.o.logger.debug({ err: (err as Error).message }, "anti-entropy exchange failed; the next round retries");
      }
      if (!this.stopped) this.timer = setTimeout(loop, this.o.intervalMs);
    };
    this.timer = setTimeout(loop, this.o.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Exchanges the next vnode with each of its other replicas (the smaller id initiates a pair). */
  async step(): Promise<void> {
    const vnode = this.cursor;
    if (vnode === 0) this.roundRoots.clear();
    this.cursor = (this.cursor + 1) % this.o.partitions;
    if (this.cursor === 0) this.stats.rounds++;
    this.findTombstones(vnode);
    const now = this.o.monotonic();
    if (now - this.lastWrite[vnode]! < this.o.quietMs && now - this.lastExchange[vnode]! < this.o.maxDeferMs) {
      this.stats.deferred++;
      return;
    }
    this.lastExchange[vnode] = now;
    const self = this.o.membership.self.id;
    for (const peer of this.o.replicasOf(vnode)) {
      if (peer > self && this.o.membership.isUp(peer) && !(await this.sameRoot(vnode, peer))) await this.exchange(vnode, peer);
    }
    await this.collectTombstones(vnode);
  }

  /**
   * Collects the vnode's tombstones once every replica is known to hold them: this node
   * (the smallest id, which exchanges with all the others) found the same root on every
   * other replica, nothing has changed since, every replica is up, and no node holds hints
   * for the vnode (a hint could carry a write the tombstone covers). The grace period only
   * adds to those conditions; it never suffices alone.
   */
  private async collectTombstones(vnode: number): Promise<void> {
    const self = this.o.membership.self.id;
    const peers = this.o.replicasOf(vnode);
    const root = this.trees[vnode]!.root();
    const agreed = this.agreed.get(vnode);
    if (peers.length === 0 || peers.some((p) => p < self || !this.o.membership.isUp(p) || agreed?.get(p) !== root)) return;
    if (this.o.membership.mayHoldHints(vnode)) return;
    // While ownership is changing, the incoming primaries are not yet among the replicas
    // compared here: a collection now could leave them holding a tombstone nobody else has.
    if (this.o.membership.ring.pending) return;
    if (this.tombstonePass[vnode] !== undefined) return;
    const cutoff = this.o.now() - this.o.tombstoneGraceMs;
    const tombstones: [string, bigint][] = [];
    for (const [key, bytes] of this.tombstonesOf(vnode)) {
      const state = decodeState(bytes);
      if (isTombstone(state) && state.siblings.every((v) => v.ts < cutoff)) tombstones.push([key, stateDigest(bytes)]);
    }
    if (tombstones.length === 0) return;
    for (const p of peers) {
      const peer = this.o.membership.peer(p);
      if (!peer) return;
      await this.o.transport.call<number>(peer, AAE_ROUTE, { op: "collect", vnode, tombstones } satisfies AaeRequest);
    }
    const outcomes = await this.o.store.applyEntries(vnode, tombstones.map(([key, digest]) => ({ kind: "collect", key, digest })));
    this.stats.tombstonesCollected += outcomes.filter((o) => o.appended).length;
  }

  /** Takes the vnode's first pass over its stored states a bounded step further. */
  private findTombstones(vnode: number): void {
    const after = this.tombstonePass[vnode];
    if (after === undefined) return;
    const rows = this.o.store.statesAfter(vnode, after, TOMBSTONE_PASS_STEP);
    // A key changed since start-up is already right in the set (the change kept it); reading
    // its current state again can only agree.
    const keys = this.tombstoneKeys[vnode]!;
    for (const row of rows) if (isTombstone(decodeState(row.state))) keys.add(row.key);
    if (rows.length === TOMBSTONE_PASS_STEP) {
      this.tombstonePass[vnode] = rows.at(-1)!.key;
      return;
    }
    this.passDone(vnode);
  }

  private passDone(vnode: number): void {
    this.tombstonePass[vnode] = undefined;
    this.stats.tombstoneScans++;
  }

  /** The vnode's kept tombstones and their stored bytes. */
  private tombstonesOf(vnode: number): [string, Uint8Array][] {
    const out: [string, Uint8Array][] = [];
    for (const key of this.tombstoneKeys[vnode]!) {
      const bytes = this.o.store.readBytes(vnode, key);
      if (bytes) out.push([key, bytes]);
    }
    return out;
  }

  /** Local keys of the given leaves with their digests. */
  private keysIn(vnode: number, leaves: Set<number>): Map<string, { digest: bigint; state: Uint8Array }> {
    const out = new Map<string, { digest: bigint; state: Uint8Array }>();
    for (const row of this.o.store.scan(vnode)) if (leaves.has(leafOf(row.key))) out.set(row.key, { digest: stateDigest(row.state), state: row.state });
    return out;
  }

  /** Whether the peer had this vnode's root, as this node has it now, when the round began. */
  private async sameRoot(vnode: number, peerId: string): Promise<boolean> {
    let roots = this.roundRoots.get(peerId);
    if (!roots) {
      const peer = this.o.membership.peer(peerId);
      if (!peer) return false;
      const before = { ...this.o.traffic() };
      try {
        roots = fromBytes(await this.o.transport.call<Uint8Array>(peer, AAE_ROUTE, { op: "roots" } satisfies AaeRequest));
      } catch {
        // The exchange asks again, and fails or succeeds on its own.
        return false;
      } finally {
        this.addTraffic(before);
      }
      if (roots.length !== this.o.partitions) return false;
      this.roundRoots.set(peerId, roots);
    }
    const root = this.trees[vnode]!.root();
    if (roots[vnode] !== root) return false;
    this.agree(vnode, peerId, root);
    this.noteExchange(vnode, peerId, 0);
    return true;
  }

  /** Adds the anti-entropy bytes this node sent and received since `before` to its totals. */
  private addTraffic(before: { sent: number; received: number }): void {
    const after = this.o.traffic();
    this.stats.bytesSent += after.sent - before.sent;
    this.stats.bytesReceived += after.received - before.received;
  }

  /** Records one comparison of the vnode with a peer, and the keys it repaired. */
  private noteExchange(vnode: number, peerId: string, repaired: number): void {
    this.stats.exchanges++;
    this.stats.keysRepaired += repaired;
    this.last.set(vnode, { vnode, peer: peerId, atMs: this.o.monotonic(), keysRepaired: repaired });
  }

  private agree(vnode: number, peerId: string, root: bigint): void {
    if (!this.agreed.has(vnode)) this.agreed.set(vnode, new Map());
    this.agreed.get(vnode)!.set(peerId, root);
  }

  async exchange(vnode: number, peerId: string): Promise<number> {
    const peer = this.o.membership.peer(peerId);
    if (!peer) return 0;
    const before = { ...this.o.traffic() };
    const call = <T>(req: AaeRequest) => this.o.transport.call<T>(peer, AAE_ROUTE, req);
    const tree = this.trees[vnode]!;
    let repaired = 0;
    try {
      const [root, branches] = await call<[Uint8Array, Uint8Array]>({ op: "tree", vnode });
      const remoteRoot = fromBytes(root)[0]!;
      if (remoteRoot === tree.root()) {
        this.agree(vnode, peerId, remoteRoot);
        return 0;
      }
      const diffBranches = differing(tree.branches(), fromBytes(branches));
      const remoteLeaves = await call<Uint8Array[]>({ op: "leaves", vnode, branches: diffBranches });
      const diffLeaves = diffBranches.flatMap((b, i) => differing(tree.leafRange(b), fromBytes(remoteLeaves[i]!)).map((l) => b * FANOUT + l));
      const remoteKeys = new Map((await call<[string, Uint8Array][]>({ op: "keys", vnode, leaves: diffLeaves })).map(([k, d]) => [k, fromBytes(d)[0]!]));
      const localKeys = this.keysIn(vnode, new Set(diffLeaves));
      const push = [...localKeys].filter(([k, l]) => remoteKeys.get(k) !== l.digest);
      const pull = [...remoteKeys].filter(([k, d]) => localKeys.get(k)?.digest !== d).map(([k]) => k);
      const pushed = push.map(([key, l]) => ({ kind: "state" as const, key, state: decodeState(l.state) }));
      await inOwnTrace("aae.repair", pushed, { "ringlog.vnode": vnode, "ringlog.peer": peerId, "ringlog.pushed": push.length, "ringlog.pulled": pull.length }, async () => {
        if (push.length > 0) await call<number>({ op: "push", vnode, states: pushed.map((e) => [e.key, stateToWire(e.state)]) });
        if (pull.length > 0) {
          const states = await call<[string, StateWire][]>({ op: "pull", vnode, keys: pull });
          const pulled = states.map(([key, w]): LogEntry => ({ kind: "state", key, state: stateFromWire(w) }));
          trace.getActiveSpan()?.addLinks(linksTo(pulled.flatMap(entryOrigins)));
          await this.o.store.applyEntries(vnode, pulled);
        }
      });
      repaired = new Set([...push.map(([k]) => k), ...pull]).size;
      return repaired;
    } finally {
      this.addTraffic(before);
      this.noteExchange(vnode, peerId, repaired);
    }
  }

  /** Answers a peer's exchange request. */
  async handle(req: AaeRequest): Promise<unknown> {
    if (req.op === "roots") return toBytes(BigUint64Array.from(this.trees, (t) => t.root()));
    const tree = this.trees[req.vnode]!;
    switch (req.op) {
      case "tree":
        return [toBytes(new BigUint64Array([tree.root()])), toBytes(tree.branches())];
      case "leaves":
        return req.branches.map((b) => toBytes(tree.leafRange(b)));
      case "keys":
        return [...this.keysIn(req.vnode, new Set(req.leaves))].map(([k, l]) => [k, toBytes(new BigUint64Array([l.digest]))]);
      case "push":
        await this.o.store.applyEntries(req.vnode, req.states.map(([key, w]) => ({ kind: "state", key, state: stateFromWire(w) })));
        return req.states.length;
      case "pull":
        return req.keys.map((k) => [k, stateToWire(this.o.store.read(req.vnode, k))]);
      case "collect": {
        const outcomes = await this.o.store.applyEntries(req.vnode, req.tombstones.map(([key, digest]) => ({ kind: "collect", key, digest: BigInt(digest) })));
        const collected = outcomes.filter((o) => o.appended).length;
        this.stats.tombstonesCollected += collected;
        return collected;
      }
    }
  }
}

