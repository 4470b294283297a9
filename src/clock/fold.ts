/**
 * A key's state is the fold of its events: the siblings are the events no other event's
 * context covers, and the causal context is every context and dot seen. Applying events in
 * any order, with duplicates, gives the same state (dots are unique per event), which is
 * what lets hints, repair and anti-entropy deliver events in whatever order they arrive.
 */
import type { Event } from "../event/event.ts";
import {
  type CausalContext,
  type ContextWire,
  type Dot,
  addDot,
  cloneContext,
  contains,
  emptyContext,
  fromWire,
  join,
  joinInto,
  maxCounter,
  toWire,
} from "./context.ts";
import { packr, rememberedCodec } from "../event/event.ts";

export interface Version {
  readonly dot: Dot;
  readonly value: Uint8Array | null;
  readonly contentType: string;
  readonly ts: number;
  readonly origin?: string;
}

export interface KeyState {
  readonly siblings: readonly Version[];
  readonly ctx: CausalContext;
}

export const EMPTY_STATE: KeyState = Object.freeze({ siblings: [], ctx: emptyContext() });

const sameDot = (a: Dot, b: Dot) => a.actor === b.actor && a.counter === b.counter;

/** The dot a coordinator gives its next write to a key it holds this state for. */
export function nextDot(state: KeyState, actor: string): Dot {
  return { actor, counter: maxCounter(state.ctx, actor) + 1 };
}

export function applyEvent(state: KeyState, e: Event): KeyState {
  if (state.siblings.some((s) => sameDot(s.dot, e.dot))) return state;
  const survives = !contains(state.ctx, e.dot) && !contains(e.context, e.dot);
  const siblings = state.siblings.filter((s) => !contains(e.context, s.dot));
  if (survives) {
    siblings.push({
      dot: e.dot,
      value: e.value,
      contentType: e.contentType,
      ts: e.ts,
      ...(e.origin ? { origin: e.origin } : {}),
    });
  }
  const ctx = join(state.ctx, e.context);
  addDot(ctx, e.dot);
  return { siblings, ctx };
}

export function foldEvents(events: Iterable<Event>, from: KeyState = EMPTY_STATE): KeyState {
  let state = from;
  for (const e of events) state = applyEvent(state, e);
  return state;
}

/**
 * Join of two states of the same key (used where a whole state is shipped, not events).
 * Converged replicas answer a read with the same bytes, and the join is idempotent, so equal
 * known bytes (or an empty side) return one of the states as it is, bytes and all.
 */
export function mergeStates(a: KeyState, b: KeyState): KeyState {
  if (a === b || isEmpty(b)) return a;
  if (isEmpty(a)) return b;
  const ab = stateCodec.known(a);
  const bb = ab && stateCodec.known(b);
  if (ab && bb && Buffer.compare(ab, bb) === 0) return a;
  const inB = (v: Version) => b.siblings.some((s) => sameDot(s.dot, v.dot));
  const inA = (v: Version) => a.siblings.some((s) => sameDot(s.dot, v.dot));
  const siblings = [
    ...a.siblings.filter((v) => inB(v) || !contains(b.ctx, v.dot)),
    ...b.siblings.filter((v) => !inA(v) && !contains(a.ctx, v.dot)),
  ];
  const ctx = cloneContext(a.ctx);
  joinInto(ctx, b.ctx);
  return { siblings, ctx };
}

export const liveSiblings = (s: KeyState): Version[] => s.siblings.filter((v) => v.value !== null);

/** Every version is a delete: the key reads as absent, but its tombstone must be kept until collected. */
export const isTombstone = (s: KeyState) => s.siblings.length > 0 && s.siblings.every((v) => v.value === null);

export const isEmpty = (s: KeyState) => s.siblings.length === 0 && s.ctx.vv.size === 0 && s.ctx.cloud.size === 0;

function compareDots(x: Version, y: Version): number {
  if (x.dot.actor !== y.dot.actor) return x.dot.actor < y.dot.actor ? -1 : 1;
  return x.dot.counter - y.dot.counter;
}

type VersionWire = [actor: string, counter: number, value: Uint8Array | null, contentType: string, ts: number, origin: string | null];
export type StateWire = [siblings: VersionWire[], ctx: ContextWire];

/** Canonical form: siblings sorted by dot, so equal states have equal wire forms. */
export function stateToWire(s: KeyState): StateWire {
  const sibs: VersionWire[] = [...s.siblings]
    .sort(compareDots)
    .map((v) => [v.dot.actor, v.dot.counter, v.value, v.contentType, v.ts, v.origin ?? null]);
  return [sibs, toWire(s.ctx)];
}

/**
 * Canonical bytes: equal states encode identically, so digests and equality are byte checks.
 * They are remembered per state (states are never changed in place): a state read from
 * storage or a peer is compared, digested and stored again as the bytes it came as.
 */
const stateCodec = rememberedCodec<KeyState>(
  (s) => packr.pack(stateToWire(s)),
  (bytes) => stateFromWire(packr.unpack(bytes) as StateWire),
);
export const encodeState = stateCodec.encode;
export const decodeState = stateCodec.decode;

/**
 * Decodes the stored bytes replicas answer a read with, once per distinct byte string:
 * converged replicas answer with equal bytes, so a read of converged data decodes one state
 * instead of one per replica, and the equal answers share it (which merging and read
 * repair then recognise at once). null (no state) is the empty state.
 */
export function replicaDecoder(): (bytes: Uint8Array | null) => KeyState {
  const seen: KeyState[] = [];
  return (bytes) => {
    if (bytes === null) return EMPTY_STATE;
    const same = seen.find((s) => Buffer.compare(stateCodec.known(s)!, bytes) === 0);
    if (same) return same;
    const state = decodeState(bytes);
    seen.push(state);
    return state;
  };
}

export function stateFromWire([sibs, ctx]: StateWire): KeyState {
  return {
    siblings: sibs.map(([actor, counter, value, contentType, ts, origin]) => ({
      dot: { actor, counter },
      value: value === null ? null : new Uint8Array(value),
      contentType,
      ts,
      ...(origin ? { origin } : {}),
    })),
    ctx: fromWire(ctx),
  };
}

export function statesEqual(a: KeyState, b: KeyState): boolean {
  return a === b || Buffer.compare(encodeState(a), encodeState(b)) === 0;
}

