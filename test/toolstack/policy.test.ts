/** xenod's shutdown policies as a table: state / reason / action → hypervisor calls and the log line. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { DomainInfo, DomainState, ShutdownAction, ShutdownReason, ToolstackData } from "../../src/hv/protocol.js";
import type { DomainStopState } from "../../src/hv/vm-host.js";
import {
  CRASH_LOOP_SECONDS, decide, decideStandalone, describe, utcSuffix, type HvCall, type StandaloneRun,
} from "../../src/toolstack/policy.js";

const NOW = Date.UTC(2026, 7, 3, 14, 5, 30) / 1000; // 2026-08-03T14:05:30Z
const UUID = "6a1e3c1e-0000-4000-8000-00000000abcd";

function info(state: DomainState, reason: ShutdownReason | undefined, ts: Partial<ToolstackData> | undefined, opts: { up?: number; paused?: boolean } = {}): DomainInfo {
  const toolstack = ts === undefined ? undefined : { onPoweroff: "destroy", onReboot: "restart", onCrash: "destroy", ...ts } as ToolstackData;
  return {
    domid: 3, name: "web", uuid: UUID, state, shutdownReason: reason, memKiB: 131072, maxMemKiB: 131072, targetKiB: 131072,
    vcpus: 1, onlineVcpus: 1, cpuSeconds: 1, startTime: NOW - (opts.up ?? 600),
    spec: { name: "web", uuid: UUID, memMiB: 128, vcpus: 1, kernel: "/k", cmdline: "console=hvc0", xen: true, disks: [], vifs: [], paused: opts.paused, toolstack },
  };
}

const D = (): HvCall => ({ op: "destroy", domid: 3 });
const C = (uuid: string | null = UUID, ts: ToolstackData | undefined = undefined): (c: HvCall) => void => (c) => {
  assert.equal(c.op, "create");
  if (c.op !== "create") return;
  assert.equal(c.spec.name, "web");
  assert.equal(c.spec.uuid, uuid ?? undefined, uuid ? "same uuid" : "a fresh uuid (the kept domain keeps the old one)");
  assert.equal(c.spec.paused, undefined, "a restarted domain is not paused");
  if (ts) assert.deepEqual(c.spec.toolstack, ts);
};

interface Row {
  state: DomainState; reason?: ShutdownReason; ts?: Partial<ToolstackData>; up?: number;
  calls: (HvCall | ((c: HvCall) => void))[] | null;
  log?: RegExp;
}

const rows: Row[] = [
  // Not stopped: nothing to decide.
  { state: "running", calls: null },
  { state: "blocked", calls: null },
  { state: "paused", calls: null },
  { state: "dying", calls: null },
  // Defaults (no toolstack data): destroy / restart / destroy.
  { state: "shutdown", reason: "poweroff", calls: [D()], log: /^domain 3 \(web\) powered off: destroyed \(on_poweroff=destroy\)$/ },
  { state: "shutdown", reason: "reboot", calls: [D(), C()], log: /^domain 3 \(web\) rebooted: restarted as domain 9 \(on_reboot=restart\)$/ },
  { state: "crashed", reason: "crash", calls: [D()], log: /crashed: destroyed \(on_crash=destroy\)$/ },
  // Each action.
  { state: "shutdown", reason: "poweroff", ts: { onPoweroff: "restart" }, calls: [D(), C()], log: /powered off: restarted as domain 9 \(on_poweroff=restart\)/ },
  { state: "shutdown", reason: "poweroff", ts: { onPoweroff: "preserve" }, calls: [], log: /powered off: preserved \(on_poweroff=preserve\)$/ },
  { state: "shutdown", reason: "reboot", ts: { onReboot: "destroy" }, calls: [D()], log: /rebooted: destroyed \(on_reboot=destroy\)/ },
  { state: "shutdown", reason: "reboot", ts: { onReboot: "coredump-restart" }, calls: [D(), C()], log: /restarted as domain 9; core dumps are not written \(on_reboot=coredump-restart\)/ },
  { state: "shutdown", reason: "reboot", ts: { onReboot: "soft-reset" }, calls: [D(), C()], log: /soft reset is done as a restart/ },
  { state: "shutdown", reason: "poweroff", ts: { onPoweroff: "coredump-destroy" }, calls: [D()], log: /destroyed; core dumps are not written \(on_poweroff=coredump-destroy\)/ },
  {
    state: "shutdown", reason: "reboot", ts: { onReboot: "rename-restart" },
    calls: [
      { op: "rename", domid: 3, name: "web-20260803T1405Z" },
      { op: "set-toolstack", domid: 3, toolstack: { onPoweroff: "preserve", onReboot: "preserve", onCrash: "preserve" } },
      C(null, { onPoweroff: "destroy", onReboot: "rename-restart", onCrash: "destroy" }),
    ],
    log: /rebooted: kept as web-20260803T1405Z, restarted as domain 9 \(on_reboot=rename-restart\)/,
  },
  // crash and watchdog → on_crash; state "crashed" is a crash whatever the reason field says.
  { state: "shutdown", reason: "crash", ts: { onCrash: "restart" }, calls: [D(), C()], log: /crashed: restarted/ },
  { state: "shutdown", reason: "watchdog", ts: { onCrash: "preserve" }, calls: [], log: /was stopped by its watchdog: preserved \(on_crash=preserve\)/ },
  { state: "crashed", reason: undefined, ts: { onCrash: "coredump-restart" }, calls: [D(), C()] },
  // halt arrives as poweroff (Linux's machine_halt → SHUTDOWN_poweroff); suspend is left alone.
  { state: "shutdown", reason: "suspend", ts: { onPoweroff: "destroy", onReboot: "destroy", onCrash: "destroy" }, calls: [], log: /suspended: left as it is/ },
  { state: "shutdown", reason: "soft_reset", calls: [D(), C()], log: /asked for a soft reset: restarted as domain 9; soft reset is done as a restart \(on_soft_reset=soft-reset\)/ },
  // Crash-loop guard: a crash within 10 s of the start is not restarted (whatever restart flavour).
  { state: "crashed", reason: "crash", ts: { onCrash: "restart" }, up: 4, calls: [D()], log: /crashed: destroyed, not restarted: it crashed 4 s after its start \(crash-loop guard, 10 s\) \(on_crash=restart\)/ },
  { state: "shutdown", reason: "watchdog", ts: { onCrash: "rename-restart" }, up: 0, calls: [D()] },
  { state: "crashed", reason: "crash", ts: { onCrash: "coredump-restart" }, up: CRASH_LOOP_SECONDS - 1, calls: [D()] },
  { state: "crashed", reason: "crash", ts: { onCrash: "restart" }, up: CRASH_LOOP_SECONDS, calls: [D(), C()] },
  { state: "crashed", reason: "crash", ts: { onCrash: "preserve" }, up: 1, calls: [] },
  // The guard is for crashes only: a quick reboot is a reboot.
  { state: "shutdown", reason: "reboot", up: 1, calls: [D(), C()] },
];

for (const r of rows) {
  const label = `${r.state}/${r.reason ?? "-"}/${JSON.stringify(r.ts ?? "defaults")}${r.up !== undefined ? `/up ${r.up}s` : ""}`;
  test(`policy: ${label}`, () => {
    const d = decide(info(r.state, r.reason, r.ts, { up: r.up, paused: true }), NOW);
    if (r.calls === null) { assert.equal(d, null); return; }
    assert.ok(d);
    assert.equal(d.calls.length, r.calls.length, `calls: ${JSON.stringify(d.calls)}`);
    r.calls.forEach((want, i) => {
      if (typeof want === "function") want(d.calls[i]!);
      else assert.deepEqual(d.calls[i], want);
    });
    if (r.log) assert.match(describe(d, { newDomid: 9 }), r.log);
  });
}

test("policy: a renamed domain restarts under its current name", () => {
  const i = info("shutdown", "reboot", undefined);
  i.name = "db";
  const d = decide(i, NOW)!;
  const c = d.calls[1]!;
  assert.equal(c.op === "create" && c.spec.name, "db");
});

test("policy: failure log line", () => {
  const d = decide(info("shutdown", "reboot", undefined), NOW)!;
  assert.equal(describe(d, { error: "create: ENOMEM: not enough memory" }),
    "domain 3 (web) rebooted: restart failed: create: ENOMEM: not enough memory (on_reboot=restart)");
});

test("policy: xl's preserve suffix is UTC %Y%m%dT%H%MZ", () => {
  assert.equal(utcSuffix(Date.UTC(2027, 0, 2, 3, 4, 59) / 1000), "-20270102T0304Z");
});

test("policy: every action is known", () => {
  const all: ShutdownAction[] = ["destroy", "restart", "preserve", "rename-restart", "coredump-destroy", "coredump-restart", "soft-reset"];
  for (const a of all) assert.ok(decide(info("shutdown", "poweroff", { onPoweroff: a }), NOW));
});

// ------------------------------------------------------------------------- xeno create --standalone

/** The standalone mode's domain: the same spec as info()'s, run `up` seconds before NOW. */
function run(ts: Partial<ToolstackData> | undefined, up = 600): StandaloneRun {
  const spec = info("shutdown", "poweroff", ts, { paused: true }).spec;
  return { spec: { ...spec, uuid: UUID }, startTime: NOW - up };
}

