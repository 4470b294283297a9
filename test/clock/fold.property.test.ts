/**
 * The fold of events into a key's state must be a join: order and duplicates never matter.
 * Histories here are generated with contexts drawn from arbitrary subsets of earlier dots,
 * so dots of one actor routinely arrive out of order.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type CausalContext, type Dot, addDot, contains, emptyContext } from "../../src/clock/context.ts";
import { type KeyState, EMPTY_STATE, applyEvent, decodeState, encodeState, foldEvents, liveSiblings, mergeStates, nextDot, replicaDecoder, statesEqual } from "../../src/clock/fold.ts";
import type { Event } from "../../src/event/event.ts";

const RUNS = { numRuns: 1000 };
const ACTORS = ["a.1", "b.1", "c.1", "a.2"];

function ctxOf(dots: Dot[]): CausalContext {
  const ctx = emptyContext();
  for (const d of dots) addDot(ctx, d);
  return ctx;
}

interface WriteSpec {
  actor: number;
  /** Indexes (mod the number of earlier events) of the events this write had seen. */
  seen: number[];
  tombstone: boolean;
  value: number;
}

const writeSpec = fc.record({
  actor: fc.nat({ max: ACTORS.length - 1 }),
  seen: fc.array(fc.nat(), { maxLength: 6 }),
  tombstone: fc.boolean(),
  value: fc.nat({ max: 1000 }),
});

/** Turns specs into events with unique dots and contexts over earlier events. */
function buildHistory(specs: WriteSpec[]): Event[] {
  const counters = new Map<string, number>();
  const events: Event[] = [];
  for (const s of specs) {
    const actor = ACTORS[s.actor]!;
    const counter = (counters.get(actor) ?? 0) + 1;
    counters.set(actor, counter);
    const seen = events.length === 0 ? [] : s.seen.map((i) => events[i % events.length]!.dot);
    events.push({
      key: "k",
      dot: { actor, counter },
      context: ctxOf(seen),
      value: s.tombstone ? null : new TextEncoder().encode(String(s.value)),
      contentType: "text/plain",
      ts: s.value,
    });
  }
  return events;
}

const history = fc.array(writeSpec, { minLength: 1, maxLength: 25 }).map(buildHistory);

/** A history and a permutation of it with some events delivered more than once. */
const reordered = history.chain((events) =>
  fc.tuple(
    fc.constant(events),
    fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length }),
    fc.array(fc.constantFrom(...events), { maxLength: 10 }),
  ),
);

/** The definition, computed from scratch: survivors are events no other event's context covers. */
function reference(events: Event[]): { siblings: string[]; covered: (d: Dot) => boolean } {
  const unique = [...new Map(events.map((e) => [`${e.dot.actor}:${e.dot.counter}`, e])).values()];
  const siblings = unique.filter((e) => !unique.some((o) => contains(o.context, e.dot))).map((e) => `${e.dot.actor}:${e.dot.counter}`);
  const covered = (d: Dot) => unique.some((e) => contains(e.context, d) || (e.dot.actor === d.actor && e.dot.counter === d.counter));
  return { siblings: siblings.sort(), covered };
}

const dotsOf = (s: KeyState) => s.siblings.map((v) => `${v.dot.actor}:${v.dot.counter}`).sort();

