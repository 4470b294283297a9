/** Cluster and debug routes: what this node sees of members, ring, hints and counters. */
import type { components } from "./schema.gen.ts";
import type { HintStore } from "../hints/hints.ts";
import type { Membership } from "../membership/membership.ts";
import type { FaultLayer, FaultRule } from "../transport/faults.ts";
import { RinglogError } from "../errors.ts";
import type { Handler } from "./server.ts";
import type { AntiEntropy } from "../antientropy/antientropy.ts";
import type { Handoff } from "../handoff/handoff.ts";
import { jsonBody } from "./json-body.ts";
import { planView } from "./admin.ts";

type Cluster = components["schemas"]["Cluster"];
type HintQueues = components["schemas"]["HintQueues"];
type FaultRules = components["schemas"]["FaultRules"];
type ClockSkew = components["schemas"]["ClockSkew"];
type AaeStatus = components["schemas"]["AaeStatus"];

export interface ClusterDeps {
  antiEntropy: AntiEntropy;
  /** Vnodes this node replicates. */
  replicated: () => number[];
  monotonic: () => number;
  membership: Membership;
  hints: HintStore;
  replicas: number;
  partitions: number;
  counters: () => Record<string, number>;
  handoff: Handoff;
  faults?: FaultLayer;
}

export function clusterHandlers(deps: ClusterDeps): Record<string, Handler> {
  const faults = () => {
    if (!deps.faults) throw new RinglogError("not_found", "the fault layer is off (RINGLOG_TEST_FAULTS)");
    return deps.faults;
  };
  return {
    async getCluster(): Promise<Cluster> {
      const ring = deps.membership.ring;
      return {
        node: deps.membership.self.id,
        replicas: deps.replicas,
        members: deps.membership.members(),
        ring: { epoch: ring.epoch, partitions: deps.partitions, owners: [...ring.owners], ...(ring.removed?.length ? { removed: [...ring.removed] } : {}) },
        ...(ring.pending || ring.staged ? { handoff: planView(ring, deps.replicas, deps.handoff) } : {}),
      };
    },
    async getHints(): Promise<HintQueues> {
      const queues = deps.hints.queues();
      return { queues, total: queues.reduce((n, q) => n + q.count, 0), delivered: deps.hints.delivered, failedDeliveries: deps.hints.failedDeliveries };
    },
    async getAae(): Promise<AaeStatus> {
      const now = deps.monotonic();
      return {
        ...deps.antiEntropy.stats,
        vnodes: deps.replicated().map((vnode) => {
          const last = deps.antiEntropy.last.get(vnode);
          return {
            vnode,
            root: deps.antiEntropy.root(vnode).toString(16),
            ...(last ? { lastExchangeAgoMs: Math.round(now - last.atMs), peer: last.peer, keysRepaired: last.keysRepaired } : {}),
          };
        }),
      };
    },
    async getCounters() {
      return deps.counters();
    },
    async getFaults(): Promise<FaultRules> {
      return { rules: faults().getRules() };
    },
    async putFaults(req): Promise<FaultRules> {
      const layer = faults();
      const body = jsonBody<FaultRules>(req.body);
      const ok = Array.isArray(body?.rules) && body.rules.every((r) => typeof r.peer === "string" && (r.action === "drop" || r.action === "delay"));
      if (!ok) throw new RinglogError("invalid_request", "rules must be [{peer, action: drop|delay, delayMs?}]");
      layer.setRules(body.rules as FaultRule[]);
      return { rules: layer.getRules() };
    },
    async getClock(): Promise<ClockSkew> {
      return { offsetMs: faults().clockOffsetMs };
    },
    async putClock(req): Promise<ClockSkew> {
      const layer = faults();
      const body = jsonBody<ClockSkew>(req.body);
      if (!Number.isInteger(body?.offsetMs)) throw new RinglogError("invalid_request", "offsetMs must be an integer");
      layer.clockOffsetMs = body.offsetMs;
      return { offsetMs: layer.clockOffsetMs };
    },
  };
}
