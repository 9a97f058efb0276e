/*
 * admin-web: the dashboard's live refresh. The page works without this
 * file (it is rendered by the plugin, and its forms post normally); with
 * it, the page asks /api/status every 2 s and redraws what changed, the
 * on/off switches, the priority fields and the LAN refresh button act
 * through the API without reloading, and the copy buttons work.
 * Every value is escaped: titles and labels come from the network.
 */
"use strict";
(function () {
	const REFRESH_MS = 2000;
	const LOG_LINES = 100;
	const csrfMeta = document.querySelector('meta[name="hl-csrf"]');
	if (!csrfMeta) return;
	const csrf = csrfMeta.content;
	const SELF = "admin-web";
	/* The server leaves out the controls this hlcore cannot serve. */
	const canPriority = document.querySelector("#plugins-body[data-can-priority]") !== null;

	const ENT = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
	const esc = (v) => String(v === undefined || v === null ? "" : v).replace(/[&<>"']/g, (c) => ENT[c]);
	const pad = (n) => String(n).padStart(2, "0");
	const hms = (t) => {
		const d = new Date(t * 1000);
		return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
	};
	const bytes = (n) => {
		const units = ["B", "KiB", "MiB", "GiB", "TiB"];
		let v = Number(n) || 0, u = 0;
		while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
		return u === 0 ? v + " B" : v.toFixed(1) + " " + units[u];
	};
	const duration = (s) => {
		s = Math.max(0, Math.floor(Number(s) || 0));
		if (s < 60) return s + " s";
		if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
		return Math.floor(s / 3600) + " h " + (Math.floor(s / 60) % 60) + " min";
	};
	const nameOk = (s) => /^[a-z0-9_-]{1,63}$/.test(s);
	const httpUrl = (u) => typeof u === "string" && u.startsWith("http://");

	function services(list) {
		if (!list.length)
			return '<p class="empty">This node serves nothing: add a service under <code>services:</code> in the config.</p>';
		return list.map((s) => `<article class="card service"><h3>${esc(s.title || s.name)}</h3>` +
			`<p class="muted small">${esc(s.name)} &middot; backend ${esc(s.target)}` +
			`${s.password ? " &middot; password in URL" : " &middot; no password"}</p>` +
			`<div class="url-row"><input class="url" readonly value="${esc(s.url)}" aria-label="URL of ${esc(s.name)}">` +
			`<a class="btn" href="${httpUrl(s.url) ? esc(s.url) : "#"}" target="_blank" rel="noopener noreferrer">Open</a>` +
			`<button type="button" class="btn copy" data-url="${esc(s.url)}">Copy</button></div>` +
			`<details class="qr"><summary>QR code for a phone</summary><img src="/qr/${esc(encodeURIComponent(s.name))}.svg" ` +
			`alt="QR code of the URL" width="180" height="180" loading="lazy"></details></article>`).join("");
	}

	function priority(p) {
		if (!p.loaded) return "";
		if (!canPriority || !nameOk(p.name)) return esc(p.priority);
		return `<form method="post" action="/plugins/${p.name}/priority" class="prio">` +
			`<input type="hidden" name="csrf" value="${esc(csrf)}">` +
			`<input type="number" name="priority" min="0" max="1000" step="1" required value="${esc(p.priority)}" ` +
			`aria-label="Priority of ${p.name} (0 to 1000, lower is tried first)">` +
			`<button type="submit" class="btn small">Set</button></form>`;
	}

	function plugins(list) {
		return list.map((p) => {
			let state = "running", cls = "on";
			if (!p.loaded) { state = "not loaded"; cls = "idle"; }
			else if (!p.enabled) { state = "off"; cls = "off"; }
			else if (!p.running) { state = "failed"; cls = "bad"; }
			const on = p.loaded && p.enabled;
			let sw = "";
			if (p.name === SELF) sw = '<span class="muted small">this panel</span>';
			else if (nameOk(p.name))
				sw = `<form method="post" action="/plugins/${p.name}/${on ? "disable" : "enable"}">` +
					`<input type="hidden" name="csrf" value="${esc(csrf)}">` +
					`<button type="submit" class="switch ${on ? "on" : "off"}" aria-pressed="${on}" ` +
					`aria-label="Turn ${esc(p.name)} ${on ? "off" : "on"}"><span class="knob"></span>` +
					`<span class="label">${on ? "On" : "Off"}</span></button></form>`;
			const err = p.error && !(p.loaded && p.running) ? `<div class="muted small">${esc(p.error)}</div>` : "";
			/* The plugin's own state lines (svc->status_set): NAT kind, relays... */
			const own = Object.entries(p.status || {}).map(([k, v]) =>
				`<div class="muted small">${esc(k)}: ${esc(v)}</div>`).join("");
			return `<tr data-plugin="${esc(p.name)}"><td><strong>${esc(p.name)}</strong> ` +
				`<span class="muted small">${esc(p.version)}</span><div class="muted small">${esc(p.description)}</div></td>` +
				`<td>${(p.kind || []).map(esc).join(", ")}</td><td>${priority(p)}</td>` +
				`<td><span class="state ${cls}">${state}</span>${err}${own}</td><td>${sw}</td></tr>`;
		}).join("");
	}

	function lan(list) {
		if (!list.length)
			return '<tr><td colspan="4" class="empty">No Hardline service seen yet (a discovery plugin such as discovery-lan finds them).</td></tr>';
		return list.map((s) => `<tr><td>${httpUrl(s.url)
			? `<a href="${esc(s.url)}" target="_blank" rel="noopener noreferrer">${esc(s.title || s.label)}</a>`
			: esc(s.title)}</td><td><code>${esc(s.addr)}</code></td><td>${esc(s.source)}</td>` +
			`<td>${duration(s.age)} ago</td></tr>`).join("");
	}

	function connections(list) {
		if (!list.length) return '<tr><td colspan="8" class="empty">No tunnel open.</td></tr>';
		return list.map((c) => `<tr><td>${c.direction === "out" ? "out (browser here)" : "in (served here)"}</td>` +
			`<td>${c.service ? esc(c.service) : `<code>${esc(c.keyhash)}</code>`}</td><td>${esc(c.origin)}</td>` +
			`<td><code>${esc(c.peer)}</code></td><td><span class="state ${c.path === "relayed" ? "off" : "on"}">` +
			`${c.path === "relayed" ? "relayed" : "direct"}</span> ${esc(c.via)}</td><td class="n">${bytes(c.bytes_up)}</td>` +
			`<td class="n">${bytes(c.bytes_down)}</td><td class="n">${duration(c.seconds)}</td></tr>`).join("");
	}

	function forwards(list) {
		if (!list.length)
			return '<tr><td colspan="6" class="empty">No forward: list some under <code>forwards:</code> to reach any TCP service (SSH, a database) at a local port.</td></tr>';
		return list.map((f) => `<tr><td><code>${esc(f.listen)}</code></td>` +
			`<td>${f.title ? esc(f.title) + " " : ""}<code class="small">${esc(f.keyhash)}</code></td>` +
			`<td class="n">${f.open | 0}</td><td class="n">${f.accepted | 0}</td><td class="n">${f.failed | 0}</td>` +
			`<td class="muted small">${esc(f.last_error)}</td></tr>`).join("");
	}

	function routes(list, open) {
		if (!list.length) return '<p class="empty">No connection routed yet.</p>';
		return list.map((r) => {
			const key = r.time + " " + r.keyhash;
			return `<details class="route"${open.has(key) ? " open" : ""} data-key="${esc(key)}"><summary>` +
				`<span class="time">${hms(r.time)}</span> <code>${esc(r.keyhash)}</code> ` +
				`<span class="state ${r.ok ? "on" : "bad"}">${r.ok ? "connected" : "failed"}</span> ${esc(r.via)}` +
				`</summary><pre>${esc(r.trace || "(no trace)")}</pre></details>`;
		}).join("");
	}

	function logs(list) {
		return list.slice(-LOG_LINES).reverse().map((l) =>
			`<div class="line ${l.level === "error" || l.level === "warn" ? l.level : ""}">` +
			`<span class="time">${hms(l.time)}</span> <span class="level">${esc(l.level)}</span> ${esc(l.text)}</div>`).join("");
	}

	const last = {};
	function put(id, key, data, render) {
		const json = JSON.stringify(data);
		if (last[key] === json) return;
		const el = document.getElementById(id);
		/* Not under the admin's fingers: a priority being typed waits
		 * for the next tick after it loses the focus. */
		if (el && el.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
		last[key] = json;
		if (el) el.innerHTML = render(data);
		const count = document.getElementById(key + "-count");
		if (count) count.textContent = key === "log" ? Math.min(data.length, LOG_LINES) : data.length;
		if (key === "services") hookCopy();
	}

	function show(st) {
		put("services-body", "services", st.services || [], services);
		put("plugins-body", "plugins", st.plugins || [], plugins);
		put("connections-body", "connections", st.connections || [], connections);
		put("forwards-body", "forwards", st.forwards || [], forwards);
		put("lan-body", "lan", st.lan || [], lan);
		const open = new Set([...document.querySelectorAll("#routes-body details[open]")].map((d) => d.dataset.key));
		put("routes-body", "routes", st.routes || [], (l) => routes(l, open));
		put("log-body", "log", st.log || [], logs);
		const s = st.stats || {};
		const footer = document.getElementById("stats");
		if (footer)
			footer.textContent = `Tunnels in ${s.tunnels_in | 0}, out ${s.tunnels_out | 0} · refused: bad password ` +
				`${s.bad_password | 0}, bad OOB ${s.bad_oob | 0} · backend failed ${s.backend_failed | 0} · ` +
				`proxy: bad request ${s.proxy_bad_request | 0}, no route ${s.proxy_no_route | 0}`;
		document.body.dataset.refreshed = String(Date.now());
	}

	let busy = false;
	async function refresh() {
		if (busy) return;
		busy = true;
		try {
			const r = await fetch("/api/status", { credentials: "same-origin", cache: "no-store" });
			if (r.status === 401) { location.href = "/login"; return; }
			if (r.ok) show(await r.json());
		} catch (e) {
			/* hlcore stopped or restarting: try again at the next tick */
		} finally {
			busy = false;
		}
	}

	function flash(text, bad) {
		let p = document.getElementById("flash");
		if (!p) {
			p = document.createElement("p");
			p.id = "flash";
			p.setAttribute("role", "status");
			document.querySelector("main").prepend(p);
		}
		p.className = bad ? "flash bad" : "flash";
		p.textContent = text;
	}

	/* A POST to the API with the session's CSRF token: the answer's
	 * body, or null after a flashed error (or on the way to /login). */
	async function post(url, what, body) {
		const headers = { "X-CSRF-Token": csrf };
		if (body !== undefined) headers["Content-Type"] = "application/json";
		try {
			const r = await fetch(url, {
				method: "POST", credentials: "same-origin", headers,
				body: body === undefined ? undefined : JSON.stringify(body),
			});
			if (r.status === 401) { location.href = "/login"; return null; }
			const answer = await r.json().catch(() => ({}));
			if (r.ok) return answer;
			flash(answer.error || `${what}: HTTP ${r.status}`, true);
		} catch (e) {
			flash(`${what}: ${e}`, true);
		}
		return null;
	}

	/* The forms, through the API: the on/off switches, the priority
	 * fields and the LAN refresh button post what the form would. */
	document.addEventListener("submit", async (ev) => {
		const form = ev.target;
		const action = form.getAttribute("action") || "";
		const toggle = /^\/plugins\/([a-z0-9_-]+)\/(enable|disable)$/.exec(action);
		const prio = /^\/plugins\/([a-z0-9_-]+)\/priority$/.exec(action);
		if (!toggle && !prio && action !== "/lan/refresh") return;
		ev.preventDefault();
		const btn = form.querySelector("button");
		if (btn) btn.disabled = true;
		if (toggle) {
			const [, name, act] = toggle;
			if (await post(`/api/plugins/${name}/${act}`, name))
				flash(`${name} is now ${act === "enable" ? "on" : "off"}.`, false);
		} else if (prio) {
			const name = prio[1];
			const input = form.querySelector('input[name="priority"]');
			input.blur();
			/* An empty field is not 0: let the server refuse it. */
			const value = input.value.trim() === "" ? null : Number(input.value);
			const answer = await post(`/api/plugins/${name}/priority`, name, { priority: value });
			if (answer) flash(`The priority of ${name} is now ${answer.priority}.`, false);
		} else {
			if (await post("/api/lan/refresh", "LAN refresh"))
				flash("Asked the discovery plugins to look for services on the LAN.", false);
			if (btn) btn.disabled = false;
			/* Answers take a moment: look soon, besides the usual tick. */
			setTimeout(refresh, 500);
			return;
		}
		if (btn) btn.disabled = false;
		delete last.plugins;
		await refresh();
	});

	async function copy(btn) {
		const url = btn.dataset.url;
		let ok = false;
		try {
			await navigator.clipboard.writeText(url);
			ok = true;
		} catch (e) {
			const input = btn.parentElement.querySelector("input.url");
			if (input) { input.select(); ok = document.execCommand("copy"); }
		}
		btn.textContent = ok ? "Copied" : "Select and copy";
		btn.classList.toggle("done", ok);
		setTimeout(() => { btn.textContent = "Copy"; btn.classList.remove("done"); }, 1500);
	}

	function hookCopy() {
		for (const btn of document.querySelectorAll("button.copy")) {
			btn.hidden = false;
			if (!btn.dataset.hooked) {
				btn.dataset.hooked = "1";
				btn.addEventListener("click", () => copy(btn));
			}
		}
	}

	hookCopy();
	refresh();
	setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
})();
