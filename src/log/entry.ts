/**
 * A log entry is one event (a client write, or a replica copy of one), a whole key state
 * merged in (read repair, anti-entropy, handoff after compaction), or the collection of a
 * tombstone every replica is known to hold. Events and states are joins, so they fold to the
 * same state in any order; a collection removes the key only if its state is still exactly
 * the tombstone that was confirmed, so a write that raced with it survives.
 */
import { type KeyState, type StateWire, EMPTY_STATE, applyEvent, encodeState, mergeStates, stateFromWire, stateToWire } from "../clock/fold.ts";
import { stateDigest } from "../antientropy/merkle.ts";
import { type Event, type EventWire, eventFromWire, eventToWire, packr, rememberedCodec } from "../event/event.ts";

export type LogEntry =
  | { kind: "event"; event: Event }
  | { kind: "state"; key: string; state: KeyState }
  | { kind: "collect"; key: string; digest: bigint };

export type EntryWire = [0, EventWire] | [1, string, StateWire] | [2, string, bigint];

export const entryKey = (e: LogEntry) => (e.kind === "event" ? e.event.key : e.key);

export function applyEntry(state: KeyState, e: LogEntry): KeyState {
  switch (e.kind) {
    case "event":
      return applyEvent(state, e.event);
    case "state":
      return mergeStates(state, e.state);
    case "collect":
      return stateDigest(encodeState(state)) === e.digest ? EMPTY_STATE : state;
  }
}

export function entryToWire(e: LogEntry): EntryWire {
  switch (e.kind) {
    case "event":
      return [0, eventToWire(e.event)];
    case "state":
      return [1, e.key, stateToWire(e.state)];
    case "collect":
      return [2, e.key, e.digest];
  }
}

export function entryFromWire(w: EntryWire): LogEntry {
  switch (w[0]) {
    case 0:
      return { kind: "event", event: eventFromWire(w[1]) };
    case 1:
      return { kind: "state", key: w[1], state: stateFromWire(w[2]) };
    case 2:
      return { kind: "collect", key: w[1], digest: BigInt(w[2]) };
    default:
      throw new Error(`unknown log entry kind ${String((w as unknown[])[0])}`);
  }
}

/**
 * Entry bytes are remembered per entry: a write is encoded once for its log and reused for
 * every replica it ships to, and an entry that arrived as bytes is logged as those bytes.
 */
const entryCodec = rememberedCodec<LogEntry>(
  (e) => packr.pack(entryToWire(e)),
  (bytes) => entryFromWire(packr.unpack(bytes) as EntryWire),
);
export const encodeEntry = entryCodec.encode;
export const decodeEntry = entryCodec.decode;
