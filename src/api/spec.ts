/**
 * openapi.yaml is the contract: this module loads it once and derives, per operation, the
 * JSON schemas fastify validates requests with, so the spec and the checks cannot drift.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { FastifySchema } from "fastify";

export const SPEC_PATH = join(import.meta.dir, "..", "..", "openapi.yaml");

type Json = Record<string, unknown>;

interface Parameter {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  required?: boolean;
  schema?: Json;
  /** A path parameter that takes the rest of the path, slashes included. */
  "x-ringlog-rest-of-path"?: boolean;
}

interface Operation {
  operationId: string;
  parameters?: (Parameter | { $ref: string })[];
  security?: Record<string, unknown>[];
}

export interface OpenApiDocument extends Json {
  paths: Record<string, Json & { parameters?: (Parameter | { $ref: string })[] }>;
  components: Json;
}

export const HTTP_METHODS = ["get", "put", "post", "delete", "patch", "options"] as const;

export function loadSpec(path = SPEC_PATH): OpenApiDocument {
  return Bun.YAML.parse(readFileSync(path, "utf8")) as OpenApiDocument;
}

function deref<T>(doc: OpenApiDocument, node: T | { $ref: string }): T {
  if (node && typeof node === "object" && "$ref" in node) {
    const parts = (node.$ref as string).replace(/^#\//, "").split("/");
    return parts.reduce<unknown>((n, p) => (n as Json)[p], doc) as T;
  }
  return node as T;
}

/** The schema with every $ref replaced by what it points to (fastify compiles it standalone). */
function inline(doc: OpenApiDocument, node: unknown): unknown {
  if (Array.isArray(node)) return node.map((n) => inline(doc, n));
  if (!node || typeof node !== "object") return node;
  const resolved = "$ref" in node ? deref<Json>(doc, node as { $ref: string }) : (node as Json);
  return Object.fromEntries(Object.entries(resolved).map(([k, v]) => [k, inline(doc, v)]));
}

export interface SpecRoute {
  method: (typeof HTTP_METHODS)[number];
  /** The spec's path with {param} rewritten to fastify's :param, or * for a rest-of-path one. */
  url: string;
  /** The path as the spec writes it, e.g. /kv/{key}: the route's name in traces. */
  path: string;
  operationId: string;
  schema: FastifySchema;
  /** Who may call it: peers with the cluster secret, clients with the API token (when one is set), anyone. */
  guard: "clusterSecret" | "apiToken" | "none";
}

/** Every operation in the spec with the request schema fastify should enforce for it. */
export function specRoutes(doc: OpenApiDocument): SpecRoute[] {
  const routes: SpecRoute[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of HTTP_METHODS) {
      const op = item[method] as Operation | undefined;
      if (!op) continue;
      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map((p) => deref<Parameter>(doc, p));
      const group = (where: Parameter["in"], lower: boolean) => {
        const ps = params.filter((p) => p.in === where);
        if (ps.length === 0) return undefined;
        const name = (p: Parameter) => (p["x-ringlog-rest-of-path"] ? "*" : lower ? p.name.toLowerCase() : p.name);
        return {
          type: "object",
          properties: Object.fromEntries(ps.map((p) => [name(p), inline(doc, p.schema ?? {})])),
          required: ps.filter((p) => p.required).map(name),
        };
      };
      const schema: FastifySchema = {};
      const pathSchema = group("path", false);
      const querySchema = group("query", false);
      const headerSchema = group("header", true);
      if (pathSchema) schema.params = pathSchema;
      if (querySchema) schema.querystring = querySchema;
      if (headerSchema) schema.headers = headerSchema;
      const rest = new Set(params.filter((p) => p["x-ringlog-rest-of-path"]).map((p) => p.name));
      const url = path.replace(/\{(\w+)\}/g, (_, n: string) => (rest.has(n) ? "*" : `:${n}`));
            const schemes = (op.security ?? []).flatMap((req) => Object.keys(req));
      const guard = schemes.includes("clusterSecret") ? "clusterSecret" : schemes.includes("apiToken") ? "apiToken" : "none";
      routes.push({ method, url, path, operationId: op.operationId, schema, guard });
    }
  }
  return routes;
}
