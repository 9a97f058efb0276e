// admin.mjs: the admin panel in a real browser (Debian's chromium, driven
// by playwright-core; no browser is downloaded). Run by
// tests/integration/test_admin_browser.py, which starts hlcore and passes:
//   ADMIN_URL      http://127.0.0.1:<port>/
//   ADMIN_TOKEN    the token from state_dir/admin.token
//   SERVICE_NAME, SERVICE_TITLE, SERVICE_URL   the service hlcore serves
//   PLUGIN         the plugin to turn off and on (transport-tls)
//   OUT_DIR        where the screenshots go
//   CHROMIUM       the browser (default /usr/bin/chromium)
// Prints "ok <step>" lines; exits 1 at the first failed step.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const env = (k, d) => {
	const v = process.env[k] ?? d;
	if (v === undefined) throw new Error(`${k} is not set`);
	return v;
};
const ADMIN_URL = env("ADMIN_URL");
const TOKEN = env("ADMIN_TOKEN");
const SERVICE_NAME = env("SERVICE_NAME");
const SERVICE_TITLE = env("SERVICE_TITLE");
const SERVICE_URL = env("SERVICE_URL");
const PLUGIN = env("PLUGIN", "transport-tls");
const OUT_DIR = env("OUT_DIR");
const CHROMIUM = env("CHROMIUM", "/usr/bin/chromium");
const TIMEOUT = Number(env("STEP_TIMEOUT_MS", "15000"));

// Chromium as a quiet, offline test browser (no sandbox as root, no GPU, no
// QUIC, no background traffic); playwright adds --headless and
// --user-data-dir itself.
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync"];

const dirs = [];
let ctx = null;

function fail(what, why) {
	throw new Error(`${what}: ${why}`);
}

