/**
 * Acceptance of issue 12's web console in a real browser: Debian's `chromium` (installed by scripts/setup.sh)
 * driven by puppeteer-core, against the README's demo guest booted on the real kernel through `xeno create`
 * (xenod and the hypervisor started on demand, the API on a free port):
 *  - an admin logs in, sees the host and the demo domain Running;
 *  - the demo's CPU graph has points (from /rrd_updates);
 *  - its console opens in xterm.js, a typed command's output appears, Ctrl-] detaches;
 *  - a domain is created from an xl.cfg text (start paused), shows as Paused, and is destroyed with its button;
 *  - a read-only user sees the domains but no action button, and VM.hard_shutdown sent from the page by hand
 *    is refused with RBAC_PERMISSION_DENIED;
 *  - console open/close and the refusal are in the audit log, whose chain verifies.
 * Screenshots go to docs/web-console*.png (the README shows them).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Page } from "puppeteer-core";
import { ensureImages } from "../../src/images/index.js";
import { linkStableImages } from "../../src/images/stable-links.js";
import { CLI, ROOT } from "../machine/cli-domain.js";
import { makeUsers } from "./api-helpers.js";
import { AUDIT_FILE, verifyAudit } from "../../src/api/audit.js";

const BOOT_MS = 8 * 60_000;

async function until<T>(f: () => T | undefined | false | Promise<T | undefined | false>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) assert.fail(`${what}: not within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Clicks `sel` in a part of the page that live updates replace (the domain table): a row replaced between
 * puppeteer's query and its click ("Node is detached from document") is queried again, for up to 10 s.
 */
async function clickLive(page: Page, sel: string): Promise<void> {
  const end = Date.now() + 10_000;
  for (;;) {
    try { await page.click(sel); return; } catch (e) {
      if (Date.now() > end || !/detached|not clickable|No element found/i.test(String(e))) throw e;
      await page.waitForSelector(sel, { timeout: 10_000 });
    }
  }
}