interface StandaloneRow {
  stop: DomainStopState; ts?: Partial<ToolstackData>; up?: number;
  /** null: nothing to decide. */
  want: null | {
    setting: string;
    /** "same": restarted with the same uuid; "fresh": without one (the caller gives a new one); null: destroyed. */
    restart: "same" | "fresh" | null;
    notes?: RegExp[];
    crashLoop?: number;
  };
}

const standaloneRows: StandaloneRow[] = [
  // Ended from outside (signal, detach): nothing to decide.
  { stop: "destroyed", want: null },
  // Defaults, as xenod: destroy / restart / destroy.
  { stop: "poweroff", want: { setting: "on_poweroff=destroy", restart: null } },
  { stop: "reboot", want: { setting: "on_reboot=restart", restart: "same" } },
  { stop: "crashed", want: { setting: "on_crash=destroy", restart: null } },
  { stop: "reboot", ts: { onReboot: "destroy" }, want: { setting: "on_reboot=destroy", restart: null } },
  { stop: "poweroff", ts: { onPoweroff: "restart" }, want: { setting: "on_poweroff=restart", restart: "same" } },
  // What needs a daemon to keep a domain: preserve destroys, rename-restart restarts without keeping the old one.
  { stop: "poweroff", ts: { onPoweroff: "preserve" }, want: { setting: "on_poweroff=preserve", restart: null, notes: [/^no toolstack daemon to keep the domain for inspection; destroying it$/] } },
  { stop: "crashed", ts: { onCrash: "preserve" }, up: 1, want: { setting: "on_crash=preserve", restart: null, notes: [/destroying it/] } },
  { stop: "reboot", ts: { onReboot: "rename-restart" }, want: { setting: "on_reboot=rename-restart", restart: "fresh", notes: [/^no toolstack daemon to keep the old domain; restarting$/] } },
  // decide()'s notes pass through.
  { stop: "poweroff", ts: { onPoweroff: "coredump-destroy" }, want: { setting: "on_poweroff=coredump-destroy", restart: null, notes: [/^core dumps are not written$/] } },
  { stop: "crashed", ts: { onCrash: "coredump-restart" }, want: { setting: "on_crash=coredump-restart", restart: "same", notes: [/^core dumps are not written$/] } },
  { stop: "reboot", ts: { onReboot: "soft-reset" }, want: { setting: "on_reboot=soft-reset", restart: "same", notes: [/^soft reset is done as a restart$/] } },
  // The crash-loop guard, whatever restart flavour; reboots are not guarded.
  { stop: "crashed", ts: { onCrash: "restart" }, up: 4, want: { setting: "on_crash=restart", restart: null, crashLoop: 4 } },
  { stop: "crashed", ts: { onCrash: "rename-restart" }, up: 0, want: { setting: "on_crash=rename-restart", restart: null, crashLoop: 0 } },
  { stop: "crashed", ts: { onCrash: "restart" }, up: CRASH_LOOP_SECONDS, want: { setting: "on_crash=restart", restart: "same" } },
  { stop: "reboot", up: 0, want: { setting: "on_reboot=restart", restart: "same" } },
];