async function step(name, fn) {
	const t0 = Date.now();
	try {
		await fn();
	} catch (e) {
		console.log(`FAIL ${name}: ${e.message}`);
		e.reported = true;
		throw e;
	}
	console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(2)} s)`);
}

async function launch(javaScriptEnabled) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hl-chromium-"));
	dirs.push(dir);
	const c = await chromium.launchPersistentContext(dir, {
		executablePath: CHROMIUM, headless: true, args: ARGS, javaScriptEnabled,
		viewport: { width: 1280, height: 900 }, timeout: 60000,
	});
	c.setDefaultTimeout(TIMEOUT);
	if (javaScriptEnabled)
		await c.grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(ADMIN_URL).origin });
	return c;
}

async function api(method, p) {
	const r = await fetch(new URL(p, ADMIN_URL), { method, headers: { Authorization: `Bearer ${TOKEN}` } });
	return { status: r.status, body: await r.json() };
}

async function pluginState(name) {
	const st = (await api("GET", "/api/status")).body;
	return st.plugins.find((p) => p.name === name);
}

const row = (page, name) => page.locator(`tr[data-plugin="${name}"]`);
const order = (page) => page.locator("#plugins-body tr[data-plugin]").evaluateAll((rows) => rows.map((r) => r.dataset.plugin));

// Set name's priority with its field (Enter with JS on, the Set button
// with it off) and check the API, the field and the order of the rows.
async function setPriority(page, name, value, js) {
	const field = row(page, name).locator('input[name="priority"]');
	await field.fill(String(value));
	// With JS the page stays (the script posts to the API): a mark left
	// on it must survive.
	if (js) await page.evaluate(() => { window.hlMark = 1; });
	if (js) await field.press("Enter");
	else await Promise.all([page.waitForNavigation(), row(page, name).locator(".prio button").click()]);
	await page.locator(".flash", { hasText: `The priority of ${name} is now ${value}.` }).waitFor();
	const p = await pluginState(name);
	if (p.priority !== value) fail("priority", `the API says ${p.priority}, expected ${value}`);
	const st = (await api("GET", "/api/status")).body;
	const want = st.plugins.map((q) => q.name);
	try {
		await page.waitForFunction(([sel, w]) => JSON.stringify([...document.querySelectorAll(sel)].map((r) => r.dataset.plugin)) === w,
			["#plugins-body tr[data-plugin]", JSON.stringify(want)], { timeout: TIMEOUT });
	} catch (e) {
		fail("priority", `rows in the order ${JSON.stringify(await order(page))}, expected ${JSON.stringify(want)}`);
	}
	if (js && !(await page.evaluate(() => window.hlMark === 1))) fail("priority", "the page was reloaded: the script did not post");
	const shown = await row(page, name).locator('input[name="priority"]').inputValue();
	if (shown !== String(value)) fail("priority", `the field shows ${shown}, expected ${value}`);
}

async function expectState(page, name, text, what) {
	const state = row(page, name).locator(".state");
	try {
		await state.filter({ hasText: new RegExp(`^${text}$`) }).waitFor({ timeout: TIMEOUT });
	} catch (e) {
		fail(what, `expected ${name} shown as "${text}", got "${await state.textContent().catch(() => "?")}"`);
	}
}

async function login(page) {
	await page.goto(ADMIN_URL);
	if (!page.url().endsWith("/login")) fail("login", `expected a redirect to /login, got ${page.url()}`);
	await page.fill("#token", TOKEN);
	await Promise.all([page.waitForURL(ADMIN_URL), page.click("button[type=submit]")]);
	const cookies = await page.context().cookies();
	const s = cookies.find((c) => c.name === "hl_session");
	if (!s || !s.httpOnly || s.sameSite !== "Strict") fail("login", `session cookie: ${JSON.stringify(s)}`);
	const html = await page.content();
	if (html.includes(TOKEN)) fail("login", "the token is in the dashboard");
}

async function withJs() {
	ctx = await launch(true);
	const page = await ctx.newPage();
	const problems = [];
	page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
	page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
	page.on("request", (r) => {
		if (!r.url().startsWith(new URL(ADMIN_URL).origin) && !r.url().startsWith("data:"))
			problems.push(`request outside the panel: ${r.url()}`);
	});

	await step("log in with the token (JS on)", () => login(page));

	await step("the service, its title and URL are shown", async () => {
		const card = page.locator("article.service").filter({ hasText: SERVICE_TITLE });
		await card.waitFor();
		const value = await card.locator("input.url").inputValue();
		if (value !== SERVICE_URL) fail("service", `URL field: expected ${SERVICE_URL}, got ${value}`);
		const href = await card.locator("a.btn").getAttribute("href");
		if (href !== SERVICE_URL) fail("service", `Open link: expected ${SERVICE_URL}, got ${href}`);
		if (await page.locator("script:not([src])").count() > 0) fail("service", "an inline script");
	});

	await step("the copy button puts the URL on the clipboard", async () => {
		const btn = page.locator("article.service button.copy").first();
		await btn.click();
		await page.locator("article.service button.copy", { hasText: "Copied" }).waitFor();
		const clip = await page.evaluate(() => navigator.clipboard.readText());
		if (clip !== SERVICE_URL) fail("copy", `clipboard: expected ${SERVICE_URL}, got ${clip}`);
	});

	await step("the QR code opens and is an image", async () => {
		await page.locator("article.service details.qr summary").first().click();
		const img = page.locator("article.service details.qr img").first();
		await img.waitFor();
		await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
	});

	await step(`turn ${PLUGIN} off with its switch`, async () => {
		await row(page, PLUGIN).locator("button.switch").click();
		await expectState(page, PLUGIN, "off", "switch off");
		const p = await pluginState(PLUGIN);
		if (p.enabled || p.running) fail("switch off", `the API says ${JSON.stringify(p)}`);
		await page.locator("#flash", { hasText: `${PLUGIN} is now off.` }).waitFor();
	});

	await step(`turn ${PLUGIN} on again`, async () => {
		await row(page, PLUGIN).locator("button.switch").click();
		await expectState(page, PLUGIN, "running", "switch on");
		const p = await pluginState(PLUGIN);
		if (!p.enabled || !p.running) fail("switch on", `the API says ${JSON.stringify(p)}`);
	});

	await step(`set ${PLUGIN}'s priority to 500 with its field, then back`, async () => {
		const before = await pluginState(PLUGIN);
		await setPriority(page, PLUGIN, 500, true);
		const rows = await order(page);
		if (!(rows.indexOf(PLUGIN) > rows.indexOf("admin-web")))
			fail("priority", `${PLUGIN} (500) is not after admin-web (100): ${JSON.stringify(rows)}`);
		await setPriority(page, PLUGIN, before.priority, true);
	});

	await step("the LAN section's Refresh button asks the discovery plugins", async () => {
		await page.locator("#lan form.section-tool button", { hasText: "Refresh" }).click();
		await page.locator("#flash", { hasText: "Asked the discovery plugins" }).waitFor();
		if (!page.url().startsWith(ADMIN_URL) || page.url() !== ADMIN_URL) fail("refresh", `the page left: ${page.url()}`);
	});

	await step("the page follows changes made elsewhere (live refresh)", async () => {
		const before = await page.evaluate(() => document.body.dataset.refreshed);
		if ((await api("POST", `/api/plugins/${PLUGIN}/disable`)).status !== 200) fail("live", "API disable");
		await expectState(page, PLUGIN, "off", "live refresh (off)");
		if ((await api("POST", `/api/plugins/${PLUGIN}/enable`)).status !== 200) fail("live", "API enable");
		await expectState(page, PLUGIN, "running", "live refresh (on)");
		const after = await page.evaluate(() => document.body.dataset.refreshed);
		if (!after || after === before) fail("live", "the page did not refresh itself");
	});

	await step("tunnels, routes and the log are shown", async () => {
		await page.locator("#connections-body tr").first().waitFor();
		const routes = await page.locator("#routes-body details.route").count();
		if (routes < 1) fail("routes", "no routing trace");
		const log = await page.locator("#log-body .line").count();
		if (log < 3) fail("log", `${log} log lines`);
		const text = await page.locator("#log-body").textContent();
		if (text.includes(TOKEN)) fail("log", "the token is in the log shown");
	});

	await step("screenshot of the dashboard", async () => {
		fs.mkdirSync(OUT_DIR, { recursive: true });
		// Open the first route's trace so that it shows in the picture.
		await page.locator("#routes-body details.route summary").first().click();
		await page.screenshot({ path: path.join(OUT_DIR, "admin-dashboard.png"), fullPage: true });
	});

	await step("no console error, no request outside the panel", async () => {
		if (problems.length) fail("console", problems.join("; "));
	});

	await step("log out", async () => {
		await Promise.all([page.waitForURL(/\/login$/), page.click("form.logout button")]);
		await page.goto(ADMIN_URL);
		if (!page.url().endsWith("/login")) fail("logout", `still in: ${page.url()}`);
	});
	await ctx.close();
	ctx = null;
}

