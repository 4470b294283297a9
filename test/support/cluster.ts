/** A cluster of real node processes on 127.0.0.1, with helpers to inspect and disturb it. */
import { randomBytes } from "node:crypto";
import { packr } from "../../src/event/event.ts";
import { type KeyState, EMPTY_STATE, decodeState } from "../../src/clock/fold.ts";
import { vnodeOf } from "../../src/ring/partition.ts";
import { NodeProcess, freePort } from "./node-process.ts";

export interface ClusterOptions {
  size?: number;
  env?: Record<string, string>;
  /** Data folders prepared in advance, one per node (n1, n2, …). */
  dataDirs?: string[];
}

/** A node's own replica of a key through /internal/read (its stored state bytes, or nil). */
export async function readReplica(n: NodeProcess, secret: string, key: string, partitions = 64): Promise<KeyState> {
  const res = await fetch(`${n.url}/internal/read`, {
    method: "POST",
    headers: { "content-type": "application/msgpack", "x-ringlog-secret": secret },
    body: packr.pack([[vnodeOf(key, partitions), key]]),
  });
  if (res.status !== 200) throw new Error(`replica read on ${n.nodeId}: ${res.status}`);
  const [bytes] = packr.unpack(new Uint8Array(await res.arrayBuffer())) as (Uint8Array | null)[];
  return bytes ? decodeState(bytes) : EMPTY_STATE;
}

export class TestCluster {
  private constructor(
    readonly nodes: NodeProcess[],
    readonly secret: string,
    private readonly env: Record<string, string>,
  ) {}

  static async start(opts: ClusterOptions = {}): Promise<TestCluster> {
    const size = opts.size ?? 3;
    const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    const ports = await Promise.all(ids.map(() => freePort()));
    const secret = randomBytes(12).toString("hex");
    const env = {
      RINGLOG_CLUSTER_SECRET: secret,
      RINGLOG_SEEDS: ports.map((p) => `http://127.0.0.1:${p}`).join(","),
      RINGLOG_INITIAL_MEMBERS: ids.join(","),
      RINGLOG_TEST_FAULTS: "1",
      RINGLOG_GOSSIP_INTERVAL_MS: "500",
      RINGLOG_DOWN_AFTER_MS: "2000",
      RINGLOG_COORDINATOR_TIMEOUT_MS: "3000",
      ...opts.env,
    };
    const nodes = await Promise.all(
      ids.map((id, i) => NodeProcess.start({ nodeId: id, port: ports[i]!, env, ...(opts.dataDirs?.[i] ? { dataDir: opts.dataDirs[i] } : {}) })),
    );
    const cluster = new TestCluster(nodes, secret, env);
    await cluster.waitAllUp();
    return cluster;
  }

  /** Starts a node of its own (it owns a one-node ring) with this cluster's secret, ready to join. */
  async addNode(id: string): Promise<NodeProcess> {
    const { RINGLOG_SEEDS: _seeds, RINGLOG_INITIAL_MEMBERS: _members, ...env } = this.env;
    const node = await NodeProcess.start({ nodeId: id, env });
    this.nodes.push(node);
    return node;
  }

  /** Stops a node and forgets it (after it left the cluster). */
  async removeNode(id: string): Promise<void> {
    const node = this.node(id);
    await node.destroy();
    this.nodes.splice(this.nodes.indexOf(node), 1);
  }

  /** The ring as a node sees it. */
  async ring(n: NodeProcess): Promise<{ epoch: number; owners: string[]; removed?: string[]; handingOff: boolean }> {
    const c = (await (await fetch(`${n.url}/cluster`)).json()) as { ring: { epoch: number; owners: string[]; removed?: string[] }; handoff?: { committed: boolean } };
    return { ...c.ring, handingOff: c.handoff?.committed ?? false };
  }

  node(id: string): NodeProcess {
    const n = this.nodes.find((x) => x.nodeId === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Waits until every node sees every running node up and every stopped one down. */
  async waitAllUp(expectDown: string[] = [], timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const views = await Promise.all(
        this.nodes.filter((n) => !expectDown.includes(n.nodeId)).map((n) => this.members(n).catch(() => null)),
      );
      const ok = views.every((v) => v !== null && v.every((m) => (m.status === "down") === expectDown.includes(m.id)) && v.length === this.nodes.length);
      if (ok) return;
      await Bun.sleep(100);
    }
    throw new Error(`cluster did not settle (expected down: ${expectDown.join(",") || "none"})`);
  }

  async members(n: NodeProcess): Promise<{ id: string; status: string }[]> {
    const r = await fetch(`${n.url}/cluster`);
    return ((await r.json()) as { members: { id: string; status: string }[] }).members;
  }

  /** This node's own replica of a key, read directly (no quorum). */
  replica(n: NodeProcess, key: string, partitions = 64): Promise<KeyState> {
    return readReplica(n, this.secret, key, partitions);
  }

  async hintTotal(n: NodeProcess): Promise<number> {
    const r = await fetch(`${n.url}/debug/hints`);
    return ((await r.json()) as { total: number }).total;
  }

  async aae(n: NodeProcess): Promise<{ rounds: number; exchanges: number; keysRepaired: number; bytesSent: number; bytesReceived: number; tombstonesCollected: number; tombstoneScans: number; vnodes: { vnode: number; root: string }[] }> {
    return (await (await fetch(`${n.url}/debug/aae`)).json()) as never;
  }

  /** Whether every node holds the same Merkle root for every vnode. */
  async rootsAgree(): Promise<boolean> {
    const views = await Promise.all(this.nodes.map((n) => this.aae(n)));
    const first = new Map(views[0]!.vnodes.map((v) => [v.vnode, v.root]));
    return views.every((view) => view.vnodes.every((v) => first.get(v.vnode) === v.root));
  }

  async counters(n: NodeProcess): Promise<Record<string, number>> {
    return (await (await fetch(`${n.url}/debug/counters`)).json()) as Record<string, number>;
  }

  /** Cuts traffic between two nodes, both directions. */
  async partition(a: string, b: string): Promise<void> {
    await this.setFaults(a, [{ peer: b, action: "drop" }]);
    await this.setFaults(b, [{ peer: a, action: "drop" }]);
  }

  async setFaults(id: string, rules: { peer: string; action: "drop" | "delay"; delayMs?: number }[]): Promise<void> {
    const r = await fetch(`${this.node(id).url}/debug/faults`, {
      method: "PUT",
      headers: { "content-type": "application/json", "x-ringlog-secret": this.secret },
      body: JSON.stringify({ rules }),
    });
    if (r.status !== 200) throw new Error(`set faults on ${id}: ${r.status} ${await r.text()}`);
  }

  async setClock(id: string, offsetMs: number): Promise<void> {
    const r = await fetch(`${this.node(id).url}/debug/clock`, {
      method: "PUT",
      headers: { "content-type": "application/json", "x-ringlog-secret": this.secret },
      body: JSON.stringify({ offsetMs }),
    });
    if (r.status !== 200) throw new Error(`set clock on ${id}: ${r.status} ${await r.text()}`);
  }

  async heal(): Promise<void> {
    await Promise.all(this.nodes.filter((n) => n.running).map((n) => this.setFaults(n.nodeId, [])));
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.destroy()));
  }
}

export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await Bun.sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}
