/** Node-to-node routes: gossip, segment application, replica reads. Bodies are msgpack. */
import { timingSafeEqual } from "node:crypto";
import { packr } from "../event/event.ts";
import type { HintStore } from "../hints/hints.ts";
import type { LogStore } from "../log/store.ts";
import type { GossipMessage, Membership } from "../membership/membership.ts";
import { type SegmentWire, segmentFromWire } from "../segment/segment.ts";
import { entryKey } from "../log/entry.ts";
import type { FaultLayer } from "../transport/faults.ts";
import { FROM_HEADER, MSGPACK, type Peer, SECRET_HEADER } from "../transport/transport.ts";
import { isRing } from "../ring/ring.ts";
import { PlanError, stageJoin } from "../ring/plan.ts";
import type { Logger } from "../telemetry/logger.ts";
import { RinglogError } from "../errors.ts";
import type { DataHandler, Guard, RouteReply, RouteRequest } from "./fast-path.ts";
import type { AaeRequest, AntiEntropy } from "../antientropy/antientropy.ts";

export interface InternalDeps {
  antiEntropy: AntiEntropy;
  store: LogStore;
  hints: HintStore;
  membership: Membership;
  secret: string;
  faults?: FaultLayer;
  partitions: number;
  logger: Logger;
}

export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The public routes' bearer token check; null (open) when no token is configured. */
export function apiTokenGuard(token: string): Guard | null {
  if (token === "") return null;
  return (req) => {
    const auth = req.headers.authorization;
    if (typeof auth !== "string" || !auth.startsWith("Bearer ") || !sameSecret(auth.slice(7), token)) {
      throw new RinglogError("unauthorized", "this node requires an API token: Authorization: Bearer <token>");
    }
  };
}

export function internalAuthorizer(deps: Pick<InternalDeps, "secret" | "faults">): Guard {
  return (req) => {
    const given = req.headers[SECRET_HEADER];
    if (deps.secret === "" || typeof given !== "string" || !sameSecret(given, deps.secret)) {
      throw new RinglogError("unauthorized", "internal routes need the cluster secret");
    }
    const from = req.headers[FROM_HEADER];
    if (deps.faults && typeof from === "string" && deps.faults.drops(from)) {
      throw new RinglogError("peer_unavailable", "traffic from this peer is dropped by the fault layer");
    }
  };
}

const sendPacked = (reply: RouteReply, value: unknown) => reply.type(MSGPACK).send(Buffer.from(packr.pack(value)));

function unpackBody<T>(req: RouteRequest): T {
  try {
    return packr.unpack(req.body as Buffer) as T;
  } catch {
    throw new RinglogError("invalid_request", "body is not msgpack");
  }
}

const isPeer = (p: unknown): p is Peer => !!p && typeof (p as { id?: unknown }).id === "string" && typeof (p as { url?: unknown }).url === "string";

export function internalHandlers(deps: InternalDeps): Record<string, DataHandler> {
  const checkVnode = (v: unknown) => {
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= deps.partitions) throw new RinglogError("invalid_request", `bad vnode ${String(v)}`);
  };
  return {
    async internalGossip(req, reply) {
      const msg = unpackBody<GossipMessage>(req);
      if (!msg || typeof msg !== "object" || !isPeer(msg.from) || !Array.isArray(msg.members) || !msg.members.every(isPeer) || !isRing(msg.ring, deps.partitions)) {
        throw new RinglogError("invalid_request", "malformed gossip message");
      }
      deps.membership.receive(msg);
      return sendPacked(reply, deps.membership.message());
    },

    async internalJoin(req, reply) {
      const body = unpackBody<{ peer?: Peer }>(req);
      if (!body || typeof body !== "object" || !isPeer(body.peer)) throw new RinglogError("invalid_request", "expected {peer: {id, url}}");
      const peer = body.peer;
      try {
        deps.membership.updateRing((ring) => stageJoin(ring, peer.id));
      } catch (err) {
        if (err instanceof PlanError) throw new RinglogError("cluster_change_refused", err.message);
        throw err;
      }
      deps.logger.info({ node: peer.id, url: peer.url }, "join staged");
      const { from, members, ring } = deps.membership.message();
      return sendPacked(reply, { from, members, ring });
    },

    async internalApply(req, reply) {
      const wires = unpackBody<SegmentWire[]>(req);
      if (!Array.isArray(wires)) throw new RinglogError("invalid_request", "expected a list of segments");
      const segments = wires.map((w) => {
        try {
          const s = segmentFromWire(w);
          if (s.entries.some((e) => typeof entryKey(e) !== "string")) throw new Error("entry without a key");
          return s;
        } catch {
          throw new RinglogError("invalid_request", "malformed segment");
        }
      });
      segments.forEach((s) => checkVnode(s.vnode));
      await Promise.all(
        segments.map((s) => (s.hintFor && s.hintFor !== deps.membership.self.id ? deps.hints.add(s.hintFor, s.vnode, s.entries) : deps.store.applyEntries(s.vnode, s.entries))),
      );
      return sendPacked(reply, segments.length);
    },

    async internalAae(req, reply) {
      const body = unpackBody<AaeRequest>(req);
      if (!body || typeof body !== "object" || !["roots", "tree", "leaves", "keys", "push", "pull", "collect"].includes(body.op)) {
        throw new RinglogError("invalid_request", "expected an anti-entropy request {op, vnode, ...}");
      }
      if (body.op !== "roots") checkVnode(body.vnode);
      try {
        return sendPacked(reply, await deps.antiEntropy.handle(body));
      } catch (err) {
        if (err instanceof RinglogError) throw err;
        throw new RinglogError("invalid_request", `malformed anti-entropy request: ${(err as Error).message}`);
      }
    },

    async internalRead(req, reply) {
      const keys = unpackBody<[number, string][]>(req);
      if (!Array.isArray(keys) || !keys.every((k) => Array.isArray(k) && k.length === 2 && typeof k[1] === "string")) {
        throw new RinglogError("invalid_request", "expected a list of [vnode, key]");
      }
      return sendPacked(
        reply,
        keys.map(([vnode, key]) => {
          checkVnode(vnode);
          return deps.store.readBytes(vnode, String(key));
        }),
      );
    },
  };
}
