/**
 * The fault layer: drops or delays traffic between this node and named peers, in both
 * directions, and skews the wall clock, changeable at run time. It exists only when the testFaults setting is on;
 * production nodes never construct it.
 */
import type { Link } from "@opentelemetry/api";
import { type Peer, type Transport, TransportError } from "./transport.ts";

export interface FaultRule {
  peer: string;
  action: "drop" | "delay";
  delayMs?: number;
}

export class FaultLayer implements Transport {
  private rules: FaultRule[] = [];
  /** Added to the node's wall clock (clock-skew nemesis). */
  clockOffsetMs = 0;

  constructor(private readonly inner: Transport) {}

  setRules(rules: FaultRule[]): void {
    this.rules = rules;
  }

  getRules(): FaultRule[] {
    return this.rules;
  }

  /** Whether traffic with this peer is cut; the server also refuses its inbound calls. */
  drops(peer: string): boolean {
    return this.rules.some((r) => r.peer === peer && r.action === "drop");
  }

  private async gate(peer: Peer): Promise<void> {
    if (this.drops(peer.id)) throw new TransportError(peer.id, "dropped by the fault layer");
    const delay = this.rules.find((r) => r.peer === peer.id && r.action === "delay");
    if (delay?.delayMs) await Bun.sleep(delay.delayMs);
  }

  async call<T>(peer: Peer, route: string, body: unknown, timeoutMs?: number, links?: Link[]): Promise<T> {
    await this.gate(peer);
    return this.inner.call<T>(peer, route, body, timeoutMs, links);
  }

  async forward(peer: Peer, method: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<Response> {
    await this.gate(peer);
    return this.inner.forward(peer, method, path, headers, body);
  }
}
