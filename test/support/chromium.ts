/**
 * Debian's Chromium for browser tests. Playwright's own browser download cannot work here
 * (only package registries are reachable), so the test installs the distribution's build
 * with apt when it is missing; CI machines start fresh and run as root, so this is what
 * makes the browser test run there too.
 */
import { existsSync } from "node:fs";

export const CHROMIUM = "/usr/bin/chromium";

/**
 * Flags for a quiet headless run in which nothing phones home. The fresh profile folder is
 * given to launchPersistentContext, which refuses a --user-data-dir flag.
 */
export function chromiumArgs(): string[] {
  return [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ];
}

async function run(cmd: string[]): Promise<void> {
  const proc = Bun.spawn(cmd, {
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) {
    const tail = (out + err).trim().split("\n").slice(-15).join("\n");
    throw new Error(`\`${cmd.join(" ")}\` exited with ${code}:\n${tail}`);
  }
}

/**
 * Installs Chromium if it is not there, or throws saying why it cannot: a browser test that
 * silently skipped would pass CI without ever having looked at the page.
 */
export async function ensureChromium(): Promise<string> {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  if (process.getuid?.() !== 0) {
    throw new Error(`${CHROMIUM} is missing and this test is not running as root, so it cannot install it: run \`apt-get install chromium\` first`);
  }
  if (!existsSync("/usr/bin/apt-get")) throw new Error(`${CHROMIUM} is missing and there is no apt-get to install it with (not a Debian machine?)`);
  // Another process on the machine may hold the dpkg lock; wait for it rather than fail.
  const lockWait = ["-o", "DPkg::Lock::Timeout=600"];
  await run(["apt-get", ...lockWait, "update"]);
  // Recommends would add printing and desktop services; a headless screenshot needs only fonts.
  await run(["apt-get", ...lockWait, "install", "-y", "--no-install-recommends", "chromium", "fonts-liberation"]);
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium but ${CHROMIUM} is still missing`);
  return CHROMIUM;
}