function chromiumPath(): string {
  for (const p of [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"]) if (p && existsSync(p)) return p;
  assert.fail("chromium is not installed: scripts/setup.sh installs Debian's chromium (apt-get install chromium), or set CHROMIUM=/path");
}

async function login(page: Page, url: string, user: string, password: string): Promise<void> {
  await page.goto(`${url}/ui/`);
  await page.waitForSelector("#login-user", { visible: true });
  await page.type("#login-user", user);
  await page.type("#login-pass", password);
  await page.click("#login-btn");
  await page.waitForSelector('#vm-table tr[data-vm="demo"]', { timeout: 30_000 });
}

const rowText = (page: Page, name: string): Promise<string> => page.$eval(`#vm-table tr[data-vm="${name}"]`, (el) => el.textContent ?? "").catch(() => "");

test("the web console in chromium: login, demo domain, CPU graph, console, create, roles", { timeout: 25 * 60_000 }, async () => {
  const exe = chromiumPath();
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  await linkStableImages(images.cacheDir);
  const run = mkdtempSync(join(tmpdir(), "xeno-webui-"));
  const apiDir = join(run, "api");
  await makeUsers(apiDir, [["admin", "pool-admin", "admin-pass"], ["auditor", "read-only", "ro-pass"]]);
  const env = { ...process.env, XENO_RUN_DIR: run, XENO_API_LISTEN: "http://127.0.0.1:0", XENO_API_DIR: apiDir };
  const xeno = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 });
  const browser = await puppeteer.launch({ executablePath: exe, headless: true, args: ["--no-sandbox", "--disable-gpu", "--window-size=1400,1000"], defaultViewport: { width: 1400, height: 1000 } });
  try {
    const c = xeno("create", join(ROOT, "examples/demo.cfg"));
    assert.equal(c.status, 0, c.stderr);
    const con = spawn(process.execPath, [CLI, "console", "demo"], { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    con.stdout.setEncoding("latin1").on("data", (d: string) => { out += d; });
    await until(() => /XENO-GUEST-READY/.test(out), BOOT_MS, "the demo guest boots");
    con.kill();
    const url = (JSON.parse(readFileSync(join(run, "api.json"), "utf8")) as { urls: string[] }).urls[0]!;
    process.stderr.write(`# API and web console at ${url}/ui/\n`);

    const page = await browser.newPage();
    page.on("dialog", (d) => void d.accept()); // the Destroy button's confirm()
    await login(page, url, "admin", "admin-pass");
    assert.equal(await page.$eval("#who-role", (el) => el.textContent), "pool-admin");
    await until(async () => /Running/.test(await rowText(page, "demo")), 30_000, "demo Running in the table");
    assert.ok(Number(await page.$eval("#host-pcpus", (el) => el.textContent)) >= 1, "the host's pCPUs are shown");
    assert.match(await page.$eval("#host-mem-text", (el) => el.textContent ?? ""), /MiB used of \d+ MiB/);

    // The demo's graphs: the CPU chart gets points once two samples (5 s apart) are in the history.
    await clickLive(page, '#vm-table tr[data-vm="demo"] td');
    await page.waitForSelector("#detail:not([hidden])");
    const points = await until(() => page.evaluate(() => {
      const ui = (window as unknown as { xenoUi: { charts: Record<string, { plot: { data: (number | null)[][] } }> } }).xenoUi;
      const d = ui.charts["chart-cpu"]?.plot.data[1];
      const n = d ? d.filter((v) => v !== null && v !== undefined).length : 0;
      return n >= 2 ? n : undefined;
    }), 60_000, "points in the demo's CPU graph");
    assert.ok(await page.$("#chart-cpu canvas"), "the CPU chart is drawn on a canvas");
    process.stderr.write(`# CPU graph: ${points} points\n`);
    await page.screenshot({ path: join(ROOT, "docs", "web-console.png") });

    // The console: replayed output, a command typed, its output; Ctrl-] detaches.
    await page.click("#console-tab");
    await until(async () => /connected to demo/.test(await page.$eval("#console-status", (el) => el.textContent ?? "")), 30_000, "console connected");
    await page.focus("#terminal .xterm-helper-textarea");
    await page.keyboard.type("echo WEB-$((6*7))\n");
    const screen = await until(async () => {
      const t = await page.$eval("#terminal .xterm-rows", (el) => el.textContent ?? "");
      return /WEB-42/.test(t.replace(/echo WEB-\$\(\(6\*7\)\)/g, "")) ? t : undefined;
    }, 60_000, "the command's output in xterm.js");
    assert.ok(screen.length > 0);
    await page.screenshot({ path: join(ROOT, "docs", "web-console-terminal.png") });
    await page.keyboard.down("Control"); await page.keyboard.press("BracketRight"); await page.keyboard.up("Control");
    await until(async () => /detached/.test(await page.$eval("#console-status", (el) => el.textContent ?? "")), 10_000, "Ctrl-] detaches");

    // Create from an xl.cfg (paused: it needs no CPU), then destroy it with its button.
    await page.click("#show-create");
    await page.$eval("#create-config", (el) => { (el as HTMLTextAreaElement).value = (el as HTMLTextAreaElement).value.replace('name = "web1"', 'name = "fromweb"').replace("memory = 256", "memory = 64"); });
    await page.click("#create-paused");
    await page.click("#create-btn");
    await until(async () => /Paused/.test(await rowText(page, "fromweb")), 60_000, "the created domain, Paused");
    assert.match(xeno("list").stdout, /^fromweb\s/m);
    await clickLive(page, '#vm-table tr[data-vm="fromweb"] button[data-action="hard_shutdown"]');
    await until(async () => /Halted/.test(await rowText(page, "fromweb")), 60_000, "destroyed: Halted");
    assert.doesNotMatch(xeno("list").stdout, /^fromweb\s/m);

    // A read-only user: no buttons; the API refuses the call anyway.
    const ctx = await browser.createBrowserContext();
    const ro = await ctx.newPage();
    await login(ro, url, "auditor", "ro-pass");
    await until(async () => /Running/.test(await rowText(ro, "demo")), 30_000, "demo Running for the read-only user");
    assert.equal(await ro.$$eval('#vm-table tr[data-vm="demo"] button', (b) => b.length), 0, "no action buttons for read-only");
    assert.equal(await ro.$('button[data-action="hard_shutdown"]'), null);
    assert.equal(await ro.$eval("#show-create", (el) => (el as HTMLElement).hidden), true);
    const refusal = await ro.evaluate(async () => {
      const s = sessionStorage.getItem("xeno.sid");
      const q = (method: string, params: unknown[]) => fetch("/jsonrpc", { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) }).then((r) => r.json());
      const vm = (await q("VM.get_by_name_label", [s, "demo"])).result[0];
      return (await q("VM.hard_shutdown", [s, vm])).error?.message;
    });
    assert.equal(refusal, "RBAC_PERMISSION_DENIED");
    await ro.screenshot({ path: join(ROOT, "docs", "web-console-readonly.png") });
    assert.match(xeno("list").stdout, /^demo\s/m);

    const audit = readFileSync(join(apiDir, AUDIT_FILE), "utf8");
    assert.match(audit, /"user":"admin","role":"pool-admin","method":"console.open","args":\["demo /);
    assert.match(audit, /"method":"console.close","args":\["demo [^"]*","\d+ bytes to the guest/);
    assert.match(audit, /"method":"VM.create_from_xl_config".*"result":"ok"/);
    assert.match(audit, /"user":"auditor".*"method":"VM.hard_shutdown".*"result":"RBAC_PERMISSION_DENIED/);
    assert.equal(verifyAudit(apiDir).ok, true);
  } finally {
    await browser.close();
    for (const f of ["xenod.pid", "hv.pid"]) {
      const pf = join(run, f);
      if (existsSync(pf)) { try { process.kill(Number(readFileSync(pf, "utf8").trim()), "SIGTERM"); } catch { /* gone */ } }
    }
    await new Promise((r) => setTimeout(r, 1500));
    rmSync(run, { recursive: true, force: true });
  }
});
