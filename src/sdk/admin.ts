/**
 * The typed admin client: join, leave, the plan and its commit, and the cluster view. Admin
 * routes require the cluster secret.
 */
import createClient from "openapi-fetch";
import type { components, paths } from "../api/schema.gen.ts";
import { RinglogApiError } from "./client.ts";

export type Plan = components["schemas"]["Plan"];
export type Cluster = components["schemas"]["Cluster"];

export interface AdminOptions {
  baseUrl: string;
  /** The cluster secret (RINGLOG_CLUSTER_SECRET). */
  secret: string;
  /** The node's API token, when it requires one (for the cluster view). */
  token?: string;
  fetch?: typeof fetch;
}

function unwrap<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.response.ok && r.data !== undefined) return r.data;
  const e = r.error as { code?: string; message?: string; details?: Record<string, unknown> } | undefined;
  throw new RinglogApiError(r.response.status, e?.code ?? "unknown", e?.message ?? r.response.statusText, e?.details);
}

export class RinglogAdmin {
  private readonly api;

  constructor(o: AdminOptions) {
    this.api = createClient<paths>({
      baseUrl: o.baseUrl.replace(/\/$/, ""),
      ...(o.fetch ? { fetch: o.fetch } : {}),
      headers: { "x-ringlog-secret": o.secret, ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
    });
  }

  /** Makes the node this client talks to (an empty one) join the cluster `seed` belongs to; staged. */
  async join(seed: string): Promise<Plan> {
    return unwrap(await this.api.POST("/admin/join", { body: { seed } }));
  }

  /** Stages the leave of `node` (default: the node this client talks to). */
  async leave(node?: string): Promise<Plan> {
    return unwrap(await this.api.POST("/admin/leave", { body: node ? { node } : {} }));
  }

  async plan(): Promise<Plan> {
    return unwrap(await this.api.GET("/admin/plan"));
  }

  async clearPlan(): Promise<Plan> {
    return unwrap(await this.api.DELETE("/admin/plan"));
  }

  async commit(): Promise<Plan> {
    return unwrap(await this.api.POST("/admin/commit"));
  }

  async cluster(): Promise<Cluster> {
    return unwrap(await this.api.GET("/cluster"));
  }
}
