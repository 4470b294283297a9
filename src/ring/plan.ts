/**
 * Changing who owns the ring: staged joins and leaves, the plan they imply, and its
 * lifecycle. Pure: the membership module persists and gossips what these functions return.
 *
 * 1. Staging a join or leave bumps the epoch and records the change; nothing moves yet.
 * 2. Committing computes the target owners (moving as few vnodes as a balanced, window-
 *    distinct claim allows) and sets them as the ring's pending owners.
 * 3. Every vnode whose primaries change becomes one transfer per new primary; as each
 *    completes, its id joins the pending plan's done set (a grow-only set, merged by union
 *    in gossip, so concurrent completions on different nodes are never lost).
 * 4. When every transfer is done, the ring flips to the pending owners at the next epoch.
 *    The flip is a deterministic function of the ring, so nodes that flip independently
 *    arrive at the same ring. Nodes that left are listed as removed.
 */
import { type Ring, claim, claimViolations, preferenceList } from "./ring.ts";

export class PlanError extends Error {}

export interface Transfer {
  /** `${vnode}>${to}` */
  id: string;
  vnode: number;
  to: string;
  /** The vnode's primaries under the current ring, in preference order: who can send it. */
  sources: string[];
}

const distinct = (owners: readonly string[]) => [...new Set(owners)].sort();

/** N as the coordinator applies it: never more than the nodes that own vnodes. */
export const effectiveN = (owners: readonly string[], n: number) => Math.min(n, distinct(owners).length);

/** The nodes the ring will hold once its staged changes are committed. */
export function stagedMembers(ring: Ring): string[] {
  const leave = new Set(ring.staged?.leave ?? []);
  return distinct([...ring.owners, ...(ring.staged?.join ?? [])]).filter((id) => !leave.has(id));
}

export function stageJoin(ring: Ring, id: string): Ring {
  if (ring.owners.includes(id) && !ring.staged?.leave.includes(id)) throw new PlanError(`${id} is already a member`);
  if (ring.pending?.owners.includes(id)) throw new PlanError(`${id} is joining in the plan being carried out`);
  const staged = { join: distinct([...(ring.staged?.join ?? []), id]), leave: (ring.staged?.leave ?? []).filter((x) => x !== id) };
  return { ...ring, epoch: ring.epoch + 1, staged, removed: (ring.removed ?? []).filter((x) => x !== id) };
}

export function stageLeave(ring: Ring, id: string): Ring {
  const staged = { join: (ring.staged?.join ?? []).filter((x) => x !== id), leave: ring.staged?.leave ?? [] };
  if (!ring.owners.includes(id)) {
    if (ring.staged?.join.includes(id)) return { ...ring, epoch: ring.epoch + 1, staged };
    throw new PlanError(`${id} is not a member`);
  }
  staged.leave = distinct([...staged.leave, id]);
  const next = { ...ring, epoch: ring.epoch + 1, staged };
  if (stagedMembers(next).length === 0) throw new PlanError("the last member cannot leave");
  return next;
}

export function clearStaged(ring: Ring): Ring {
  if (!ring.staged) return ring;
  const { staged: _dropped, ...rest } = ring;
  return { ...rest, epoch: ring.epoch + 1 };
}

/** The owners after the staged changes: a balanced claim that keeps as many vnodes in place as it can. */
export function targetOwners(ring: Ring, n: number): string[] {
  const members = stagedMembers(ring);
  if (members.length === 0) throw new PlanError("no members would remain");
  const current = ring.pending?.owners ?? ring.owners;
  for (const wrap of [true, false]) {
    const moved = rebalance(current, members, n, wrap);
    if (moved && claimViolations(moved, n, wrap).length === 0) return moved;
  }
  return claim(members, current.length, n);
}

/**
 * Moves vnodes one at a time from the most- to the least-loaded node, only where the
 * receiver keeps every window of N consecutive vnodes distinct; null when it gets stuck.
 */
