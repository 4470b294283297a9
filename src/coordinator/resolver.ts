/**
 * Per-prefix conflict resolution. The default (`siblings`) keeps every concurrent version
 * for the application; `lww` makes a blind write replace whatever the coordinator has seen
 * and makes reads return only the newest version by timestamp. LWW loses concurrent writes
 * by design (clock skew picks the winner); use it only where that is acceptable.
 */
import type { KeyState, Version } from "../clock/fold.ts";
import { SettingsError } from "../config/settings.ts";

export type ResolverMode = "siblings" | "lww";

export interface ResolverRule {
  prefix: string;
  mode: ResolverMode;
}

/** Parses "prefix=mode,prefix=mode"; the longest matching prefix wins. */
export function parseResolvers(spec: string): ResolverRule[] {
  if (spec.trim() === "") return [];
  return spec.split(",").map((part): ResolverRule => {
    const eq = part.lastIndexOf("=");
    const prefix = part.slice(0, eq);
    const mode = part.slice(eq + 1).trim();
    if (eq < 0 || (mode !== "lww" && mode !== "siblings")) throw new SettingsError(`resolver rule "${part}" must be prefix=lww or prefix=siblings`);
    return { prefix, mode };
  }).sort((a, b) => b.prefix.length - a.prefix.length);
}

export function resolverFor(rules: readonly ResolverRule[], key: string): ResolverMode {
  return rules.find((r) => key.startsWith(r.prefix))?.mode ?? "siblings";
}

function newer(a: Version, b: Version): boolean {
  if (a.ts !== b.ts) return a.ts > b.ts;
  if (a.dot.actor !== b.dot.actor) return a.dot.actor > b.dot.actor;
  return a.dot.counter > b.dot.counter;
}

/** The state a reader sees: unchanged, or under lww only the newest version. */
export function resolve(mode: ResolverMode, state: KeyState): KeyState {
  if (mode === "siblings" || state.siblings.length <= 1) return state;
  const winner = state.siblings.reduce((best, v) => (newer(v, best) ? v : best));
  return { siblings: [winner], ctx: state.ctx };
}
