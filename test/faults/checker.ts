/**
 * Judges a history against the final, converged state. Pure: it reads no clock and does no
 * I/O, so synthetic histories can prove it catches each kind of bug.
 */
import { type Op, describeOp } from "./history.ts";

export type ViolationKind = "lost-write" | "resurrection" | "divergence" | "stale-read" | "sibling-explosion";

export interface Violation {
  kind: ViolationKind;
  key: string;
  message: string;
  /** The smallest slice of history that shows it. */
  ops: Op[];
}

export interface CheckInput {
  history: Op[];
  /** Each key's live values after healing and convergence. */
  final: Map<string, string[]>;
  /** Each key's state digest on each replica after convergence. */
  replicas: Map<string, Map<string, string>>;
  /** Whether the run had no faults (then every read must see every write acked before it). */
  faultFree: boolean;
  /** The most siblings a read may ever see (the number of concurrent writers). */
  maxSiblings: number;
}

const mayHaveHappened = (op: Op) => op.outcome === "ok" || op.outcome === "unknown";
const isWrite = (op: Op) => op.type === "put" || op.type === "delete";

export function check(input: CheckInput): Violation[] {
  const violations: Violation[] = [];
  const byKey = Map.groupBy(input.history, (op) => op.key);

  for (const [key, ops] of byKey) {
    const writes = ops.filter((op) => isWrite(op) && mayHaveHappened(op));
    // Which writes replaced a given value: those whose read saw it.
    const replacers = new Map<string, Op[]>();
    for (const w of writes) for (const v of w.seen ?? []) replacers.set(v, [...(replacers.get(v) ?? []), w]);
    const final = input.final.get(key) ?? [];
    const putOf = new Map(ops.filter((op) => op.type === "put" && op.value).map((op) => [op.value!, op]));

    for (const p of ops) {
      if (p.type !== "put" || p.outcome !== "ok") continue;
      if (!final.includes(p.value!) && !replacers.has(p.value!)) {
        violations.push({ kind: "lost-write", key, message: `acknowledged write ${p.value} is neither in the final state ${JSON.stringify(final)} nor replaced by a write that read it`, ops: [p] });
      }
    }

    for (const d of ops) {
      if (d.type !== "delete" || d.outcome !== "ok") continue;
      const back = (d.seen ?? []).filter((v) => final.includes(v));
      if (back.length > 0) {
        violations.push({ kind: "resurrection", key, message: `deleted value(s) ${JSON.stringify(back)} are back in the final state`, ops: [...back.map((v) => putOf.get(v)!).filter(Boolean), d] });
      }
    }

    const digests = input.replicas.get(key);
    if (digests && new Set(digests.values()).size > 1) {
      violations.push({ kind: "divergence", key, message: `replicas disagree: ${JSON.stringify(Object.fromEntries(digests))}`, ops: [] });
    }

    if (input.faultFree) {
      const successors = (w: Op): Op[] => {
        const out: Op[] = [];
        const queue = [w];
        const seen = new Set<number>();
        while (queue.length > 0) {
          const cur = queue.shift()!;
          if (cur.type !== "put") continue;
          for (const r of replacers.get(cur.value!) ?? []) {
            if (seen.has(r.id)) continue;
            seen.add(r.id);
            out.push(r);
            queue.push(r);
          }
        }
        return out;
      };
      for (const r of ops) {
        if (r.type !== "read" || r.outcome !== "ok") continue;
        for (const w of ops) {
          if (w.type !== "put" || w.outcome !== "ok" || w.complete >= r.invoke) continue;
          const succ = successors(w);
          const visible = [w.value!, ...succ.filter((s) => s.type === "put").map((s) => s.value!)];
          if (!succ.some((s) => s.type === "delete") && !r.values!.some((v) => visible.includes(v))) {
            violations.push({ kind: "stale-read", key, message: `read saw ${JSON.stringify(r.values)}, missing ${w.value} acknowledged before it started`, ops: [w, r] });
          }
        }
      }
    }

    for (const r of ops) {
      if (r.type === "read" && r.outcome === "ok" && r.values!.length > input.maxSiblings) {
        violations.push({ kind: "sibling-explosion", key, message: `a read saw ${r.values!.length} siblings (bound ${input.maxSiblings})`, ops: [r] });
      }
    }
  }
  return violations;
}

export function formatViolation(v: Violation): string {
  return [`${v.kind} on ${v.key}: ${v.message}`, ...v.ops.map((op) => `    ${describeOp(op)}`)].join("\n");
}