for (const r of standaloneRows) {
  test(`policy, standalone: ${r.stop}/${JSON.stringify(r.ts ?? "defaults")}${r.up !== undefined ? `/up ${r.up}s` : ""}`, () => {
    const s = decideStandalone(run(r.ts, r.up), { state: r.stop, reason: "test" }, NOW);
    if (r.want === null) { assert.equal(s, null); return; }
    assert.ok(s);
    assert.equal(`${s.decision.setting}=${s.decision.action}`, r.want.setting);
    assert.equal(s.decision.crashLoop, r.want.crashLoop);
    const notes = r.want.notes ?? [];
    assert.equal(s.notes.length, notes.length, JSON.stringify(s.notes));
    notes.forEach((re, i) => assert.match(s.notes[i]!, re));
    if (r.want.restart === null) { assert.equal(s.restart, null); return; }
    assert.ok(s.restart);
    assert.equal(s.restart.name, "web");
    assert.equal(s.restart.paused, undefined, "a restarted domain is not paused");
    assert.equal(s.restart.uuid, r.want.restart === "same" ? UUID : undefined);
    assert.deepEqual(s.restart.toolstack, run(r.ts).spec.toolstack, "the same policies for the next run");
  });
}

test("policy, standalone: the decision is decide()'s for the domain as the hypervisor would list it", () => {
  const cases: [DomainStopState, DomainState, ShutdownReason][] = [["poweroff", "shutdown", "poweroff"], ["reboot", "shutdown", "reboot"], ["crashed", "crashed", "crash"]];
  for (const [stop, state, reason] of cases) {
    const ts = { onPoweroff: "restart", onReboot: "coredump-destroy", onCrash: "rename-restart" } as const;
    const s = decideStandalone(run(ts, 100), { state: stop, reason: "x" }, NOW)!;
    const d = decide({ ...info(state, reason, ts, { up: 100, paused: true }), domid: 1 }, NOW)!;
    assert.deepEqual(s.decision, d, stop);
  }
});
