/**
 * Ownership of the fixed vnodes. Each vnode has one owner; a key's preference list is the
 * owner of its vnode, then the owners of the following vnodes clockwise (skipping nodes
 * already chosen) until N distinct nodes, then every other node in ring order as fallbacks.
 *
 * The claim gives every node ⌊Q/S⌋ or ⌈Q/S⌉ vnodes and, where S ≥ N, any N consecutive
 * vnodes (cyclically) N distinct owners, so the primaries of a vnode are simply the owners
 * of it and the N−1 vnodes after it. The ring changes only by explicit join or leave; each
 * change bumps the epoch, and the highest epoch wins in gossip.
 */

export interface Ring {
  readonly epoch: number;
  /** owners[v] is the node id that owns vnode v. */
  readonly owners: readonly string[];
  /** Names the cluster (its initial members): gossip never adopts another cluster's ring. */
  readonly cluster?: string;
  /** Joins and leaves recorded but not yet committed (see plan.ts). */
  readonly staged?: { readonly join: readonly string[]; readonly leave: readonly string[] };
  /** A committed plan being carried out: the owners to flip to, and the transfers finished. */
  readonly pending?: { readonly owners: readonly string[]; readonly done: readonly string[] };
  /** Nodes that left: their gossip is no longer taken as membership. */
  readonly removed?: readonly string[];
}

export class ClaimError extends Error {}

const isNames = (x: unknown): x is string[] => Array.isArray(x) && x.every((o) => typeof o === "string");

/** Whether a ring received from another node is well formed for this cluster's Q. */
export function isRing(x: unknown, partitions: number): x is Ring {
  if (!x || typeof x !== "object") return false;
  const r = x as Record<string, unknown>;
  const owners = (o: unknown) => isNames(o) && o.length === partitions;
  const staged = r.staged as Record<string, unknown> | undefined;
  const pending = r.pending as Record<string, unknown> | undefined;
  return (
    Number.isInteger(r.epoch) &&
    owners(r.owners) &&
    (r.cluster === undefined || typeof r.cluster === "string") &&
    (staged === undefined || (typeof staged === "object" && staged !== null && isNames(staged.join) && isNames(staged.leave))) &&
    (pending === undefined || (typeof pending === "object" && pending !== null && owners(pending.owners) && isNames(pending.done))) &&
    (r.removed === undefined || isNames(r.removed))
  );
}

/**
 * A balanced assignment of Q vnodes to the given nodes, found by a depth-first search that
 * tries the least-loaded eligible node first (so it rarely backtracks). Deterministic for a
 * given node set.
 *
 * Window-distinctness across the wrap from vnode Q−1 to vnode 0 is not always possible
 * (S = N with Q mod S ≠ 0 forces a period-S sequence that cannot close, e.g. 3 nodes on 64
 * vnodes): then the claim keeps every window distinct except those spanning the wrap.
 * Preference lists skip repeated owners, so every key still gets N distinct replicas.
 */
export function claim(nodeIds: readonly string[], q: number, n: number): string[] {
  try {
    return search(nodeIds, q, n, true);
  } catch (err) {
    if (!(err instanceof ClaimError)) throw err;
    return search(nodeIds, q, n, false);
  }
}

function search(nodeIds: readonly string[], q: number, n: number, wrap: boolean): string[] {
  const nodes = [...new Set(nodeIds)].sort();
  const s = nodes.length;
  if (s === 0) throw new ClaimError("cannot claim a ring with no nodes");
  const window = Math.min(n, s);
  const floor = Math.floor(q / s);
  const ceilSlots = q % s;
  const owners = new Array<number>(q).fill(-1);
  const counts = new Array<number>(s).fill(0);
  let atCeil = 0;
  let steps = 0;
  const maxSteps = 200_000;

  const eligible = (i: number, node: number): boolean => {
    const c = counts[node]!;
    // Exactly Q mod S nodes may go one above ⌊Q/S⌋.
    if (c > floor || (c === floor && atCeil >= ceilSlots)) return false;
    for (let back = 1; back < window && i - back >= 0; back++) if (owners[i - back] === node) return false;
    // Near the end, the window wraps onto the start of the ring.
    if (wrap) for (let ahead = i + 1; ahead < i + window; ahead++) if (ahead >= q && owners[ahead - q] === node) return false;
    return true;
  };

  const place = (i: number): boolean => {
    if (i === q) return true;
    if (++steps > maxSteps) throw new ClaimError(`no balanced claim found for Q=${q}, S=${s}, N=${n}`);
    const order = nodes.map((_, k) => (k + i) % s).sort((a, b) => counts[a]! - counts[b]! || ((a - i) % s + s) % s - ((b - i) % s + s) % s);
    for (const node of order) {
      if (!eligible(i, node)) continue;
      owners[i] = node;
      if (counts[node] === floor) atCeil++;
      counts[node]!++;
      if (place(i + 1)) return true;
      counts[node]!--;
      if (counts[node] === floor) atCeil--;
      owners[i] = -1;
    }
    return false;
  };

  if (!place(0)) throw new ClaimError(`no balanced claim exists for Q=${q}, S=${s}, N=${n}`);
  return owners.map((o) => nodes[o]!);
}

/**
 * Checks the two claim properties; returns what is wrong, or an empty list. With
 * `wrap` false, windows that span vnode Q−1 → 0 are not checked.
 */
export function claimViolations(owners: readonly string[], n: number, wrap = true): string[] {
  const q = owners.length;
  const counts = new Map<string, number>();
  for (const o of owners) counts.set(o, (counts.get(o) ?? 0) + 1);
  const s = counts.size;
  const problems: string[] = [];
  for (const [node, c] of counts) {
    if (c < Math.floor(q / s) || c > Math.ceil(q / s)) problems.push(`${node} owns ${c} vnodes`);
  }
  const window = Math.min(n, s);
  for (let v = 0; v < (wrap ? q : q - window + 1); v++) {
    const ws = new Set<string>();
    for (let k = 0; k < window; k++) ws.add(owners[(v + k) % q]!);
    if (ws.size < window) problems.push(`vnodes ${v}..${v + window - 1} have repeated owners`);
  }
  return problems;
}

export interface PreferenceList {
  /** The N nodes that should hold the vnode. */
  primaries: string[];
  /** Every other node, in ring order: where writes go when primaries are unreachable. */
  fallbacks: string[];
}

export function preferenceList(ring: Ring, vnode: number, n: number): PreferenceList {
  const q = ring.owners.length;
  const seen = new Set<string>();
  const order: string[] = [];
  for (let k = 0; k < q; k++) {
    const owner = ring.owners[(vnode + k) % q]!;
    if (!seen.has(owner)) {
      seen.add(owner);
      order.push(owner);
    }
  }
  return { primaries: order.slice(0, n), fallbacks: order.slice(n) };
}

/** Vnodes for which `node` is one of the N primaries. */
export function vnodesReplicatedBy(ring: Ring, node: string, n: number): number[] {
  const out: number[] = [];
  for (let v = 0; v < ring.owners.length; v++) if (preferenceList(ring, v, n).primaries.includes(node)) out.push(v);
  return out;
}
