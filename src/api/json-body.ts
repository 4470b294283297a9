import { RinglogError } from "../errors.ts";

/** Parses a raw JSON request body (routes receive bodies as bytes). */
export function jsonBody<T>(body: unknown): T {
  try {
    return JSON.parse((body as Buffer).toString("utf8")) as T;
  } catch {
    throw new RinglogError("invalid_request", "body is not JSON");
  }
}