describe("fold of events (property, 1,000 runs each)", () => {
  test("order and duplicates do not change the state (commutative, idempotent)", () => {
    fc.assert(
      fc.property(reordered, ([events, shuffled, dups]) => {
        const a = foldEvents(events);
        const b = foldEvents([...shuffled, ...dups, ...shuffled.slice(0, 3)]);
        expect(Buffer.from(encodeState(b)).equals(Buffer.from(encodeState(a)))).toBe(true);
      }),
      RUNS,
    );
  });

  test("the fold equals the definition: survivors are the uncovered events, the context is every dot seen", () => {
    fc.assert(
      fc.property(reordered, ([, shuffled]) => {
        const state = foldEvents(shuffled);
        const ref = reference(shuffled);
        expect(dotsOf(state)).toEqual(ref.siblings);
        for (const e of shuffled) {
          expect(contains(state.ctx, e.dot)).toBe(true);
          for (const actor of ACTORS) {
            for (let n = 1; n <= 30; n++) expect(contains(state.ctx, { actor, counter: n })).toBe(ref.covered({ actor, counter: n }));
          }
        }
      }),
      RUNS,
    );
  });

  test("merging states is a join: commutative, associative, idempotent, and equals folding the union", () => {
    const split = history.chain((events) => fc.tuple(fc.constant(events), fc.array(fc.nat({ max: 2 }), { minLength: events.length, maxLength: events.length })));
    fc.assert(
      fc.property(split, ([events, where]) => {
        const parts: Event[][] = [[], [], []];
        events.forEach((e, i) => parts[where[i]!]!.push(e));
        const [a, b, c] = parts.map((p) => foldEvents(p)) as [KeyState, KeyState, KeyState];
        expect(statesEqual(mergeStates(a, b), mergeStates(b, a))).toBe(true);
        expect(statesEqual(mergeStates(mergeStates(a, b), c), mergeStates(a, mergeStates(b, c)))).toBe(true);
        expect(statesEqual(mergeStates(a, a), a)).toBe(true);
        expect(statesEqual(mergeStates(mergeStates(a, b), c), foldEvents(events))).toBe(true);
      }),
      RUNS,
    );
  });

  test("states read back from their bytes merge exactly like states folded fresh (the equal-bytes shortcut)", () => {
    const split = history.chain((events) => fc.tuple(fc.constant(events), fc.array(fc.boolean(), { minLength: events.length, maxLength: events.length })));
    fc.assert(
      fc.property(split, fc.boolean(), ([events, inA], same) => {
        const pa = events.filter((_, i) => inA[i]);
        const pb = same ? pa : events.filter((_, i) => !inA[i]);
        const read = (es: Event[]) => decodeState(encodeState(foldEvents(es)));
        const expected = encodeState(mergeStates(foldEvents(pa), foldEvents(pb)));
        expect(Buffer.compare(encodeState(mergeStates(read(pa), read(pb))), expected)).toBe(0);
        expect(Buffer.compare(encodeState(mergeStates(EMPTY_STATE, read(pb))), encodeState(foldEvents(pb)))).toBe(0);
      }),
      RUNS,
    );
  });

  test("replica answers decode once per distinct byte string, to states equal to decoding each", () => {
    const answers = history.chain((events) =>
      fc.array(fc.option(fc.subarray(events), { nil: null }), { minLength: 1, maxLength: 4 }).map((parts) => parts.map((p) => (p === null ? null : encodeState(foldEvents(p))))),
    );
    fc.assert(
      fc.property(answers, (bytes) => {
        const decode = replicaDecoder();
        const states = bytes.map((b) => decode(b === null ? null : new Uint8Array(b)));
        bytes.forEach((b, i) => {
          expect(Buffer.compare(encodeState(states[i]!), b ?? encodeState(EMPTY_STATE))).toBe(0);
          bytes.forEach((o, j) => {
            const equal = b === null ? o === null : o !== null && Buffer.compare(b, o) === 0;
            expect(states[i] === states[j]).toBe(equal);
          });
        });
      }),
      RUNS,
    );
  });

  test("concurrent puts (neither saw the other) both survive as siblings", () => {
    fc.assert(
      fc.property(history, fc.nat({ max: 1000 }), fc.nat({ max: 1000 }), (events, x, y) => {
        const base = foldEvents(events);
        const put = (actor: string, v: number): Event => ({
          key: "k",
          dot: nextDot(base, actor),
          context: base.ctx,
          value: new Uint8Array([v & 255]),
          contentType: "",
          ts: v,
        });
        const p1 = put("x.1", x);
        const p2 = put("y.1", y);
        const s = foldEvents([p2, p1], base);
        expect(dotsOf(s)).toEqual([`${p1.dot.actor}:${p1.dot.counter}`, `${p2.dot.actor}:${p2.dot.counter}`].sort());
      }),
      RUNS,
    );
  });

  test("a put carrying a read's context replaces exactly what was read", () => {
    const scenario = fc.tuple(history, fc.array(writeSpec, { maxLength: 8 }));
    fc.assert(
      fc.property(scenario, ([seenEvents, laterSpecs]) => {
        const read = foldEvents(seenEvents);
        // Writes the reader did not see, from other actors, racing with its write.
        const unseen = buildHistory(laterSpecs).map((e) => ({ ...e, dot: { actor: `z${e.dot.actor}`, counter: e.dot.counter }, context: emptyContext() }));
        const write: Event = { key: "k", dot: nextDot(read, "w.1"), context: read.ctx, value: new Uint8Array([1]), contentType: "", ts: 0 };
        const after = foldEvents([...unseen, write], read);
        const expected = [...dotsOf(foldEvents(unseen, read)).filter((d) => !read.siblings.some((v) => `${v.dot.actor}:${v.dot.counter}` === d)), `w.1:${write.dot.counter}`];
        expect(dotsOf(after)).toEqual(expected.sort());
      }),
      RUNS,
    );
  });

  test("a delete with context leaves a tombstone, and a concurrent put survives beside it", () => {
    fc.assert(
      fc.property(history, (events) => {
        const read = foldEvents(events);
        const del: Event = { key: "k", dot: nextDot(read, "d.1"), context: read.ctx, value: null, contentType: "", ts: 1 };
        const afterDelete = applyEvent(read, del);
        expect(afterDelete.siblings.length).toBe(1);
        expect(liveSiblings(afterDelete)).toEqual([]);
        const put: Event = { key: "k", dot: nextDot(read, "p.1"), context: read.ctx, value: new Uint8Array([7]), contentType: "", ts: 2 };
        for (const order of [[del, put], [put, del]]) {
          const s = foldEvents(order, read);
          expect(s.siblings.length).toBe(2);
          expect(liveSiblings(s).map((v) => v.value)).toEqual([new Uint8Array([7])]);
        }
      }),
      RUNS,
    );
  });
});

