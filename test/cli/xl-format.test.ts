/**
 * The xl subcommands' output formats against xl's printf formats (tools/xl/xl_info.c, xl_vcpu.c, xl_block.c,
 * xl_nic.c, tools/xentop/xentop.c), with crafted DomainInfo/HostInfo; the expected strings were produced with
 * the same printf formats (Python's % operator). Also: memory sizes, escape characters, option parsing.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DomainInfo } from "../../src/hv/protocol.js";
import { domainTable, resolveDomain } from "../../src/cli/xl/domains.js";
import { XlError } from "../../src/cli/xl/errors.js";
import {
  fixed1, formatBlockList, formatInfo, formatList, formatListLong, formatNetworkList, formatUptime, formatVcpuList,
  stateLetters, topHeader, topRow, topStateLetters, uptimeString,
} from "../../src/cli/xl/format.js";
import { count, getopt, UsageError, value } from "../../src/cli/xl/getopt.js";
import { escapeName, parseEscape, parseMemSizeKiB } from "../../src/cli/xl/parse.js";
import { dom, GUESTS, HOST, spec } from "./xl-fixtures.js";

describe("xl list", () => {
  const table = domainTable(GUESTS, HOST, 1_700_003_600);

  it("prints xl's header and rows, Domain-0 first (made up from info: pool frames that no guest holds)", () => {
    assert.equal(formatList(table),
      "Name                                        ID   Mem VCPUs\tState\tTime(s)\n" +
      "Domain-0                                     0   392     4     r-----       0.0\n" +
      "web                                          1   128     2     r-----      12.3\n" +
      "db                                           7   512     1     --p---       0.0\n" +
      "down                                        12    64     1     ---sr-       3.2\n");
  });

  it("uses the hypervisor's Domain-0 when it lists one", () => {
    const d0 = dom({ domid: 0, name: "Domain-0", memKiB: 1024 * 1024, vcpus: 4, onlineVcpus: 4, cpuSeconds: 77.7 });
    const t = domainTable([GUESTS[0]!, d0], HOST, 0);
    assert.deepEqual(t.map((d) => d.domid), [0, 1]);
    assert.equal(formatList(t).split("\n")[1], "Domain-0                                     0  1024     4     r-----      77.7");
  });

  it("does not cut long names and widens the time column as printf does", () => {
    const d = dom({ domid: 13, name: "a-very-long-domain-name-that-exceeds-forty-chars", state: "crashed", memKiB: 16384, onlineVcpus: 1, cpuSeconds: 1234567.89 });
    assert.equal(formatList([d]).split("\n")[1],
      "a-very-long-domain-name-that-exceeds-forty-chars    13    16     1     ---sc-  1234567.9");
  });

  it("-v adds the UUID, the shutdown reason code in hex and the security label", () => {
    assert.equal(formatList([GUESTS[1]!, GUESTS[0]!], { verbose: true }),
      "Name                                        ID   Mem VCPUs\tState\tTime(s)   UUID                            Reason-Code\tSecurity Label\n" +
      "down                                        12    64     1     ---sr-       3.2 6f1e2d3c-0000-4000-8000-00000000000c        1                -\n" +
      "web                                          1   128     2     r-----      12.3 6f1e2d3c-0000-4000-8000-00000000000c        -                -\n");
  });

  it("-Z, -c and -n add their columns", () => {
    const s = formatList([GUESTS[0]!], { context: true, cpupool: true, numa: true });
    assert.equal(s,
      "Name                                        ID   Mem VCPUs\tState\tTime(s)   Security Label         Cpupool NODE Affinity\n" +
      "web                                          1   128     2     r-----      12.3                -          Pool-0 all\n");
  });

  it("state letters: r b p s <reason from -rscwS> d", () => {
    const letters = (o: Partial<DomainInfo>): string => stateLetters(dom(o));
    assert.equal(letters({ state: "running" }), "r-----");
    assert.equal(letters({ state: "blocked" }), "-b----");
    assert.equal(letters({ state: "paused" }), "--p---");
    assert.equal(letters({ state: "shutdown", shutdownReason: "poweroff" }), "---s--");
    assert.equal(letters({ state: "shutdown", shutdownReason: "reboot" }), "---sr-");
    assert.equal(letters({ state: "shutdown", shutdownReason: "suspend" }), "---ss-");
    assert.equal(letters({ state: "crashed" }), "---sc-");
    assert.equal(letters({ state: "shutdown", shutdownReason: "watchdog" }), "---sw-");
    assert.equal(letters({ state: "shutdown", shutdownReason: "soft_reset" }), "---sS-");
    assert.equal(letters({ state: "dying" }), "-----d");
  });

  it("-l prints libxl_domain_config-shaped JSON with the domid", () => {
    const d = dom({
      spec: spec({
        disks: [{ path: "/srv/web.img", devid: 51712, vdev: "xvda", readOnly: false }],
        vifs: [{ devid: 0, mac: "00:16:3E:0A:0B:0C", mtu: 1500, bridge: "xenbr0" }],
        toolstack: { onPoweroff: "destroy", onReboot: "restart", onCrash: "rename-restart", configFile: "/etc/xen/web.cfg" },
      }),
    });
    const out = formatListLong([table[0]!, d]);
    assert.ok(out.startsWith("[\n    {\n        \"domid\": 0,"), out);
    const j = JSON.parse(out) as { domid: number; config: Record<string, any> }[]; // eslint-disable-line @typescript-eslint/no-explicit-any -- test inspects JSON
    assert.equal(j[0]!.config.c_info.name, "Domain-0");
    assert.equal(j[1]!.domid, 1);
    assert.deepEqual(j[1]!.config.c_info, { type: "pvh", name: "web", uuid: "6f1e2d3c-0000-4000-8000-00000000000c" });
    assert.equal(j[1]!.config.b_info.max_memkb, 131072);
    assert.deepEqual(j[1]!.config.b_info.avail_vcpus, [0, 1]);
    assert.equal(j[1]!.config.b_info.cmdline, "console=hvc0");
    assert.deepEqual(j[1]!.config.disks, [{ pdev_path: "/srv/web.img", vdev: "xvda", format: "raw", readwrite: 1 }]);
    assert.deepEqual(j[1]!.config.nics, [{ devid: 0, mtu: 1500, mac: "00:16:3e:0a:0b:0c", bridge: "xenbr0", nictype: "vif" }]);
    assert.equal(j[1]!.config.on_crash, "restart_rename");
    assert.equal(j[1]!.config.xl_config_file, "/etc/xen/web.cfg");
  });
});

describe("domain arguments", () => {
  const table = domainTable(GUESTS, HOST, 0);
  it("take a domid or a name; Domain-0 is 0", () => {
    assert.equal(resolveDomain(table, "7").name, "db");
    assert.equal(resolveDomain(table, "db").domid, 7);
    assert.equal(resolveDomain(table, "Domain-0").domid, 0);
    assert.equal(resolveDomain(table, "0").name, "Domain-0");
  });
  it("name the missing domain and where to look", () => {
    assert.throws(() => resolveDomain(table, "nosuch"), (e: unknown) => e instanceof XlError && /domain 'nosuch' does not exist \('xeno list'/.test(e.message));
    assert.throws(() => resolveDomain(table, "99"), /domain 99 does not exist/);
  });
});

describe("xl info", () => {
  it("prints 'key<23>: value' lines in xl's order", () => {
    const s = formatInfo(HOST, "#1 SMP Debian 6.1.112-1")!;
    const lines = s.split("\n");
    assert.equal(lines[0], "host                   : build1");
    assert.equal(lines[1], "release                : 6.1.0-27-arm64");
    assert.equal(lines[2], "version                : #1 SMP Debian 6.1.112-1");
    assert.equal(lines[3], "machine                : aarch64");
    assert.ok(lines.includes("nr_cpus                : 4"));
    assert.ok(lines.includes("total_memory           : 4096"));
    assert.ok(lines.includes("free_memory            : 3000"));
    assert.ok(lines.includes("xen_major              : 4"));
    assert.ok(lines.includes("xen_minor              : 19"));
    assert.ok(lines.includes("xen_extra              : -xeno"));
    assert.ok(lines.includes("xen_version            : 4.19-xeno"));
    assert.ok(lines.includes("xen_caps               : xen-3.0-aarch64"));
    assert.equal(lines.at(-2), "xend_config_format     : 4");
    const keys = lines.filter((l) => l !== "").map((l) => l.slice(0, l.indexOf(" ")));
    assert.ok(keys.indexOf("host") < keys.indexOf("nr_cpus") && keys.indexOf("nr_cpus") < keys.indexOf("total_memory") &&
      keys.indexOf("total_memory") < keys.indexOf("xen_major"));
  });
  it("FIELD prints the values of the lines starting with it (xl's strncmp)", () => {
    assert.equal(formatInfo(HOST, "v", "free_memory"), "3000\n");
    assert.equal(formatInfo(HOST, "v", "xen_m"), "4\n19\n");
    assert.equal(formatInfo(HOST, "v", "nosuch"), null);
  });
});

describe("xl uptime", () => {
  it("formats as uptime_to_string", () => {
    assert.equal(uptimeString(0, false), " 0:00:00");
    assert.equal(uptimeString(3725, false), " 1:02:05");
    assert.equal(uptimeString(86400 + 11 * 3600 + 5 * 60 + 9, false), "1 day, 11:05:09");
    assert.equal(uptimeString(3 * 86400 + 59, false), "3 days,  0:00:59");
    assert.equal(uptimeString(3725, true), " 1:02");
    assert.equal(uptimeString(2 * 86400 + 3725, true), "2 days,  1:02");
  });
  it("prints the Name/ID/Uptime table; Domain-0's uptime is the hypervisor's", () => {
    const now = 1_700_000_000 + 90;
    const t = domainTable([GUESTS[0]!], HOST, now);
    assert.equal(formatUptime(t, now, false, HOST.uptime),
      "Name                                ID Uptime\n" +
      "Domain-0                             0  1:02:05\n" +
      "web                                  1  0:01:30\n");
    const short = formatUptime([t[1]!], now, true);
    assert.match(short, /^ \d\d:\d\d:\d\d up  0:01, web \(1\)\n$/);
  });
});

describe("xl vcpu-list", () => {
  it("prints xl's columns; per-vCPU values the protocol does not give are '-'", () => {
    const one = dom({ domid: 3, name: "one", vcpus: 2, onlineVcpus: 1, cpuSeconds: 12.345 });
    const two = dom({ domid: 4, name: "two", vcpus: 2, onlineVcpus: 2, state: "blocked", cpuSeconds: 5 });
    assert.equal(formatVcpuList([one, two]),
      "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)\n" +
      "one                                  3     0    -   r--      12.3  all / all\n" +
      "one                                  3     1    -   --p         -  all / all\n" +
      "two                                  4     0    -   -b-         -  all / all\n" +
      "two                                  4     1    -   -b-         -  all / all\n");
  });
  it("vCPUs placed one by one (vCPU threads): each its own pCPU, state and time", () => {
    const smp = dom({ domid: 6, name: "smp", vcpus: 3, onlineVcpus: 3, cpuSeconds: 9, vcpuCpuSeconds: [4, 3.5, 1.5],
      vcpuSched: [{ pcpu: 1, lastPcpu: 1, runnable: true }, { pcpu: -1, lastPcpu: 0, runnable: false }, { pcpu: -1, lastPcpu: -1, runnable: true }] });
    assert.equal(formatVcpuList([smp]).split("\n").slice(1, 4).join("\n"),
      "smp                                  6     0    1   r--       4.0  all / all\n" +
      "smp                                  6     1    0   -b-       3.5  all / all\n" +
      "smp                                  6     2    -   ---       1.5  all / all");
  });
  it("CPU: the pCPU held, else the one last held (Xen's v->processor), '-' if it never ran", () => {
    const held = dom({ domid: 3, name: "held", vcpus: 1, onlineVcpus: 1, pcpu: 2, lastPcpu: 2 });
    const waits = dom({ domid: 4, name: "waits", vcpus: 1, onlineVcpus: 1, state: "blocked", pcpu: -1, lastPcpu: 1, cpuSeconds: 5 });
    const never = dom({ domid: 5, name: "never", vcpus: 1, onlineVcpus: 1, state: "paused", pcpu: -1, lastPcpu: -1, cpuSeconds: 0 });
    assert.deepEqual(formatVcpuList([held, waits, never]).split("\n").slice(1, 4).map((l) => l.slice(32, 49)), [
      "     3     0    2", "     4     0    1", "     5     0    -",
    ]);
  });
});

describe("xl block-list / network-list", () => {
  const d = dom({
    spec: spec({
      disks: [{ path: "/srv/web.img", devid: 51712, vdev: "xvda", readOnly: false }],
      vifs: [{ devid: 0, mac: "00:16:3E:A:0B:0C", mtu: 1500, bridge: "xenbr0" }],
    }),
  });
  const live = {
    ...d, devices: [
      { kind: "vbd" as const, devid: 51712, state: 4, backendState: 4, evtch: 5, ringRef: 8 },
      { kind: "vif" as const, devid: 0, state: 4, backendState: 4, evtch: 6, txRingRef: 1280, rxRingRef: 1281 },
    ],
  };
  it("block-list", () => {
    assert.equal(formatBlockList([d]),
      "Vdev  BE  handle state evt-ch ring-ref BE-path                       \n" +
      "51712 0   1      -     -      -        /local/domain/0/backend/vbd/1/51712\n");
    assert.equal(formatBlockList([live]).split("\n")[1],
      "51712 0   1      4     5      8        /local/domain/0/backend/vbd/1/51712");
  });
  it("network-list", () => {
    assert.equal(formatNetworkList([d]),
      "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       \n" +
      "0   0  00:16:3e:0a:0b:0c     0     -      -     -/-           /local/domain/0/backend/vif/1/0\n");
    assert.equal(formatNetworkList([live]).split("\n")[1],
      "0   0  00:16:3e:0a:0b:0c     0     4      6  1280/1281        /local/domain/0/backend/vif/1/0");
  });
});

describe("xl top (xentop)", () => {
  it("header and row at xentop's widths", () => {
    assert.equal(topHeader(),
      "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID\n");
    const d = dom({ spec: spec({ disks: [{ path: "/d", devid: 51712, vdev: "xvda", readOnly: true }], vifs: [{ devid: 0, mac: "00:16:3e:00:00:01", mtu: 1500, bridge: "xenbr0" }] }) });
    assert.equal(topRow(d, 0, 4096 * 1024),
      "       web -----r         12    0.0     131072    3.1     131072       3.1     2    1        -        -    1        -        -        -          -          -    0\n");
    assert.equal(topRow(dom({ name: "a-long-domain-name" }), 50, 4096 * 1024).slice(0, 28), "a-long-dom -----r         12");
    // The back-ends' counters: KiB for the vif, requests and 512-byte sectors for the vbds.
    const io = { vbdOo: 0, vbdRd: 120, vbdWr: 64, vbdRsect: 3000, vbdWsect: 16384, netTxBytes: 10_240, netRxBytes: 5_242_880 };
    assert.equal(topRow({ ...d, io }, 0, 4096 * 1024).slice(75),
      "    2    1       10     5120    1        0      120       64       3000      16384    0\n");
    // No devices, nothing reported (Domain-0): zeros, not "-".
    assert.equal(topRow(dom({}), 0, 4096 * 1024).slice(75),
      "    2    0        0        0    0        0        0        0          0          0    0\n");
  });
  it("state letters d s b c p r", () => {
    assert.equal(topStateLetters(dom({ state: "crashed" })), "-s-c--");
    assert.equal(topStateLetters(dom({ state: "paused" })), "----p-");
    assert.equal(topStateLetters(dom({ state: "blocked" })), "--b---");
  });
});

describe("printf details", () => {
  it("%.1f rounds exact ties to even, as glibc", () => {
    assert.equal(fixed1(3.25, 0), "3.2");
    assert.equal(fixed1(0.75, 0), "0.8");
    assert.equal(fixed1(2.5, 0), "2.5");
    assert.equal(fixed1(1.05, 0), "1.1"); // 1.05 is a little above 1.05 in binary
    assert.equal(fixed1(12.345, 8), "    12.3");
  });
});

describe("mem-set sizes (xl's parse_mem_size_kb)", () => {
  it("a bare number is MiB; suffixes t g m k b in any case", () => {
    assert.equal(parseMemSizeKiB("256"), 256 * 1024);
    assert.equal(parseMemSizeKiB("256m"), 256 * 1024);
    assert.equal(parseMemSizeKiB("256M"), 256 * 1024);
    assert.equal(parseMemSizeKiB("1g"), 1024 * 1024);
    assert.equal(parseMemSizeKiB("1T"), 1024 * 1024 * 1024);
    assert.equal(parseMemSizeKiB("131072k"), 131072);
    assert.equal(parseMemSizeKiB("1048576b"), 1024);
    assert.equal(parseMemSizeKiB("1500b"), 1);
  });
  it("refuses what xl refuses (and signs, empty numbers, overflow)", () => {
    for (const s of ["", "m", "12mb", "1.5g", "-5", "+5", "12x", " 12", "99999999999999999999g"]) {
      assert.equal(parseMemSizeKiB(s), null, s);
    }
  });
});

describe("console escape character", () => {
  it("^X is Ctrl-X, one character is itself", () => {
    assert.equal(parseEscape("^]"), 0x1d);
    assert.equal(parseEscape("^a"), 0x01);
    assert.equal(parseEscape("^A"), 0x01);
    assert.equal(parseEscape("~"), 0x7e);
    assert.equal(escapeName(0x1d), "^]");
    assert.throws(() => parseEscape("ab"), UsageError);
    assert.throws(() => parseEscape(""), UsageError);
  });
});

describe("option parsing (getopt_long, permuting)", () => {
  const specs = [{ short: "a", long: "all" }, { short: "w", long: "wait" }, { short: "d", long: "delay", value: true }];
  it("clusters, values, long options, permutation, --", () => {
    const p = getopt(["dom", "-aw", "--wait", "-d5", "--delay=7", "-d", "8", "--", "-x"], specs);
    assert.deepEqual(p.args, ["dom", "-x"]);
    assert.equal(count(p, "w"), 2);
    assert.equal(count(p, "a"), 1);
    assert.equal(value(p, "d"), "8");
    assert.equal(getopt(["--help"], specs).help, true);
    assert.equal(getopt(["-h"], specs).help, true);
  });
  it("unknown options and missing values are usage errors", () => {
    assert.throws(() => getopt(["-x"], specs), /option '-x' not supported/);
    assert.throws(() => getopt(["--nope"], specs), /option '--nope' not supported/);
    assert.throws(() => getopt(["-d"], specs), /needs a value/);
    assert.throws(() => getopt(["--all=1"], specs), /takes no value/);
  });
});
