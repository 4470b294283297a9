/** What the fault harness records: every operation's invocation, completion and result. */

export type OpType = "read" | "put" | "delete";
/** ok: it happened; fail: it certainly did not; unknown: it may or may not have (timeout, 503). */
export type Outcome = "ok" | "fail" | "unknown";

export interface Op {
  id: number;
  process: number;
  key: string;
  type: OpType;
  /** The node the request went through. */
  node: string;
  invoke: number;
  complete: number;
  outcome: Outcome;
  /** put: the (unique) value written. */
  value?: string;
  /**
   * put/delete: the live values of the read whose causal context this write sent back, i.e.
   * exactly what it replaces. Absent for a blind write (no context).
   */
  seen?: string[];
  /** read: the live values returned (empty for 404) and the sibling count. */
  values?: string[];
  error?: string;
}

export function describeOp(op: Op): string {
  const t = `[${op.invoke}-${op.complete}ms]`;
  const what =
    op.type === "read"
      ? `read → ${op.outcome === "ok" ? JSON.stringify(op.values) : op.outcome}`
      : `${op.type}${op.value ? ` ${op.value}` : ""}${op.seen ? ` replacing ${JSON.stringify(op.seen)}` : " (blind)"} → ${op.outcome}`;
  return `#${op.id} p${op.process} via ${op.node} ${t} ${op.key}: ${what}${op.error ? ` (${op.error})` : ""}`;
}
