/**
 * The coordinator's view of other replicas: segment shipping and state reads, each
 * coalesced per peer so one internal request carries everything queued for that peer.
 */
import type { Replicas } from "../coordinator/coordinator.ts";
import type { Membership } from "../membership/membership.ts";
import { type Segment, type SegmentWire, coalesce, segmentToWire } from "../segment/segment.ts";
import { Batcher } from "./batcher.ts";
import type { Link } from "@opentelemetry/api";
import { type Transport, TransportError } from "./transport.ts";

export const APPLY_ROUTE = "/internal/apply";
export const READ_ROUTE = "/internal/read";

export interface ReplicaTraffic {
  applyCalls: number;
  applySegments: number;
  readCalls: number;
}

export class ReplicaClient implements Replicas {
  readonly traffic: ReplicaTraffic = { applyCalls: 0, applySegments: 0, readCalls: 0 };
  private readonly applies: Batcher<Segment, undefined>;
  private readonly reads: Batcher<[number, string], Uint8Array | null>;

  constructor(
    private readonly transport: Transport,
    private readonly membership: Membership,
    maxInFlight: number,
  ) {
    this.applies = new Batcher(async (peer, segments, links) => {
      await this.ship(peer, segments, links);
      return segments.map(() => undefined);
    }, maxInFlight);
    this.reads = new Batcher(async (peer, keys, links) => {
      this.traffic.readCalls++;
      const states = await this.transport.call<unknown>(this.peer(peer), READ_ROUTE, keys, undefined, links);
      if (!Array.isArray(states) || states.length !== keys.length || !states.every((s) => s === null || s instanceof Uint8Array)) {
        throw new TransportError(peer, "malformed read answer");
      }
      return states as (Uint8Array | null)[];
    }, maxInFlight);
  }

  private peer(id: string) {
    const p = this.membership.peer(id);
    if (!p) throw new TransportError(id, "address unknown");
    return p;
  }

  /** Sends segments to a peer in one call, merged per vnode; resolves when all are committed there. */
  async ship(peer: string, segments: Segment[], links: Link[] = []): Promise<void> {
    const merged = coalesce(segments);
    this.traffic.applyCalls++;
    this.traffic.applySegments += merged.length;
    await this.transport.call<number>(this.peer(peer), APPLY_ROUTE, merged.map(segmentToWire) satisfies SegmentWire[], undefined, links);
  }

  apply(peer: string, segment: Segment): Promise<void> {
    return this.applies.submit(peer, segment);
  }

  /** The peer's stored state bytes for the key (decoding is the coordinator's, once per distinct answer). */
  read(peer: string, vnode: number, key: string): Promise<Uint8Array | null> {
    return this.reads.submit(peer, [vnode, key]);
  }
}
