/** Admin routes: join and leave, staged, shown as a plan, then committed. */
import type { components } from "./schema.gen.ts";
import type { Handoff } from "../handoff/handoff.ts";
import type { LogStore } from "../log/store.ts";
import type { Membership } from "../membership/membership.ts";
import { type Ring, isRing } from "../ring/ring.ts";
import { PlanError, clearStaged, commit, stageLeave, targetOwners, transfers } from "../ring/plan.ts";
import { JOIN_ROUTE } from "../membership/membership.ts";
import { type Peer, type Transport, TransportError } from "../transport/transport.ts";
import { RinglogError } from "../errors.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { Handler } from "./server.ts";
import { jsonBody } from "./json-body.ts";

type Plan = components["schemas"]["Plan"];

export interface AdminDeps {
  membership: Membership;
  store: LogStore;
  handoff: Handoff;
  transport: Transport;
  replicas: number;
  partitions: number;
  logger: Logger;
}

function perNode(owners: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of [...owners].sort()) out[o] = (out[o] ?? 0) + 1;
  return out;
}

/** The plan as operators see it: staged changes with a preview, or the committed plan's progress. */
export function planView(ring: Ring, n: number, handoff: Handoff): Plan {
  const staged = { join: [...(ring.staged?.join ?? [])], leave: [...(ring.staged?.leave ?? [])] };
  if (ring.pending) {
    const moving = handoff.status();
    return {
      epoch: ring.epoch,
      staged,
      committed: true,
      owners: { current: perNode(ring.owners), target: perNode(ring.pending.owners) },
      transfers: moving,
      transfersDone: moving.filter((t) => t.status === "done").length,
    };
  }
  const target = staged.join.length + staged.leave.length > 0 ? targetOwners(ring, n) : ring.owners;
  const preview = transfers({ ...ring, pending: { owners: target, done: [] } }, n).map((t) => ({
    id: t.id,
    vnode: t.vnode,
    from: t.sources[0]!,
    to: t.to,
    status: "planned" as const,
    keysSent: 0,
    keysTotal: 0,
    bytesSent: 0,
  }));
  return { epoch: ring.epoch, staged, committed: false, owners: { current: perNode(ring.owners), target: perNode(target) }, transfers: preview, transfersDone: 0 };
}

const refused = (err: unknown): never => {
  if (err instanceof PlanError) throw new RinglogError("cluster_change_refused", err.message);
  throw err;
};

export function adminHandlers(deps: AdminDeps): Record<string, Handler> {
  const { membership } = deps;
  const view = () => planView(membership.ring, deps.replicas, deps.handoff);
  const change = (f: (ring: Ring) => Ring) => {
    try {
      membership.updateRing(f);
    } catch (err) {
      refused(err);
    }
    return view();
  };
  return {
    async adminJoin(req) {
      const { seed } = jsonBody<{ seed?: unknown }>(req.body);
      if (typeof seed !== "string" || !URL.canParse(seed)) throw new RinglogError("invalid_request", "seed must be the URL of a cluster member");
      // A node may join when it owns nothing yet, or owns a ring of its own (started alone).
      const owners = new Set(membership.ring.owners);
      if (owners.has(membership.self.id) && owners.size > 1) {
        throw new RinglogError("cluster_change_refused", "this node already owns vnodes in a cluster; make it leave first");
      }
      if (!deps.store.isEmpty()) throw new RinglogError("cluster_change_refused", "this node holds data; only an empty node can join a cluster");
      const peer: Peer = { id: `seed:${seed}`, url: seed.replace(/\/$/, "") };
      let answer: { from: Peer; members: Peer[]; ring: unknown };
      try {
        answer = await deps.transport.call(peer, JOIN_ROUTE, { peer: membership.self });
      } catch (err) {
        if (err instanceof TransportError && err.status === 409) throw new RinglogError("cluster_change_refused", `the seed refused: ${err.reason}`);
        throw new RinglogError("peer_unavailable", `could not join through ${seed}: ${(err as Error).message}`);
      }
      if (!isRing(answer?.ring, deps.partitions)) {
        throw new RinglogError("cluster_change_refused", `the cluster's ring does not fit this node (it runs with ${deps.partitions} vnodes; the cluster's Q must match)`);
      }
      membership.adopt(answer.ring, answer.from, answer.members);
      deps.logger.info({ seed, epoch: answer.ring.epoch }, "joined the cluster's ring; the join is staged");
      return view();
    },
    async adminLeave(req) {
      const body = req.body && (req.body as Buffer).byteLength > 0 ? jsonBody<{ node?: unknown }>(req.body) : {};
      const node = body.node ?? membership.self.id;
      if (typeof node !== "string") throw new RinglogError("invalid_request", "node must be a node id");
      return change((ring) => stageLeave(ring, node));
    },
    async adminPlan() {
      return view();
    },
    async adminClearPlan() {
      return change(clearStaged);
    },
    async adminCommit() {
      const plan = change((ring) => commit(ring, deps.replicas));
      deps.logger.info({ epoch: plan.epoch, transfers: plan.transfers.length, target: plan.owners.target }, "plan committed");
      return plan;
    },
  };
}
