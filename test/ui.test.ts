/**
 * The status page in a real browser (Debian's Chromium driven by playwright-core) against a
 * real 3-node cluster: what a person opening /ui sees, including a node dying under it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type BrowserContext, type Page, chromium } from "playwright-core";
import { preferenceList } from "../src/ring/ring.ts";
import { CHROMIUM, chromiumArgs, ensureChromium } from "./support/chromium.ts";
import { TestCluster } from "./support/cluster.ts";
import { NodeProcess, tempDir } from "./support/node-process.ts";

const ARTIFACTS = join(import.meta.dir, "artifacts");

interface ClusterView {
  replicas: number;
  ring: { partitions: number; owners: string[] };
}

let c: TestCluster | undefined;
let browser: BrowserContext | undefined;
let profile: string | undefined;
/** Console errors and uncaught exceptions of every page (CSP violations included), each under its page's label. */
const pageErrors: string[] = [];

async function open(label: string): Promise<Page> {
  const page = await browser!.newPage();
  page.on("console", (msg) => {
    if (msg.type() === "error") pageErrors.push(`${label}: ${msg.text()}`);
  });
  page.on("pageerror", (err) => pageErrors.push(`${label}: ${err.message}`));
  return page;
}

beforeAll(async () => {
  // Installing comes first and may take minutes on a fresh machine; it throws, failing every test here, when it cannot.
  await ensureChromium();
  c = await TestCluster.start();
  profile = tempDir("ringlog-chromium-");
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: chromiumArgs(),
    viewport: { width: 1400, height: 1000 },
  });
}, 900_000);

