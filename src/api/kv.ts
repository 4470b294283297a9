/** Handlers for the public key routes: raw values in, raw values or siblings out. */
import { type KeyState, isEmpty, liveSiblings } from "../clock/fold.ts";
import type { ConsistencyReport, Coordinator, Quorum } from "../coordinator/coordinator.ts";
import { resolveQuorum } from "../coordinator/quorum.ts";
import type { Transport } from "../transport/transport.ts";
import type { Membership } from "../membership/membership.ts";
import { RinglogError } from "../errors.ts";
import { currentOrigin } from "../telemetry/origin.ts";
import type { components } from "./schema.gen.ts";
import { CONTEXT_HEADER, decodeContextHeader, encodeContextHeader } from "./context-header.ts";
import type { DataHandler, RouteReply, RouteRequest } from "./fast-path.ts";

type SiblingList = components["schemas"]["SiblingList"];

export interface KvLimits {
  defaultR: number;
  defaultW: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  maxContentTypeBytes: number;
  maxContextBytes: number;
  maxContextActors: number;
}

const SIBLINGS_HEADER = "x-ringlog-siblings";
/** Marks a request one node relayed to another; its value is the sender's ring epoch. */
export const FORWARDED_HEADER = "x-ringlog-forwarded";
const RELAYED_HEADERS = ["content-type", CONTEXT_HEADER, SIBLINGS_HEADER, "x-ringlog-replicas-asked", "x-ringlog-replicas-answered", "x-ringlog-fallbacks", "allow"];

export interface KvDeps {
  coordinator: Coordinator;
  membership: Membership;
  transport: Transport;
  limits: KvLimits;
  counters: { forwarded: number };
}
const DEFAULT_CONTENT_TYPE = "application/octet-stream";

export function kvHandlers({ coordinator, membership, transport, limits, counters }: KvDeps): Record<string, DataHandler> {
  const keyOf = (req: RouteRequest): string => {
    // The key takes the rest of the path (see x-ringlog-rest-of-path in openapi.yaml).
    const key = (req.params as { "*": string })["*"];
    const bytes = Buffer.byteLength(key);
    if (bytes === 0) throw new RinglogError("invalid_key", "the key is empty");
    if (bytes > limits.maxKeyBytes) throw new RinglogError("invalid_key", "the key is too long", { limit: limits.maxKeyBytes, size: bytes });
    return key;
  };

  const contextOf = (req: RouteRequest) => {
    const raw = req.headers[CONTEXT_HEADER];
    if (raw === undefined) return null;
    if (Array.isArray(raw)) throw new RinglogError("invalid_context", "send the context header once");
    return decodeContextHeader(raw, limits);
  };

  const origin = currentOrigin;

  const quorumOf = (req: RouteRequest, total: "r" | "w"): Quorum => {
    const q = req.query as Record<string, string | number | undefined>;
    const n = coordinator.replicaCount();
    const primaries = total === "r" ? "pr" : "pw";
    return {
      total: resolveQuorum(total, q[total], n, total === "r" ? limits.defaultR : limits.defaultW),
      primaries: resolveQuorum(primaries, q[primaries], n, 0, 0),
    };
  };

  const withContext = (reply: RouteReply, state: KeyState, report: ConsistencyReport) =>
    reply
      .header(CONTEXT_HEADER, encodeContextHeader(state.ctx))
      .header(SIBLINGS_HEADER, liveSiblings(state).length)
      .header("x-ringlog-replicas-asked", report.asked.join(","))
      .header("x-ringlog-replicas-answered", report.answered.join(","))
      .header("x-ringlog-fallbacks", report.fallbacks.join(","));

  /**
   * A write must be coordinated by one of the key's primaries. Another node relays it once,
   * marked with its ring epoch; the receiver coordinates whatever its own ring says, so a
   * request is never bounced around by nodes that disagree about ownership.
   */
  const forwarded = async (req: RouteRequest, reply: RouteReply, key: string): Promise<boolean> => {
    if (req.headers[FORWARDED_HEADER] !== undefined) return false;
    const target = coordinator.writeTarget(key);
    const peer = target ? membership.peer(target) : undefined;
    if (!peer) return false;
    const headers: Record<string, string> = { [FORWARDED_HEADER]: String(membership.ring.epoch) };
    for (const h of ["content-type", CONTEXT_HEADER, "authorization"]) {
      const v = req.headers[h];
      if (typeof v === "string") headers[h] = v;
    }
    counters.forwarded++;
    const res = await transport.forward(peer, req.method, req.url, headers, req.body as Buffer | undefined).catch(() => {
      throw new RinglogError("peer_unavailable", `could not reach ${peer.id}, a primary of this key`, { peer: peer.id });
    });
    reply.code(res.status);
    for (const h of RELAYED_HEADERS) {
      const v = res.headers.get(h);
      if (v !== null) reply.header(h, v);
    }
    reply.send(Buffer.from(await res.arrayBuffer()));
    return true;
  };

  return {
    async getKey(req, reply) {
      const { state, report } = await coordinator.get(keyOf(req), quorumOf(req, "r"));
      const live = liveSiblings(state);
      if (live.length === 0) {
        if (!isEmpty(state)) reply.header(CONTEXT_HEADER, encodeContextHeader(state.ctx));
        throw new RinglogError("not_found", "no live version of this key");
      }
      withContext(reply, state, report);
      if (live.length === 1) {
        const [v] = live;
        return reply.code(200).type(v!.contentType).send(Buffer.from(v!.value!));
      }
      const body: SiblingList = {
        siblings: live.map((v) => ({ value: Buffer.from(v.value!).toString("base64"), contentType: v.contentType, timestamp: v.ts })),
        context: encodeContextHeader(state.ctx),
      };
      return reply.code(300).type("application/json").send(body);
    },

    async putKey(req, reply) {
      const key = keyOf(req);
      const context = contextOf(req);
      const quorum = quorumOf(req, "w");
      const value = (req.body as Buffer | undefined) ?? Buffer.alloc(0);
      if (value.byteLength > limits.maxValueBytes) {
        throw new RinglogError("value_too_large", "the value is too large", { limit: limits.maxValueBytes, size: value.byteLength });
      }
      const contentType = req.headers["content-type"] ?? DEFAULT_CONTENT_TYPE;
      if (Buffer.byteLength(contentType) > limits.maxContentTypeBytes) {
        throw new RinglogError("invalid_content_type", "the content type is too long", { limit: limits.maxContentTypeBytes });
      }
      if (await forwarded(req, reply, key)) return reply;
      const o = origin();
      const { state, report } = await coordinator.write({ key, value, contentType, context, ...(o ? { origin: o } : {}) }, quorum);
      return withContext(reply, state, report).code(204).send();
    },

    async deleteKey(req, reply) {
      const key = keyOf(req);
      const context = contextOf(req);
      const quorum = quorumOf(req, "w");
      if (await forwarded(req, reply, key)) return reply;
      const o = origin();
      const { state, report } = await coordinator.write({ key, value: null, contentType: "", context, ...(o ? { origin: o } : {}) }, quorum);
      return withContext(reply, state, report).code(204).send();
    },
  };
}
