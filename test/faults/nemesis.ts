/**
 * Nemeses: small, combinable fault injectors. Each starts a fault on a cluster and stops it;
 * which nodes they hit comes from the seeded random source, so a plan replays exactly.
 */
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { TestCluster } from "../support/cluster.ts";

export interface NemesisContext {
  cluster: TestCluster;
  rng: () => number;
  log: (line: string) => void;
}

export interface Nemesis {
  name: string;
  start(ctx: NemesisContext): Promise<void>;
  stop(ctx: NemesisContext): Promise<void>;
}

function shuffled<T>(xs: readonly T[], rng: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const ids = (c: TestCluster) => c.nodes.map((n) => n.nodeId);

/** Cuts every link between the two groups. */
async function cut(ctx: NemesisContext, a: string[], b: string[]): Promise<void> {
  const rules = new Map<string, { peer: string; action: "drop" }[]>();
  for (const x of a) for (const y of b) {
    rules.set(x, [...(rules.get(x) ?? []), { peer: y, action: "drop" }]);
    rules.set(y, [...(rules.get(y) ?? []), { peer: x, action: "drop" }]);
  }
  await Promise.all([...rules].map(([id, r]) => ctx.cluster.setFaults(id, r)));
  ctx.log(`cut ${a.join(",")} | ${b.join(",")}`);
}

const heal = async (ctx: NemesisContext) => ctx.cluster.heal();

export const partitionHalves: Nemesis = {
  name: "partition-halves",
  async start(ctx) {
    const order = shuffled(ids(ctx.cluster), ctx.rng);
    const half = Math.floor(order.length / 2);
    await cut(ctx, order.slice(0, half), order.slice(half));
  },
  stop: heal,
};

export const isolateMinority: Nemesis = {
  name: "isolate-minority",
  async start(ctx) {
    const order = shuffled(ids(ctx.cluster), ctx.rng);
    const minority = Math.max(1, Math.floor((order.length - 1) / 2));
    await cut(ctx, order.slice(0, minority), order.slice(minority));
  },
  stop: heal,
};

export const bridge: Nemesis = {
  name: "bridge",
  async start(ctx) {
    const [a, , c] = shuffled(ids(ctx.cluster), ctx.rng);
    await cut(ctx, [a!], [c!]);
  },
  stop: heal,
};

export const messageDelay: Nemesis = {
  name: "delay",
  async start(ctx) {
    const [a, b] = shuffled(ids(ctx.cluster), ctx.rng);
    const delayMs = 50 + Math.floor(ctx.rng() * 400);
    await ctx.cluster.setFaults(a!, [{ peer: b!, action: "delay", delayMs }]);
    await ctx.cluster.setFaults(b!, [{ peer: a!, action: "delay", delayMs }]);
    ctx.log(`delay ${a}<->${b} by ${delayMs} ms`);
  },
  stop: heal,
};

export const messageDrop: Nemesis = {
  name: "drop",
  async start(ctx) {
    const [a, b] = shuffled(ids(ctx.cluster), ctx.rng);
    await ctx.cluster.setFaults(a!, [{ peer: b!, action: "drop" }]);
    ctx.log(`drop ${a}<->${b}`);
  },
  stop: heal,
};

function victim(ctx: NemesisContext) {
  return shuffled(ctx.cluster.nodes, ctx.rng)[0]!;
}

let killed: ReturnType<typeof victim> | undefined;
export const killRestart: Nemesis = {
  name: "kill",
  async start(ctx) {
    killed = victim(ctx);
    await killed.kill("SIGKILL");
    ctx.log(`SIGKILL ${killed.nodeId}`);
  },
  async stop(ctx) {
    await killed!.restart();
    ctx.log(`restarted ${killed!.nodeId}`);
  },
};

let paused: ReturnType<typeof victim> | undefined;
export const pause: Nemesis = {
  name: "pause",
  async start(ctx) {
    paused = victim(ctx);
    paused.proc.kill("SIGSTOP");
    ctx.log(`SIGSTOP ${paused.nodeId}`);
  },
  async stop(ctx) {
    paused!.proc.kill("SIGCONT");
    ctx.log(`SIGCONT ${paused!.nodeId}`);
  },
};

export const clockSkew: Nemesis = {
  name: "clock-skew",
  async start(ctx) {
    for (const n of ctx.cluster.nodes) {
      const offsetMs = Math.round((ctx.rng() * 2 - 1) * 10_000);
      await ctx.cluster.setClock(n.nodeId, offsetMs);
      ctx.log(`clock ${n.nodeId} ${offsetMs > 0 ? "+" : ""}${offsetMs} ms`);
    }
  },
  async stop(ctx) {
    for (const n of ctx.cluster.nodes) await ctx.cluster.setClock(n.nodeId, 0);
  },
};

let wiped: ReturnType<typeof victim> | undefined;
export const wipe: Nemesis = {
  name: "wipe",
  async start(ctx) {
    wiped = victim(ctx);
    await wiped.kill("SIGKILL");
    for (const f of readdirSync(wiped.dataDir)) if (f !== "node.log") rmSync(join(wiped.dataDir, f), { recursive: true, force: true });
    await wiped.restart();
    ctx.log(`wiped ${wiped.nodeId} and restarted it (new actor)`);
  },
  async stop() {},
};

export const ALL_NEMESES: Nemesis[] = [partitionHalves, isolateMinority, bridge, killRestart, pause, clockSkew, messageDelay, messageDrop, wipe];
