/**
 * The typed Ringlog client, built on openapi-fetch and the types generated from openapi.yaml.
 * Reads return every live version (siblings) with the causal context; `update` is the
 * read-merge-write loop that resolves siblings.
 */
import createClient from "openapi-fetch";
import type { components, paths } from "../api/schema.gen.ts";

export type ErrorBody = components["schemas"]["Error"];
type SiblingList = components["schemas"]["SiblingList"];

export interface Version {
  value: Uint8Array;
  contentType: string;
  /** Coordinator wall clock of the write, when the server reported it. */
  timestamp?: number;
}

export interface ReadResult {
  /** Live versions: none (absent or deleted), one, or several concurrent siblings. */
  siblings: Version[];
  /** Send back on the next write of this key; absent when the key never existed. */
  context?: string;
}

export interface WriteResult {
  context: string;
  siblings: number;
}

/** How many replicas must answer: a number, `one`, `quorum` or `all` (the node's default otherwise). */
export type QuorumValue = number | "one" | "quorum" | "all";

export interface ReadOptions {
  r?: QuorumValue;
  /** Strict: how many of the answers must come from primaries. */
  pr?: QuorumValue;
}

export interface WriteOptions {
  contentType?: string;
  context?: string;
  w?: QuorumValue;
  /** Strict: how many of the acks must come from primaries (fallbacks do not count). */
  pw?: QuorumValue;
}

const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

export type Value = Uint8Array | string;

export class RinglogApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

export interface ClientOptions {
  baseUrl: string;
  fetch?: typeof fetch;
  headers?: Record<string, string>;
  /** The node's API token, when it requires one. */
  token?: string;
}

const CONTEXT = "x-ringlog-context";

function asError(status: number, body: unknown): RinglogApiError {
  const b = body as Partial<ErrorBody> | undefined;
  return new RinglogApiError(status, b?.code ?? "unknown", b?.message ?? String(body), b?.details);
}

const toBytes = (v: Value) => (typeof v === "string" ? new TextEncoder().encode(v) : v);

export class RinglogClient {
  private readonly api;

  constructor(opts: ClientOptions | string) {
    const o = typeof opts === "string" ? { baseUrl: opts } : opts;
    this.api = createClient<paths>({
      baseUrl: o.baseUrl.replace(/\/$/, ""),
      ...(o.fetch ? { fetch: o.fetch } : {}),
      headers: { ...(o.headers ?? {}), ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
    });
  }

  async get(key: string, opts: ReadOptions = {}): Promise<ReadResult> {
    const { data, error, response } = await this.api.GET("/kv/{key}", { params: { path: { key }, query: defined({ r: opts.r, pr: opts.pr }) }, parseAs: "arrayBuffer" });
    const context = response.headers.get(CONTEXT) ?? undefined;
    const withContext = (siblings: Version[]): ReadResult => (context ? { siblings, context } : { siblings });
    if (response.status === 200) {
      return withContext([{ value: new Uint8Array(data as ArrayBuffer), contentType: response.headers.get("content-type") ?? "" }]);
    }
    if (response.status === 300) {
      const list = error as unknown as SiblingList;
      return withContext(
        list.siblings.map((s) => ({ value: new Uint8Array(Buffer.from(s.value, "base64")), contentType: s.contentType, timestamp: s.timestamp })),
      );
    }
    if (response.status === 404 && (error as ErrorBody | undefined)?.code === "not_found") return withContext([]);
    throw asError(response.status, error);
  }

  async put(key: string, value: Value, opts: WriteOptions = {}): Promise<WriteResult> {
    const { error, response } = await this.api.PUT("/kv/{key}", {
      params: { path: { key }, query: defined({ w: opts.w, pw: opts.pw }), header: opts.context ? { "X-Ringlog-Context": opts.context } : {} },
      body: toBytes(value) as unknown as string,
      bodySerializer: (b: unknown) => b as never,
      headers: { "content-type": opts.contentType ?? "application/octet-stream" },
    });
    return this.written(response, error);
  }

  async delete(key: string, opts: { context?: string; w?: QuorumValue; pw?: QuorumValue } = {}): Promise<WriteResult> {
    const { error, response } = await this.api.DELETE("/kv/{key}", {
      params: { path: { key }, query: defined({ w: opts.w, pw: opts.pw }), header: opts.context ? { "X-Ringlog-Context": opts.context } : {} },
    });
    return this.written(response, error);
  }

  /**
   * Reads the key, lets `merge` turn its siblings (possibly none) into one value, and writes
   * that back with the read's context, so the write replaces exactly what was merged.
   */
  async update(key: string, merge: (siblings: Version[]) => Value | Promise<Value>, opts: { contentType?: string } & ReadOptions & Omit<WriteOptions, "context" | "contentType"> = {}): Promise<WriteResult> {
    const read = await this.get(key, defined({ r: opts.r, pr: opts.pr }));
    const value = await merge(read.siblings);
    const contentType = opts.contentType ?? read.siblings[0]?.contentType;
    return this.put(key, value, defined({ context: read.context, contentType, w: opts.w, pw: opts.pw }));
  }

  private written(response: Response, error: unknown): WriteResult {
    if (response.status !== 204) throw asError(response.status, error);
    return { context: response.headers.get(CONTEXT) ?? "", siblings: Number(response.headers.get("x-ringlog-siblings") ?? 0) };
  }
}
