/** Memory of a running process, from /proc (Linux). */
import { readFileSync } from "node:fs";

export interface Memory {
  /** The highest resident set size since the process started (VmHWM). */
  peak: number;
  /** Resident now, split: anonymous memory (heaps) and file pages (e.g. SQLite's mmap of its database). */
  anon: number;
  file: number;
}

/** In bytes. */
export function memory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => {
    const m = status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m"));
    if (!m) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { peak: field("VmHWM"), anon: field("RssAnon"), file: field("RssFile") };
}