function rebalance(current: readonly string[], members: readonly string[], n: number, wrap: boolean): string[] | null {
  const q = current.length;
  const keep = new Set(members);
  const owners: (string | null)[] = current.map((o) => (keep.has(o) ? o : null));
  const window = Math.min(n, members.length);
  const count = new Map(members.map((m) => [m, 0]));
  for (const o of owners) if (o !== null) count.set(o, count.get(o)! + 1);

  const fits = (v: number, node: string): boolean => {
    for (let k = 1; k < window; k++) {
      for (const u of [v - k, v + k]) {
        if (!wrap && (u < 0 || u >= q)) continue;
        if (owners[((u % q) + q) % q] === node) return false;
      }
    }
    return true;
  };
  const byLoad = () => [...members].sort((a, b) => count.get(a)! - count.get(b)! || (a < b ? -1 : 1));

  for (let v = 0; v < q; v++) {
    if (owners[v] !== null) continue;
    const to = byLoad().find((m) => fits(v, m));
    if (to === undefined) return null;
    owners[v] = to;
    count.set(to, count.get(to)! + 1);
  }
  for (let moves = 0; moves < q * members.length; moves++) {
    const order = byLoad();
    const low = order[0]!;
    if (count.get(order.at(-1)!)! - count.get(low)! <= 1) return owners as string[];
    // Take the vnode farthest from those the receiver already has, so its vnodes spread
    // evenly and later moves still find room in every window.
    // Donors are the most loaded nodes when they can give, so no node gives more than its
    // surplus (which would make it a receiver later and move vnodes twice).
    const gap = distanceTo(owners, low);
    const most = count.get(order.at(-1)!)!;
    let best = -1;
    for (const floor of [most, count.get(low)! + 2]) {
      for (let v = 0; v < q; v++) {
        if (count.get(owners[v]!)! < floor || !fits(v, low)) continue;
        if (best < 0 || gap[v]! > gap[best]!) best = v;
      }
      if (best >= 0) break;
    }
    if (best < 0) return null;
    count.set(owners[best]!, count.get(owners[best]!)! - 1);
    owners[best] = low;
    count.set(low, count.get(low)! + 1);
  }
  return null;
}

/** For each vnode, the cyclic distance to the nearest vnode `node` owns (q when it owns none). */
function distanceTo(owners: readonly (string | null)[], node: string): number[] {
  const q = owners.length;
  const gap = new Array<number>(q).fill(q);
  for (let pass = 0; pass < 2; pass++) {
    let last = -q;
    for (let k = 0; k < 2 * q; k++) {
      const v = pass === 0 ? k % q : (2 * q - 1 - k) % q;
      if (owners[v] === node) last = k;
      gap[v] = Math.min(gap[v]!, k - last);
    }
  }
  return gap;
}

export function commit(ring: Ring, n: number): Ring {
  if (ring.pending) throw new PlanError("a plan is still being carried out; commit again once its transfers finish");
  if (!ring.staged || (ring.staged.join.length === 0 && ring.staged.leave.length === 0)) throw new PlanError("nothing is staged");
  const owners = targetOwners(ring, n);
  const { staged: _committed, ...rest } = ring;
  return { ...rest, epoch: ring.epoch + 1, pending: { owners, done: [] } };
}

/** Transfers a pending plan needs: each new primary of a vnode receives it from the current primaries. */
export function transfers(ring: Ring, n: number): Transfer[] {
  if (!ring.pending) return [];
  const target: Ring = { epoch: ring.epoch, owners: ring.pending.owners };
  const nowN = effectiveN(ring.owners, n);
  const nextN = effectiveN(target.owners, n);
  const out: Transfer[] = [];
  for (let v = 0; v < ring.owners.length; v++) {
    const sources = preferenceList(ring, v, nowN).primaries;
    for (const to of preferenceList(target, v, nextN).primaries) {
      if (!sources.includes(to)) out.push({ id: `${v}>${to}`, vnode: v, to, sources });
    }
  }
  return out;
}

export function markDone(ring: Ring, ids: readonly string[]): Ring {
  if (!ring.pending) return ring;
  const done = new Set(ring.pending.done);
  if (ids.every((id) => done.has(id))) return ring;
  return { ...ring, pending: { ...ring.pending, done: distinct([...done, ...ids]) } };
}

/** The ring after its pending plan, once every transfer is done; the same ring otherwise. */
export function flip(ring: Ring, n: number): Ring {
  if (!ring.pending) return ring;
  const done = new Set(ring.pending.done);
  if (!transfers(ring, n).every((t) => done.has(t.id))) return ring;
  const owners = ring.pending.owners;
  const left = distinct(ring.owners).filter((id) => !owners.includes(id));
  const { pending: _carried, ...rest } = ring;
  return { ...rest, epoch: ring.epoch + 1, owners, removed: distinct([...(ring.removed ?? []), ...left]) };
}

/**
 * What a node holding `local` should hold after hearing `remote`: the higher epoch wins;
 * the done sets of the same pending plan are joined; equal epochs with different contents
 * (concurrent staging on two nodes) are settled by a deterministic order so all nodes agree.
 * Rings of another cluster are ignored.
 */
export function mergeRings(local: Ring, remote: Ring): Ring {
  if (local.cluster !== undefined && remote.cluster !== undefined && local.cluster !== remote.cluster) return local;
  const samePlan = local.pending !== undefined && remote.pending !== undefined && local.pending.owners.join() === remote.pending.owners.join();
  const [a, b] = [JSON.stringify(local), JSON.stringify(remote)];
  if (remote.epoch === local.epoch && a === b) return local;
  const remoteWins = remote.epoch !== local.epoch ? remote.epoch > local.epoch : b > a;
  const [winner, other] = remoteWins ? [remote, local] : [local, remote];
  return samePlan ? markDone(winner, other.pending!.done) : winner;
}
