/**
 * Who is in the cluster, where they are, whether they answer, and the ring state.
 *
 * Every gossip round this node exchanges its view (members with their addresses, and the
 * ring) with every peer it knows and with seeds it has not identified yet. A successful
 * exchange in either direction is a heartbeat; a peer not heard from for downAfterMs is
 * down. Failure detection is local and only decides where writes go: ownership changes
 * only by explicit join/leave, carried as a ring with a higher epoch.
 */
import type { Logger } from "pino";
import type { Ring } from "../ring/ring.ts";
import { flip, mergeRings } from "../ring/plan.ts";
import type { Peer, Transport } from "../transport/transport.ts";

export type MemberStatus = "up" | "down";

export interface MemberView {
  id: string;
  url: string;
  status: MemberStatus;
  /** Milliseconds since this node last heard from it (absent: never). */
  lastContactAgoMs?: number;
  self: boolean;
}

export interface GossipMessage {
  from: Peer;
  members: Peer[];
  ring: Ring;
  /** Vnodes the sender holds hints for: while any node does, no tombstone there is collected. */
  hinted?: number[];
}

export interface MembershipOptions {
  self: Peer;
  ring: Ring;
  seeds: string[];
  transport: Transport;
  now: () => number;
  gossipIntervalMs: number;
  downAfterMs: number;
  logger: Logger;
  /** Persists a newer ring (learned from gossip or changed here). */
  onRing: (ring: Ring) => void;
  /** N, which decides the transfers a plan needs and so when it flips. */
  replicas: number;
  /** Vnodes this node holds hints for. */
  hintedVnodes: () => number[];
}

export const GOSSIP_ROUTE = "/internal/gossip";
export const JOIN_ROUTE = "/internal/join";

export class Membership {
  private readonly peers = new Map<string, { url: string; lastContact?: number; status?: MemberStatus; hinted?: number[] }>();
  private ringState: Ring;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(private readonly opts: MembershipOptions) {
    this.ringState = opts.ring;
  }

  get self(): Peer {
    return this.opts.self;
  }

