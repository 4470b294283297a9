/**
 * Quorum decisions, pure: what r/w/pr/pw a request asks for, and whether the replies so far
 * satisfy it, cannot satisfy it any more, or must be waited for.
 */
import { RinglogError } from "../errors.ts";

export type QuorumSpec = string | number | undefined;

/** "one", "quorum", "all" or a number 0..n; undefined gives the default. */
export function resolveQuorum(name: string, spec: QuorumSpec, n: number, fallback: number, min = 1): number {
  if (spec === undefined || spec === "") return Math.min(fallback, n);
  const value = spec === "one" ? 1 : spec === "quorum" ? Math.floor(n / 2) + 1 : spec === "all" ? n : Number(spec);
  if (!Number.isInteger(value) || value < min || value > n) {
    throw new RinglogError("invalid_request", `${name} must be ${min === 0 ? "0" : "1"}..${n}, one, quorum or all`, { [name]: spec, n });
  }
  return value;
}

export interface Tally {
  /** Replicas that acknowledged (writes) or answered (reads). */
  ok: number;
  /** Of those, how many are primaries of the key. */
  primaryOk: number;
  /** Calls still outstanding, and of those how many go to primaries. */
  pending: number;
  primaryPending: number;
}

export interface Need {
  total: number;
  primaries: number;
}

export type Verdict = "met" | "failed" | "waiting";

export function verdict(t: Tally, need: Need): Verdict {
  if (t.ok >= need.total && t.primaryOk >= need.primaries) return "met";
  if (t.ok + t.pending < need.total || t.primaryOk + t.primaryPending < need.primaries) return "failed";
  return "waiting";
}
