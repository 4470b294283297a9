/**
 * Shared checks for tests that talk HTTP to a real node: the one error shape openapi.yaml
 * promises for every 4xx and 5xx, and "the node still serves a normal write and read".
 */
import { expect } from "bun:test";

export interface ErrorBodyShape {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** Why `body` is not the spec's Error schema, or null when it is. */
export function errorShapeProblem(body: unknown): string | null {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "not a JSON object";
  const b = body as Record<string, unknown>;
  if (typeof b.code !== "string" || b.code === "") return "code is not a non-empty string";
  if (typeof b.message !== "string") return "message is not a string";
  const extra = Object.keys(b).filter((k) => k !== "code" && k !== "message" && k !== "details");
  if (extra.length > 0) return `unexpected top-level keys: ${extra.join(", ")}`;
  if ("details" in b && (typeof b.details !== "object" || b.details === null || Array.isArray(b.details))) return "details is not an object";
  return null;
}

/**
 * Asserts the response is `status` with a JSON Error body carrying `code`, and returns the body.
 * Reads the body, so the response cannot be consumed again.
 */
export async function expectError(res: Response, status: number, code: string): Promise<ErrorBodyShape> {
  const text = await res.text();
  const summary = `${res.status} ${text.slice(0, 300)}`;
  expect(summary).toStartWith(`${status} `);
  expect(res.headers.get("content-type") ?? "").toContain("application/json");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`error body is not JSON: ${summary}`);
  }
  expect(errorShapeProblem(body)).toBeNull();
  expect((body as ErrorBodyShape).code).toBe(code);
  return body as ErrorBodyShape;
}

let serial = 0;

/** A normal blind PUT of a fresh key, then a GET of it, both answered as the contract says. */
export async function expectServing(baseUrl: string): Promise<void> {
  const key = `serving-check-${process.pid}-${++serial}`;
  const value = `alive ${serial}`;
  const put = await fetch(`${baseUrl}/kv/${key}`, { method: "PUT", body: value, headers: { "content-type": "text/plain" } });
  expect(put.status).toBe(204);
  expect(put.headers.get("x-ringlog-context")).toBeTruthy();
  const get = await fetch(`${baseUrl}/kv/${key}`);
  expect(get.status).toBe(200);
  expect(get.headers.get("content-type")).toBe("text/plain");
  expect(await get.text()).toBe(value);
}
