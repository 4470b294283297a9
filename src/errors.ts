/**
 * One error shape everywhere: a stable code, a message for people, structured details.
 * The HTTP status is a function of the code, so every layer can raise the same error.
 */
import type { components } from "./api/schema.gen.ts";

export type ErrorBody = components["schemas"]["Error"];

export const STATUS_BY_CODE = {
  invalid_key: 400,
  invalid_context: 400,
  invalid_content_type: 400,
  invalid_request: 400,
  unauthorized: 401,
  not_found: 404,
  method_not_allowed: 405,
  too_many_siblings: 409,
  cluster_change_refused: 409,
  value_too_large: 413,
  body_too_large: 413,
  unsupported_media_type: 415,
  request_timeout: 408,
  not_ready: 503,
  quorum_unavailable: 503,
  peer_unavailable: 503,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof STATUS_BY_CODE;

export class RinglogError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }

  get status(): number {
    return STATUS_BY_CODE[this.code];
  }

  toBody(): ErrorBody {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}
