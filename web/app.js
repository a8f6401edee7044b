// Xeno's web console: a browser client of the XenAPI endpoint that serves it (src/api). Plain ES modules, no
// build step: xterm.js and uPlot are served from their npm packages under /ui/vendor/ (src/api/http-routes.ts).
//
// - login: session.login_with_password; the session ref is kept in sessionStorage (this tab only);
// - objects: VM/VM_metrics/host/host_metrics get_all_records, then event.from long-polls keep them live;
// - history: /rrd_updates?json=true every 5 s (the last 10 minutes at 5 s) for the table's CPU column and graphs;
// - actions: VM.* calls, offered by role (xapi's: vm-operator and above for power actions, vm-admin to forget a
//   halted VM or create one); the server checks the role again whatever the page shows;
// - console: VM.xeno_console_ticket, then a WebSocket /console/ws?ticket=… joined to xterm.js.
import { Terminal } from "/ui/vendor/xterm.mjs";
import { FitAddon } from "/ui/vendor/addon-fit.mjs";
import uPlot from "/ui/vendor/uplot.mjs";

const ROLES = ["read-only", "vm-operator", "vm-admin", "vm-power-admin", "pool-operator", "pool-admin"];
const $ = (id) => document.getElementById(id);
const state = {
  sid: sessionStorage.getItem("xeno.sid"), user: "", role: "read-only",
  objects: new Map(), // ref → {cls, rec}
  token: "", selected: null, rrd: null, recent: null, charts: {}, term: null, fit: null, ws: null, polling: 0,
};
// For tests and debugging: what the page holds (read-only use).
window.xenoUi = state;

let rpcId = 0;
async function rpc(method, ...params) {
  const r = await fetch("/jsonrpc", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
  });
  const body = await r.json();
  if (body.error) {
    const e = new Error(`${body.error.message}${body.error.data?.length ? ": " + body.error.data.join(", ") : ""}`);
    e.code = body.error.message;
    throw e;
  }
  return body.result;
}
const call = (method, ...params) => rpc(method, state.sid, ...params);
const allows = (need) => ROLES.indexOf(state.role) >= ROLES.indexOf(need);

// ---- login ---------------------------------------------------------------------------------------------
function showLogin(msg = "") {
  $("app-view").hidden = true; $("whoami").hidden = true; $("login-view").hidden = false;
  $("login-error").textContent = msg;
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    state.sid = await rpc("session.login_with_password", $("login-user").value, $("login-pass").value, "1.0", "xeno-web");
    sessionStorage.setItem("xeno.sid", state.sid);
    await start();
  } catch (e) {
    $("login-error").textContent = e.code === "SESSION_AUTHENTICATION_FAILED" ? "Wrong user or password." : e.message;
  }
});

$("logout").addEventListener("click", async () => {
  try { await call("session.logout"); } catch { /* already gone */ }
  sessionStorage.removeItem("xeno.sid");
  location.reload();
});

async function start() {
  const s = await call("session.get_record", state.sid);
  state.user = s.auth_user_name; state.role = s.xeno_role ?? "read-only";
  $("who-user").textContent = state.user; $("who-role").textContent = state.role;
  $("login-view").hidden = true; $("app-view").hidden = false; $("whoami").hidden = false;
  $("show-create").hidden = !allows("vm-admin");
  // A read-only user has no actions: no column for them.
  document.querySelector("#vm-table th.actions-col").hidden = !allows("vm-operator");
  for (const cls of ["host", "host_metrics", "VM", "VM_metrics"]) {
    const all = await call(`${cls}.get_all_records`);
    for (const [ref, rec] of Object.entries(all)) state.objects.set(ref, { cls, rec });
  }
  render();
  void followEvents();
  void pollRrd();
}

