#!/usr/bin/env node
// The registry this project is built against serves only the linux builds of
// msgpackr-extract, so `npm install` drops the other platforms' optional
// packages from the lockfile and `npm ci` then refuses the lockfile as out of
// sync. Run this after every `npm install` that rewrites package-lock.json: it
// restores the entries (platform-gated, so npm skips them where they do not fit).
import { readFileSync, writeFileSync } from "node:fs";

const path = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(path, "utf8"));
const extract = lock.packages["node_modules/msgpackr-extract"];
const wanted = Object.entries(extract?.optionalDependencies ?? {});
const platforms = { "darwin-arm64": ["darwin", "arm64"], "darwin-x64": ["darwin", "x64"], "linux-arm": ["linux", "arm"], "linux-arm64": ["linux", "arm64"], "linux-x64": ["linux", "x64"], "win32-x64": ["win32", "x64"] };
let added = 0;
for (const [name, version] of wanted) {
  const key = `node_modules/${name}`;
  if (lock.packages[key]) continue;
  const platform = platforms[name.split("msgpackr-extract-")[1]];
  if (!platform) throw new Error(`unknown platform package ${name}`);
  lock.packages[key] = { version, cpu: [platform[1]], license: "MIT", optional: true, os: [platform[0]] };
  added++;
}
const [root, ...rest] = Object.keys(lock.packages);
const sorted = { [root]: lock.packages[root] };
for (const key of rest.sort()) sorted[key] = lock.packages[key];
lock.packages = sorted;
writeFileSync(path, JSON.stringify(lock, null, 2) + "\n");
console.log(`lock-optional: restored ${added} platform entries`);
