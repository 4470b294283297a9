/**
 * The coordinator runs a client's get, put and delete. On one node it is the whole story:
 * a write becomes an event stamped with this node's actor and the next dot for the key,
 * checked against the limits, and group-committed to the key's vnode log.
 */
import { type CausalContext, actorCount, emptyContext } from "../clock/context.ts";
import { type KeyState, applyEvent, nextDot } from "../clock/fold.ts";
import type { Event } from "../event/event.ts";
import type { Identity } from "../log/identity.ts";
import type { LogStore } from "../log/store.ts";
import { vnodeOf } from "../ring/partition.ts";
import { RinglogError } from "../errors.ts";
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

export class Coordinator {
  constructor(
    private readonly store: LogStore,
    private readonly identity: Identity,
    private readonly limits: CoordinatorLimits,
    private readonly resolvers: readonly ResolverRule[],
    private readonly now: () => number,
  ) {}

  vnodeOf(key: string): number {
    return vnodeOf(key, this.identity.partitions);
  }

  async get(key: string): Promise<KeyState> {
    return resolve(resolverFor(this.resolvers, key), this.store.read(this.vnodeOf(key), key));
  }

  async write(req: WriteRequest): Promise<KeyState> {
    const mode = resolverFor(this.resolvers, req.key);
    const outcome = await this.store.write(this.vnodeOf(req.key), req.key, (state) => {
      // A blind delete, or any blind write under lww, replaces what this node has seen.
      const context = req.context ?? (req.value === null || mode === "lww" ? state.ctx : emptyContext());
      const event: Event = {
        key: req.key,
        dot: nextDot(state, this.identity.actor),
        context,
        value: req.value,
        contentType: req.contentType,
        ts: this.now(),
        ...(req.origin ? { origin: req.origin } : {}),
      };
      const next = applyEvent(state, event);
      if (next.siblings.length > this.limits.maxSiblings) {
        return {
          reject: new RinglogError("too_many_siblings", `key would have ${next.siblings.length} versions; resolve its siblings first`, {
            limit: this.limits.maxSiblings,
            siblings: state.siblings.length,
          }),
        };
      }
      const actors = actorCount(next.ctx);
      if (actors > this.limits.maxContextActors) {
        return {
          reject: new RinglogError("invalid_context", `causal context would name ${actors} actors`, { limit: this.limits.maxContextActors }),
        };
      }
      return { entry: { kind: "event", event }, next };
    });
    return resolve(mode, outcome.state);
  }
}