describe("fold of events (examples)", () => {
  test("dot (A,5) arriving before (A,4) loses neither when they are concurrent", () => {
    const e = (counter: number): Event => ({ key: "k", dot: { actor: "A", counter }, context: ctxOf([]), value: new Uint8Array([counter]), contentType: "", ts: counter });
    const s = foldEvents([e(5), e(4)]);
    expect(dotsOf(s)).toEqual(["A:4", "A:5"]);
    expect(statesEqual(s, foldEvents([e(4), e(5)]))).toBe(true);
  });

  test("a superseded event delivered late stays superseded and cannot resurrect", () => {
    const first: Event = { key: "k", dot: { actor: "A", counter: 1 }, context: emptyContext(), value: new Uint8Array([1]), contentType: "", ts: 1 };
    const second: Event = { key: "k", dot: { actor: "B", counter: 1 }, context: ctxOf([first.dot]), value: null, contentType: "", ts: 2 };
    const s = foldEvents([second, first, first]);
    expect(liveSiblings(s)).toEqual([]);
    expect(dotsOf(s)).toEqual(["B:1"]);
  });

  test("the empty state is the identity of merge", () => {
    const s = foldEvents([{ key: "k", dot: { actor: "A", counter: 1 }, context: emptyContext(), value: new Uint8Array([1]), contentType: "", ts: 1 }]);
    expect(statesEqual(mergeStates(s, EMPTY_STATE), s)).toBe(true);
  });
});