afterAll(async () => {
  await browser?.close();
  await c?.destroy();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

describe("status page", () => {
  let page: Page;
  let view: ClusterView;

  test("lists every member up and paints every vnode in its owner's colour", async () => {
    const n1 = c!.node("n1");
    view = (await (await fetch(`${n1.url}/cluster`)).json()) as ClusterView;
    page = await open("/ui");
    const res = await page.goto(`${n1.url}/ui`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()["content-type"]).toStartWith("text/html");
    expect(res?.headers()["content-security-policy"]).toContain("connect-src 'self'");

    await page.waitForSelector('#members tr[data-member="n3"]', { timeout: 5_000 });
    const members = await page.$$eval("#members tr[data-member]", (rows) => rows.map((r) => [r.getAttribute("data-member"), r.getAttribute("data-status")]));
    expect(members).toEqual([["n1", "up"], ["n2", "up"], ["n3", "up"]]);

    // Queried and styled in one evaluation under a node the refresh keeps: $$eval queries first
    // and runs the function in a second step, and a refresh in between detaches the rows (a
    // detached element's computed style is empty).
    const cells = await page.$eval("body", (body) =>
      [...body.querySelectorAll("#ring .vnode")].map((el) => ({ vnode: Number(el.getAttribute("data-vnode")), owner: el.getAttribute("data-owner"), colour: body.ownerDocument.defaultView!.getComputedStyle(el).backgroundColor })),
    );
    expect(cells.length).toBe(view.ring.partitions);
    expect(cells.map((x) => x.vnode)).toEqual(view.ring.owners.map((_, v) => v));
    expect(cells.map((x) => x.owner)).toEqual(view.ring.owners);
    // One colour per owner, different owners different colours, and the members' swatches use the same ones.
    const colourOf = new Map<string, Set<string>>();
    for (const cell of cells) colourOf.set(cell.owner!, (colourOf.get(cell.owner!) ?? new Set()).add(cell.colour));
    for (const [owner, colours] of colourOf) expect({ owner, colours: colours.size }).toEqual({ owner, colours: 1 });
    const ownerColours = [...colourOf.values()].map((s) => [...s][0]!);
    expect(new Set(ownerColours).size).toBe(3);
    for (const cell of cells) expect(cell.colour).not.toMatch(/rgba\(0, 0, 0, 0\)|transparent/);
    const swatches = await page.$eval("body", (body) =>
      [...body.querySelectorAll("#members tr[data-member]")].map((r) => [r.getAttribute("data-member"), body.ownerDocument.defaultView!.getComputedStyle(r.querySelector(".swatch")!).backgroundColor]),
    );
    for (const [id, colour] of swatches) expect(colour).toBe([...colourOf.get(id!)!][0]!);

    // Hovering a vnode shows the preference list exactly as the ring module computes it.
    for (const v of [0, 17, view.ring.partitions - 1]) {
      await page.hover(`#ring .vnode[data-vnode="${v}"]`);
      const shown = await page.$$eval("#pref-primaries li", (lis) => lis.map((li) => li.getAttribute("data-node")));
      const expected = preferenceList({ epoch: 1, owners: view.ring.owners }, v, view.replicas);
      expect(shown).toEqual(expected.primaries);
      expect(await page.$$eval("#pref-fallbacks li", (lis) => lis.length)).toBe(expected.fallbacks.length);
    }

    expect(await page.textContent("#handoff")).toContain("no handoff in progress");
    expect(await page.textContent("#hints")).toContain("no hints queued");
    expect(await page.textContent("#aae")).toContain("rounds completed");
    expect(await page.textContent("#conn")).toContain("live");
  }, 30_000);

  test("a SIGKILLed node shows as down within seconds, with the hints held for it", async () => {
    const n1 = c!.node("n1");
    await c!.node("n3").kill("SIGKILL");
    const killedAt = Date.now();
    // Failure detection takes RINGLOG_DOWN_AFTER_MS (2 s in tests) plus a gossip round; the page polls every second.
    await page.waitForSelector('#members tr[data-member="n3"][data-status="down"]', { timeout: 10_000 });
    const shownAfter = Date.now() - killedAt;
    expect(shownAfter).toBeLessThan(8_000);
    const statuses = await page.$$eval("#members tr[data-member]", (rows) => rows.map((r) => [r.getAttribute("data-member"), r.getAttribute("data-status")]));
    expect(statuses).toEqual([["n1", "up"], ["n2", "up"], ["n3", "down"]]);
    const cellStatus = await page.$$eval("#ring .vnode", (els) => els.map((el) => [el.getAttribute("data-owner"), el.getAttribute("data-owner-status")]));
    for (const [owner, status] of cellStatus) expect(status).toBe(owner === "n3" ? "down" : "up");

    // Writes meant for n3 wait in hint queues; the page shows the queue for n3.
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${n1.url}/kv/ui-${i}`, { method: "PUT", body: `v${i}` });
      expect(r.status).toBe(204);
    }
    await page.waitForSelector('#hints tr[data-target="n3"]', { timeout: 5_000 });

    const v = view.ring.owners.indexOf("n3");
    await page.hover(`#ring .vnode[data-vnode="${v}"]`);
    expect(await page.$eval('#pref-primaries li[data-node="n3"] .badge', (b) => b.textContent)).toBe("down");

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "ui.png"), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 30_000);

  test("renders handoff progress when /cluster carries it, whatever fields it lacks", async () => {
    // The node's real answer with a handoff object spliced in, since no join or leave runs here.
    const n1 = c!.node("n1");
    let handoff: unknown;
    const tab = await open("/ui with a handoff");
    await tab.route("**/cluster", async (route) => {
      const real = (await (await route.fetch()).json()) as Record<string, unknown>;
      await route.fulfill({ json: handoff === undefined ? real : { ...real, handoff } });
    });
    await tab.goto(`${n1.url}/ui`);
    await tab.waitForSelector("#handoff-none", { timeout: 5_000 });

    // A committed plan with its fields beside the transfers.
    handoff = {
      epoch: 2,
      committed: true,
      staged: { join: ["n4"], leave: [] },
      owners: { current: { n1: 22, n2: 21, n3: 21 }, target: { n1: 16, n2: 16, n3: 16, n4: 16 } },
      transfers: [
        { id: "t1", vnode: 3, from: "n1", to: "n4", status: "running", phase: "snapshot", keysSent: 250, keysTotal: 1000, bytesSent: 2048, startedAgoMs: 1500 },
        { id: "t2", vnode: 7, from: "n2", to: "n4", status: "done", keysSent: 900, keysTotal: 900, bytesSent: 10_240, tookMs: 800 },
        { id: "t3", vnode: 9, from: "n3", to: "n4", status: "waiting", keysSent: 0, keysTotal: 0, bytesSent: 0 },
      ],
    };
    await tab.waitForSelector('#handoff-transfers tr[data-vnode="3"][data-status="running"]', { timeout: 5_000 });
    const plan = await tab.textContent("#handoff-plan");
    for (const s of ["committed", "n4", "n1 22→16", "1 running", "1 done", "1 waiting"]) expect(plan).toContain(s);
    expect(await tab.textContent('#handoff-transfers tr[data-vnode="3"]')).toContain("250 / 1,000");
    expect(await tab.getAttribute('#ring .vnode[data-vnode="3"]', "data-transfer")).toBe("running");
    expect(await tab.getAttribute('#ring .vnode[data-vnode="4"]', "data-transfer")).toBeNull();
    await tab.screenshot({ path: join(ARTIFACTS, "ui-handoff.png"), fullPage: true });

    // The {plan, transfers} form, with transfers missing most fields.
    handoff = { plan: { joining: ["n5"] }, transfers: [{ vnode: 12, status: "waiting" }, { status: "running" }, null] };
    await tab.waitForSelector('#handoff-transfers tr[data-vnode="12"]', { timeout: 5_000 });
    expect(await tab.textContent("#handoff-plan")).toContain("n5");
    expect(await tab.$$eval("#handoff-transfers tbody tr", (rows) => rows.length)).toBe(2);

    handoff = { transfers: [] };
    await tab.waitForSelector("#handoff-none", { timeout: 5_000 });
    await tab.close();
    expect(pageErrors).toEqual([]);
  }, 30_000);
});

describe("status page with an API token", () => {
  let node: NodeProcess | undefined;
  afterAll(async () => {
    await node?.destroy();
  });

  test("the page is open, its data is not: it takes the token from ?token= or from its form", async () => {
    node = await NodeProcess.start({ env: { RINGLOG_API_TOKEN: "ui-token" } });
    expect((await fetch(`${node.url}/ui`)).status).toBe(200);
    expect((await fetch(`${node.url}/cluster`)).status).toBe(401);

    const viaQuery = await open("/ui?token=");
    await viaQuery.goto(`${node.url}/ui?token=ui-token`);
    await viaQuery.waitForSelector('#members tr[data-member="n1"][data-status="up"]', { timeout: 5_000 });
    // The token is dropped from the address bar once read.
    expect(viaQuery.url()).toBe(`${node.url}/ui`);
    await viaQuery.close();

    // A fresh tab has no token in its session: the page asks for one instead of showing data.
    const viaForm = await open("/ui without a token");
    const unauthorized: number[] = [];
    viaForm.on("response", (r) => {
      if (r.status() === 401) unauthorized.push(r.status());
    });
    await viaForm.goto(`${node.url}/ui`);
    await viaForm.waitForSelector("#token-form.shown", { timeout: 5_000 });
    await viaForm.fill("#token-input", "ui-token");
    await viaForm.click('#token-form button[type="submit"]');
    await viaForm.waitForSelector('#members tr[data-member="n1"][data-status="up"]', { timeout: 5_000 });
    await viaForm.close();
    expect(unauthorized.length).toBeGreaterThan(0);
    // The 401s the page asked for are expected; nothing else may have failed.
    expect(pageErrors.filter((e) => !e.includes("401"))).toEqual([]);
  }, 30_000);
});
