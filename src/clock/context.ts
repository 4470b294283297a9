/**
 * Causal context: a set of dots stored as a version vector (every counter up to n) plus a
 * dot cloud (dots seen beyond the contiguous prefix). The cloud is what keeps the fold a
 * join when dots of one actor arrive out of order (hints and anti-entropy reorder freely).
 */

export type Actor = string;

export interface Dot {
  readonly actor: Actor;
  readonly counter: number;
}

export interface CausalContext {
  readonly vv: Map<Actor, number>;
  readonly cloud: Map<Actor, Set<number>>;
}

/** The wire form: sorted, so equal contexts encode to equal bytes. */
export type ContextWire = [vv: [Actor, number][], cloud: [Actor, number[]][]];

export function emptyContext(): CausalContext {
  return { vv: new Map(), cloud: new Map() };
}

export function contains(ctx: CausalContext, dot: Dot): boolean {
  if ((ctx.vv.get(dot.actor) ?? 0) >= dot.counter) return true;
  return ctx.cloud.get(dot.actor)?.has(dot.counter) ?? false;
}

/** Highest counter of `actor` this context has seen, contiguous or not. */
export function maxCounter(ctx: CausalContext, actor: Actor): number {
  let max = ctx.vv.get(actor) ?? 0;
  const cloud = ctx.cloud.get(actor);
  if (cloud) for (const n of cloud) if (n > max) max = n;
  return max;
}

/** Adds a dot in place, folding the cloud into the vector where it becomes contiguous. */
export function addDot(ctx: CausalContext, dot: Dot): void {
  const base = ctx.vv.get(dot.actor) ?? 0;
  if (dot.counter <= base) return;
  if (dot.counter === base + 1) {
    let n = dot.counter;
    const cloud = ctx.cloud.get(dot.actor);
    if (cloud) {
      while (cloud.delete(n + 1)) n++;
      if (cloud.size === 0) ctx.cloud.delete(dot.actor);
    }
    ctx.vv.set(dot.actor, n);
    return;
  }
  let cloud = ctx.cloud.get(dot.actor);
  if (!cloud) ctx.cloud.set(dot.actor, (cloud = new Set()));
  cloud.add(dot.counter);
}

/** Merges `from` into `into` in place. */
export function joinInto(into: CausalContext, from: CausalContext): void {
  for (const [actor, n] of from.vv) {
    const base = into.vv.get(actor) ?? 0;
    if (n > base) {
      into.vv.set(actor, n);
      const cloud = into.cloud.get(actor);
      if (cloud) {
        for (const c of cloud) if (c <= n) cloud.delete(c);
        let next = n;
        while (cloud.delete(next + 1)) next++;
        into.vv.set(actor, next);
        if (cloud.size === 0) into.cloud.delete(actor);
      }
    }
  }
  for (const [actor, counters] of from.cloud) {
    for (const counter of counters) addDot(into, { actor, counter });
  }
}

export function cloneContext(ctx: CausalContext): CausalContext {
  const cloud = new Map<Actor, Set<number>>();
  for (const [a, s] of ctx.cloud) cloud.set(a, new Set(s));
  return { vv: new Map(ctx.vv), cloud };
}

export function join(a: CausalContext, b: CausalContext): CausalContext {
  const out = cloneContext(a);
  joinInto(out, b);
  return out;
}

/** Number of distinct actors: the size a clock limit is measured in. */
export function actorCount(ctx: CausalContext): number {
  let n = ctx.vv.size;
  for (const a of ctx.cloud.keys()) if (!ctx.vv.has(a)) n++;
  return n;
}

export function toWire(ctx: CausalContext): ContextWire {
  const vv = [...ctx.vv].sort(byActor);
  const cloud: [Actor, number[]][] = [...ctx.cloud]
    .map(([a, s]): [Actor, number[]] => [a, [...s].sort((x, y) => x - y)])
    .sort(byActor);
  return [vv, cloud];
}

function byActor<T extends [Actor, unknown]>(x: T, y: T): number {
  return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0;
}

export class ContextFormatError extends Error {}

const isCounter = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) > 0;

/**
 * Parses an untrusted wire context. Anything malformed throws ContextFormatError; the result
 * is normalised, so a client cannot smuggle in a non-canonical clock.
 */
export function fromWire(wire: unknown): CausalContext {
  if (!Array.isArray(wire) || wire.length !== 2) throw new ContextFormatError("context must be [vv, cloud]");
  const [vv, cloud] = wire as unknown[];
  if (!Array.isArray(vv) || !Array.isArray(cloud)) throw new ContextFormatError("context parts must be arrays");
  const ctx = emptyContext();
  for (const entry of vv) {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== "string" || !isCounter(entry[1]))
      throw new ContextFormatError("bad version vector entry");
    // The cloud is still empty here, so joining one entry is keeping the larger counter.
    if (entry[1] > (ctx.vv.get(entry[0]) ?? 0)) ctx.vv.set(entry[0], entry[1]);
  }
  for (const entry of cloud) {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== "string" || !Array.isArray(entry[1]))
      throw new ContextFormatError("bad dot cloud entry");
    for (const counter of entry[1]) {
      if (!isCounter(counter)) throw new ContextFormatError("bad dot counter");
      addDot(ctx, { actor: entry[0], counter });
    }
  }
  return ctx;
}

export function contextEquals(a: CausalContext, b: CausalContext): boolean {
  return JSON.stringify(toWire(a)) === JSON.stringify(toWire(b));
}
