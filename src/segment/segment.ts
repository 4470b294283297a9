/**
 * A segment is a run of log entries of one vnode: the unit every replication mechanism
 * ships (replica writes, hints, read repair, and later anti-entropy and handoff). Applying
 * one is the same idempotent fold as a local write.
 */
import { type LogEntry, decodeEntry, encodeEntry } from "../log/entry.ts";

export interface Segment {
  vnode: number;
  /** Set when the receiver holds the segment for another node (a sloppy-quorum fallback). */
  hintFor?: string;
  entries: LogEntry[];
}

/** Entries travel as their log bytes: encoded once, shipped to every replica, logged as received. */
export type SegmentWire = [vnode: number, hintFor: string | null, entries: Uint8Array[]];

export function segmentToWire(s: Segment): SegmentWire {
  return [s.vnode, s.hintFor ?? null, s.entries.map(encodeEntry)];
}

export function segmentFromWire([vnode, hintFor, entries]: SegmentWire): Segment {
  if (!Array.isArray(entries) || !entries.every((e) => e instanceof Uint8Array)) throw new Error("segment entries must be encoded entries");
  return { vnode, ...(hintFor ? { hintFor } : {}), entries: entries.map(decodeEntry) };
}

/** Merges segments of the same vnode and hint target, so one send carries one segment each. */
export function coalesce(segments: Segment[]): Segment[] {
  const byKey = new Map<string, Segment>();
  for (const s of segments) {
    const id = `${s.vnode}\u0000${s.hintFor ?? ""}`;
    const into = byKey.get(id);
    if (into) into.entries.push(...s.entries);
    else byKey.set(id, { ...s, entries: [...s.entries] });
  }
  return [...byKey.values()];
}
