/**
 * The status page: one static HTML document whose inline script polls this node's JSON
 * routes. It is read and hashed once at start-up, so serving it costs a header write and a
 * buffer copy, and the Content-Security-Policy can allow exactly that script and stylesheet
 * (the page renders node ids and error strings it receives; nothing else may run).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Handler } from "./server.ts";

export const UI_HTML_PATH = join(import.meta.dir, "ui.html");

function inlineHashes(html: string, tag: "script" | "style"): string[] {
  const hashes = [...html.matchAll(new RegExp(`<${tag}[^>]*>([\\s\\S]*?)</${tag}>`, "g"))].map(
    (m) => `'sha256-${createHash("sha256").update(m[1]!).digest("base64")}'`,
  );
  if (hashes.length === 0) throw new Error(`${UI_HTML_PATH} has no inline ${tag}`);
  return hashes;
}

export interface StatusPage {
  html: Buffer;
  csp: string;
}

export function loadStatusPage(path = UI_HTML_PATH): StatusPage {
  const text = readFileSync(path, "utf8");
  const csp = [
    "default-src 'none'",
    `script-src ${inlineHashes(text, "script").join(" ")}`,
    `style-src ${inlineHashes(text, "style").join(" ")}`,
    "connect-src 'self'",
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return { html: Buffer.from(text, "utf8"), csp };
}

export function uiHandlers(page: StatusPage = loadStatusPage()): Record<string, Handler> {
  return {
    async statusPage(_req, reply) {
      return reply
        .type("text/html; charset=utf-8")
        .header("content-security-policy", page.csp)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("cache-control", "no-cache")
        .send(page.html);
    },
  };
}