async function withoutJs() {
	ctx = await launch(false);
	const page = await ctx.newPage();

	await step("log in with JavaScript off", () => login(page));

	await step("without JS: the service URL is there", async () => {
		const value = await page.locator("article.service input.url").first().inputValue();
		if (value !== SERVICE_URL) fail("nojs service", `URL field: ${value}`);
	});

	await step(`without JS: the form turns ${PLUGIN} off and on`, async () => {
		await Promise.all([page.waitForNavigation(), row(page, PLUGIN).locator("button.switch").click()]);
		await expectState(page, PLUGIN, "off", "nojs off");
		await page.locator(".flash", { hasText: `${PLUGIN} is now off.` }).waitFor();
		if ((await pluginState(PLUGIN)).running) fail("nojs off", "the API says it runs");
		await Promise.all([page.waitForNavigation(), row(page, PLUGIN).locator("button.switch").click()]);
		await expectState(page, PLUGIN, "running", "nojs on");
		if (!(await pluginState(PLUGIN)).running) fail("nojs on", "the API says it is off");
	});

	await step(`without JS: the priority form sets ${PLUGIN}'s priority`, async () => {
		const before = await pluginState(PLUGIN);
		await setPriority(page, PLUGIN, 20, false);
		await setPriority(page, PLUGIN, before.priority, false);
		await page.screenshot({ path: path.join(OUT_DIR, "admin-dashboard-nojs.png"), fullPage: true });
	});
	await ctx.close();
	ctx = null;
}

let rc = 0;
try {
	await withJs();
	await withoutJs();
} catch (e) {
	rc = 1;
	if (!e.reported) console.log(`FAIL: ${e.stack}`);
} finally {
	if (ctx) await ctx.close().catch(() => {});
	for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
}
process.exit(rc);