  get ring(): Ring {
    return this.ringState;
  }

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      await this.round();
      if (!this.stopped) this.timer = setTimeout(loop, this.opts.gossipIntervalMs);
    };
    void loop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  peer(id: string): Peer | undefined {
    if (id === this.opts.self.id) return this.opts.self;
    const p = this.peers.get(id);
    return p ? { id, url: p.url } : undefined;
  }

  /**
   * Changes the ring here (staging, commit, a finished transfer); the change spreads by
   * gossip. A plan whose transfers are all done flips at once.
   */
  updateRing(change: (ring: Ring) => Ring): Ring {
    this.setRing(change(this.ringState));
    return this.ringState;
  }

  /** Replaces the ring outright: a node joining a cluster takes the cluster's ring. */
  adopt(ring: Ring, from: Peer, members: Peer[]): void {
    this.ringState = ring;
    this.opts.onRing(ring);
    for (const m of members) if (m.id !== this.opts.self.id && !this.removed(m.id) && !this.peers.has(m.id)) this.peers.set(m.id, { url: m.url });
    this.touch(from);
  }

  private setRing(next: Ring): void {
    const flipped = flip(next, this.opts.replicas);
    if (flipped === this.ringState) return;
    if (flipped !== next) this.opts.logger.info({ epoch: flipped.epoch, removed: flipped.removed }, "every transfer is done: ownership flipped");
    if (flipped.removed?.includes(this.opts.self.id) && !this.ringState.removed?.includes(this.opts.self.id)) {
      this.opts.logger.info({ epoch: flipped.epoch }, "this node has left the cluster; once its hint queues are empty it can be stopped");
    }
    this.ringState = flipped;
    for (const id of flipped.removed ?? []) this.peers.delete(id);
    this.opts.onRing(flipped);
  }

  private removed(id: string): boolean {
    return this.ringState.removed?.includes(id) ?? false;
  }

  /**
   * Whether this node holds the cluster's ring state: it has heard from a peer at least
   * once, or it has nobody to hear from (a lone node).
   */
  hasRingState(): boolean {
    const others = new Set([...this.ringState.owners, ...this.peers.keys(), ...this.opts.seeds.filter((u) => u !== this.opts.self.url)]);
    others.delete(this.opts.self.id);
    return others.size === 0 || [...this.peers.values()].some((p) => p.lastContact !== undefined);
  }

  isUp(id: string): boolean {
    if (id === this.opts.self.id) return true;
    const p = this.peers.get(id);
    return p?.lastContact !== undefined && this.opts.now() - p.lastContact <= this.opts.downAfterMs;
  }

  members(): MemberView[] {
    const now = this.opts.now();
    const ids = new Set([this.opts.self.id, ...this.peers.keys(), ...this.ringState.owners, ...(this.ringState.pending?.owners ?? [])]);
    return [...ids].sort().map((id) => {
      const p = this.peers.get(id);
      const self = id === this.opts.self.id;
      return {
        id,
        url: self ? this.opts.self.url : (p?.url ?? ""),
        status: this.isUp(id) ? "up" : "down",
        ...(self ? {} : p?.lastContact !== undefined ? { lastContactAgoMs: now - p.lastContact } : {}),
        self,
      };
    });
  }

  message(): GossipMessage {
    const members = [this.opts.self, ...[...this.peers].map(([id, p]) => ({ id, url: p.url }))];
    return { from: this.opts.self, members, ring: this.ringState, hinted: this.opts.hintedVnodes() };
  }

  /**
   * Whether any node may hold hints for the vnode: this one, any member whose last gossip
   * said so, or any ring member that is down or unheard of (its queues are unknown).
   */
  mayHoldHints(vnode: number): boolean {
    if (this.opts.hintedVnodes().includes(vnode)) return true;
    for (const id of new Set([...this.peers.keys(), ...this.ringState.owners])) {
      if (id === this.opts.self.id) continue;
      const p = this.peers.get(id);
      if (!this.isUp(id) || p?.hinted === undefined || p.hinted.includes(vnode)) return true;
    }
    return false;
  }

  /** Handles a peer's gossip (inbound call or the answer to ours): merge, and note the contact. */
  receive(msg: GossipMessage): void {
    const merged = mergeRings(this.ringState, msg.ring);
    if (merged.epoch > this.ringState.epoch) this.opts.logger.info({ epoch: merged.epoch, from: msg.from.id }, "adopting newer ring");
    this.setRing(merged);
    // A node that left still answers until it is stopped; it is no longer a member.
    if (msg.from.id !== this.opts.self.id && !this.removed(msg.from.id)) {
      this.touch(msg.from);
      this.peers.get(msg.from.id)!.hinted = msg.hinted ?? [];
    }
    for (const m of msg.members) {
      if (m.id !== this.opts.self.id && !this.peers.has(m.id) && !this.removed(m.id)) this.peers.set(m.id, { url: m.url });
    }
  }

  private touch(p: Peer): void {
    const entry = this.peers.get(p.id) ?? { url: p.url };
    entry.url = p.url;
    entry.lastContact = this.opts.now();
    this.peers.set(p.id, entry);
  }

  private async round(): Promise<void> {
    const known = new Set([...this.peers.values()].map((p) => p.url));
    const targets: Peer[] = [
      ...[...this.peers].map(([id, p]) => ({ id, url: p.url })),
      ...this.opts.seeds.filter((url) => url !== this.opts.self.url && !known.has(url)).map((url) => ({ id: `seed:${url}`, url })),
    ];
    const msg = this.message();
    await Promise.all(
      targets.map(async (t) => {
        try {
          this.receive(await this.opts.transport.call<GossipMessage>(t, GOSSIP_ROUTE, msg, this.opts.gossipIntervalMs));
        } catch {
          // Silence is what failure detection measures; nothing else to do.
        }
      }),
    );
    this.logTransitions();
  }

  private logTransitions(): void {
    for (const [id, p] of this.peers) {
      const status: MemberStatus = this.isUp(id) ? "up" : "down";
      if (p.status !== status) {
        if (p.status !== undefined || status === "up") this.opts.logger.info({ member: id, status }, `member ${id} is ${status}`);
        p.status = status;
      }
    }
  }
}