// ---- live objects: event.from ----------------------------------------------------------------------------
async function followEvents() {
  const me = ++state.polling;
  for (;;) {
    if (me !== state.polling) return;
    try {
      const r = await call("event.from", ["vm", "vm_metrics", "host", "host_metrics"], state.token, 30);
      state.token = r.token;
      for (const ev of r.events) {
        const cls = { vm: "VM", vm_metrics: "VM_metrics", host: "host", host_metrics: "host_metrics" }[ev.class] ?? ev.class;
        if (ev.operation === "del") state.objects.delete(ev.ref);
        else if (ev.snapshot) state.objects.set(ev.ref, { cls, rec: ev.snapshot });
      }
      render();
    } catch (e) {
      if (e.code === "SESSION_INVALID") { sessionStorage.removeItem("xeno.sid"); showLogin("Your session ended; sign in again."); return; }
      if (e.code === "EVENTS_LOST") state.token = "";
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

const byClass = (cls) => [...state.objects].filter(([, o]) => o.cls === cls).map(([ref, o]) => ({ ref, ...o.rec }));
const mib = (bytes) => `${Math.round(bytes / 1048576)} MiB`;

// ---- rendering ---------------------------------------------------------------------------------------------
function render() {
  const host = byClass("host")[0], hm = byClass("host_metrics")[0];
  if (host) {
    $("host-name").textContent = host.name_label;
    $("host-version").textContent = `Xen ${host.software_version?.xen ?? "?"} · ${host.name_description}`;
    $("host-pcpus").textContent = host.cpu_info?.cpu_count ?? "–";
  }
  if (hm) {
    const used = hm.memory_total - hm.memory_free;
    $("host-mem-text").textContent = `${mib(used)} used of ${mib(hm.memory_total)}`;
    $("host-mem-bar").style.width = `${hm.memory_total ? (100 * used / hm.memory_total).toFixed(1) : 0}%`;
  }
  const vms = byClass("VM").sort((a, b) => (b.is_control_domain - a.is_control_domain) || a.name_label.localeCompare(b.name_label));
  $("host-doms").textContent = String(vms.filter((v) => v.power_state === "Running" || v.power_state === "Paused").length);
  const tbody = $("vm-table").querySelector("tbody");
  tbody.replaceChildren(...vms.map(vmRow));
  if (state.selected && !state.objects.has(state.selected)) selectVm(null);
  if (state.selected) $("detail-name").textContent = state.objects.get(state.selected).rec.name_label;
}

function vmRow(vm) {
  const tr = document.createElement("tr");
  tr.dataset.vm = vm.name_label;
  if (vm.ref === state.selected) tr.className = "selected";
  const metrics = state.objects.get(vm.metrics)?.rec;
  const cpu = latest(`vm:${vm.uuid}:cpu_usage`);
  const cells = [
    vm.name_label, null, vm.domid >= 0 ? String(vm.domid) : "–", String(vm.VCPUs_max),
    mib(metrics?.memory_actual || vm.memory_target), Number.isFinite(cpu) ? `${(cpu * 100).toFixed(1)} %` : "–",
  ];
  for (const c of cells) {
    const td = document.createElement("td");
    if (c === null) {
      const b = document.createElement("span");
      b.className = `badge state-${vm.power_state}`; b.textContent = vm.power_state; td.append(b);
    } else td.textContent = c;
    tr.append(td);
  }
  if (allows("vm-operator")) {
    // (A flex box inside the cell: a table cell that is itself a flex box loses its row's borders.)
    const td = document.createElement("td"), act = document.createElement("div");
    act.className = "actions";
    if (!vm.is_control_domain) for (const a of actionsFor(vm)) act.append(a);
    td.append(act);
    tr.append(td);
  }
  tr.addEventListener("click", (ev) => { if (ev.target.tagName !== "BUTTON" && !vm.is_control_domain) selectVm(vm.ref); });
  return tr;
}

/** The buttons this user may press for this VM in its power state. */
function actionsFor(vm) {
  const ops = new Set(vm.allowed_operations);
  const list = [
    ["start", "Start", "vm-operator", () => call("VM.start", vm.ref, false, false)],
    ["unpause", "Resume", "vm-operator", () => call("VM.unpause", vm.ref)],
    ["pause", "Pause", "vm-operator", () => call("VM.pause", vm.ref)],
    ["clean_shutdown", "Shut down", "vm-operator", () => call("Async.VM.clean_shutdown", vm.ref)],
    ["clean_reboot", "Reboot", "vm-operator", () => call("Async.VM.clean_reboot", vm.ref)],
    ["hard_shutdown", "Destroy", "vm-operator", () => confirm(`Destroy ${vm.name_label}? Its guest is stopped at once.`) && call("VM.hard_shutdown", vm.ref), "danger"],
    ["destroy", "Forget", "vm-admin", () => confirm(`Forget the halted VM ${vm.name_label}? (its disk files stay)`) && call("VM.destroy", vm.ref), "danger"],
  ];
  return list.filter(([op, , need]) => ops.has(op) && allows(need)).map(([op, label, , run, cls]) => {
    const b = document.createElement("button");
    b.className = `small ${cls ?? "ghost"}`; b.textContent = label; b.dataset.action = op;
    b.addEventListener("click", async () => {
      $("action-error").textContent = "";
      b.disabled = true;
      try { await run(); } catch (e) { $("action-error").textContent = `${label} ${vm.name_label}: ${e.message}`; } finally { b.disabled = false; }
    });
    return b;
  });
}

// ---- create ---------------------------------------------------------------------------------------------------
const EXAMPLE = `name = "web1"
type = "pvh"
memory = 256
vcpus = 1
kernel = "\${XENO_IMAGES:-~/.cache/xeno}/images/vmlinuz"
ramdisk = "\${XENO_IMAGES:-~/.cache/xeno}/images/initrd.img"
extra = "rdinit=/init"
on_poweroff = "destroy"
on_reboot = "restart"
on_crash = "destroy"
`;
$("show-create").addEventListener("click", () => {
  $("create-form").hidden = false;
  if (!$("create-config").value) $("create-config").value = EXAMPLE;
});
$("create-cancel").addEventListener("click", () => { $("create-form").hidden = true; $("create-error").textContent = ""; });
$("create-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("create-error").textContent = "";
  $("create-btn").disabled = true;
  try {
    const ref = await call("VM.create_from_xl_config", $("create-config").value, $("create-paused").checked);
    $("create-form").hidden = true;
    selectVm(ref);
  } catch (e) { $("create-error").textContent = e.message; } finally { $("create-btn").disabled = false; }
});

// ---- detail: graphs and console ----------------------------------------------------------------------------
function selectVm(ref) {
  if (ref !== state.selected) disconnectConsole("switched domain");
  const changed = ref !== state.selected;
  state.selected = ref;
  $("detail").hidden = ref === null;
  if (changed && ref) wakeRrd();
  render();
  drawCharts();
}

for (const t of document.querySelectorAll(".tab")) {
  t.addEventListener("click", () => {
    for (const x of document.querySelectorAll(".tab")) x.classList.toggle("active", x === t);
    $("tab-graphs").hidden = t.dataset.tab !== "graphs";
    $("tab-console").hidden = t.dataset.tab !== "console";
    if (t.dataset.tab === "console") { ensureTerminal(); if (!state.ws) void connectConsole(); }
    else drawCharts();
  });
}

function ensureTerminal() {
  if (state.term) { state.fit.fit(); return; }
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 13, scrollback: 5000, theme: { background: "#000000" } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open($("terminal"));
  fit.fit();
  window.addEventListener("resize", () => fit.fit());
  const enc = new TextEncoder();
  term.onData((d) => {
    // Ctrl-] (0x1d) detaches, as in xeno console; the domain keeps running.
    const esc = d.indexOf("\x1d");
    if (esc >= 0) {
      if (esc > 0 && state.ws?.readyState === WebSocket.OPEN) state.ws.send(enc.encode(d.slice(0, esc)));
      disconnectConsole("detached (Ctrl-])");
      return;
    }
    if (state.ws?.readyState === WebSocket.OPEN) state.ws.send(enc.encode(d));
  });
  state.term = term; state.fit = fit;
}

function disconnectConsole(why) {
  if (!state.ws) return;
  const ws = state.ws;
  state.ws = null;
  ws.close(1000, why);
  state.term?.write(`\r\n\x1b[33m[${why}]\x1b[0m\r\n`);
  $("console-status").textContent = why;
  $("console-connect").hidden = false;
}

async function connectConsole() {
  const ref = state.selected;
  if (!ref) return;
  $("console-connect").hidden = true;
  $("console-status").textContent = "connecting…";
  let ticket;
  try { ticket = await call("VM.xeno_console_ticket", ref); } catch (e) {
    $("console-status").textContent = `no console: ${e.message}`;
    $("console-connect").hidden = false;
    return;
  }
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/console/ws?ticket=${encodeURIComponent(ticket)}`);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => { $("console-status").textContent = `connected to ${state.objects.get(ref)?.rec.name_label}`; state.term.focus(); };
  ws.onmessage = (ev) => state.term.write(new Uint8Array(ev.data));
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    state.ws = null;
    state.term.write(`\r\n\x1b[33m[console closed${ev.reason ? ": " + ev.reason : ""}]\x1b[0m\r\n`);
    $("console-status").textContent = "not connected";
    $("console-connect").hidden = false;
  };
}
$("console-connect").addEventListener("click", () => { ensureTerminal(); void connectConsole(); });

// ---- history: /rrd_updates ---------------------------------------------------------------------------------
async function pollRrd() {
  for (;;) {
    try {
      // Two queries, so a host with many domains does not send all their history every 5 s: the last 10 minutes
      // of the host and the selected VM (graphs), and the last 30 s of every VM (the table's CPU column).
      const sel = state.selected && state.objects.get(state.selected)?.rec.uuid;
      const base = `/rrd_updates?session_id=${encodeURIComponent(state.sid)}&interval=5&cf=AVERAGE&json=true`;
      const [r, r2] = await Promise.all([
        fetch(`${base}&start=-600&host=true&vm_uuid=${encodeURIComponent(sel || "none")}`), fetch(`${base}&start=-30`),
      ]);
      if (r.status === 401 || r2.status === 401) { sessionStorage.removeItem("xeno.sid"); showLogin("Your session ended; sign in again."); return; }
      if (r.ok && r2.ok) {
        state.rrd = columns(await r.json());
        state.recent = columns(await r2.json());
        const hostCpu = [...state.rrd.cols].find(([k]) => k.startsWith("host:") && k.endsWith(":cpu_avg"));
        const hc = hostCpu ? lastKnown(hostCpu[1]) : NaN;
        $("host-cpu").textContent = Number.isFinite(hc) ? `${(hc * 100).toFixed(1)} %` : "–";
        render();
        drawCharts();
      }
    } catch { /* the next round tries again */ }
    await new Promise((r) => { const t = setTimeout(r, 5000); wakeRrd = () => { clearTimeout(t); r(); }; });
  }
}
let wakeRrd = () => {};
/** An /rrd_updates answer as {t: times oldest first, cols: name (without "AVERAGE:") → values}. */
function columns(x) {
  // Rows before the history began are all unknown: left out, so the time axis starts with the data.
  const rows = [...x.data].reverse();
  while (rows.length > 1 && rows[0].values.every((v) => v === "NaN")) rows.shift();
  return { t: rows.map((row) => row.t), cols: new Map(x.meta.legend.map((l, i) => [l.replace(/^AVERAGE:/, ""), rows.map((row) => toNum(row.values[i]))])) };
}
const toNum = (s) => (s === "NaN" ? null : Number(s));
const lastKnown = (a) => { for (let i = a.length - 1; i >= 0; i--) if (a[i] !== null) return a[i]; return NaN; };
function latest(name) { const c = state.recent?.cols.get(name); return c ? lastKnown(c) : NaN; }

/** The series of the selected VM (or the host) whose names match, scaled. */
function series(prefix, re, scale) {
  if (!state.rrd) return [];
  return [...state.rrd.cols].filter(([k]) => k.startsWith(prefix) && re.test(k.slice(prefix.length)))
    .map(([k, v]) => ({ label: k.slice(prefix.length), data: v.map((x) => (x === null ? null : x * scale)) }));
}

const COLORS = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed"];
function chart(id, list, width) {
  const el = $(id);
  if (!state.rrd || el.offsetParent === null) return;
  if (list.length === 0) {
    // No such device (a VM without disks or vifs): say so rather than draw empty axes.
    state.charts[id]?.plot.destroy();
    delete state.charts[id];
    if (el.dataset.none !== "1") { el.replaceChildren(Object.assign(document.createElement("p"), { className: "muted small", textContent: "no device of this kind" })); el.dataset.none = "1"; }
    return;
  }
  if (el.dataset.none === "1") { el.replaceChildren(); el.dataset.none = ""; }
  const data = [state.rrd.t, ...list.map((s) => s.data)];
  const key = list.map((s) => s.label).join(",");
  const old = state.charts[id];
  if (old && old.key === key) { old.plot.setData(data); return; }
  old?.plot.destroy();
  const opts = {
    width: width ?? Math.max(240, el.clientWidth), height: 150, legend: { show: true },
    scales: { y: { range: (u, min, max) => [0, Math.max(max ?? 1, 1e-9) * 1.1] } },
    series: [{}, ...list.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false }, spanGaps: false }))],
    axes: [{}, { size: 56 }],
  };
  state.charts[id] = { key, plot: new uPlot(opts, data, el) };
}

function drawCharts() {
  const host = byClass("host")[0];
  if (host) chart("host-chart", series(`host:${host.uuid}:`, /^cpu_avg$/, 100).map((s) => ({ ...s, label: "host CPU %" })));
  const vm = state.selected && state.objects.get(state.selected)?.rec;
  if (!vm || $("tab-graphs").hidden) return;
  const p = `vm:${vm.uuid}:`;
  chart("chart-cpu", series(p, /^cpu_usage$/, 100));
  chart("chart-mem", series(p, /^memory(_target)?$/, 1 / 1048576));
  chart("chart-disk", series(p, /^vbd_[^_]+_(read|write)$/, 1 / 1024));
  chart("chart-net", series(p, /^vif_[^_]+_(rx|tx)$/, 1 / 1024));
}

// ---- boot ---------------------------------------------------------------------------------------------------
if (state.sid) start().catch(() => { sessionStorage.removeItem("xeno.sid"); showLogin(); });
else showLogin();
