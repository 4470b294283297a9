/**
 * A log entry is either one event (a client write, or a replica copy of one) or a whole key
 * state merged in (read repair, anti-entropy, handoff after compaction). Both are joins, so
 * a log of mixed entries folds to the same state in any order.
 */
import { type KeyState, type StateWire, applyEvent, mergeStates, stateFromWire, stateToWire } from "../clock/fold.ts";
import { type Event, type EventWire, eventFromWire, eventToWire, packr } from "../event/event.ts";

export type LogEntry = { kind: "event"; event: Event } | { kind: "state"; key: string; state: KeyState };

export type EntryWire = [0, EventWire] | [1, string, StateWire];

export const entryKey = (e: LogEntry) => (e.kind === "event" ? e.event.key : e.key);

export function applyEntry(state: KeyState, e: LogEntry): KeyState {
  return e.kind === "event" ? applyEvent(state, e.event) : mergeStates(state, e.state);
}

export function entryToWire(e: LogEntry): EntryWire {
  return e.kind === "event" ? [0, eventToWire(e.event)] : [1, e.key, stateToWire(e.state)];
}

export function entryFromWire(w: EntryWire): LogEntry {
  return w[0] === 0 ? { kind: "event", event: eventFromWire(w[1]) } : { kind: "state", key: w[1], state: stateFromWire(w[2]) };
}

export const encodeEntry = (e: LogEntry): Uint8Array => packr.pack(entryToWire(e));
export const decodeEntry = (bytes: Uint8Array): LogEntry => entryFromWire(packr.unpack(bytes) as EntryWire);
