/**
 * Validation of a parsed xl.cfg into a typed DomainConfig (xl.cfg(5); Xen's tools/xl/xl_parse.c
 * parse_config_data and libxl's defaults), and the public entry point `parseConfigFile`.
 *
 * Decisions (where xl's behaviour is odd, or Xeno differs):
 * - Paths: kernel= and ramdisk= are resolved against the current directory, as xl does (it hands the string
 *   to libxl, which opens it relative to xl's cwd) — NOT against the config file's directory. A config that
 *   works with xl works with xeno.
 * - Xeno extension, kernel= and ramdisk= only: `$VAR`, `${VAR}`, `${VAR:-default}` and a leading `~` are
 *   expanded, so examples/demo.cfg can say "${XENO_IMAGES:-~/.cache/xeno}/images/vmlinuz". xl does no
 *   expansion; a path with a literal `$` would need `$$` (no real config has one). An unset variable without a
 *   default is an error naming the key.
 * - Guests are PVH: Xeno's machine is AArch64, where xl defaults to PVH and libxl converts type="pv" to PVH with a
 *   warning (libxl_arm.c libxl__arch_domain_create_info_setdefault); we do the same. type="hvm" (and
 *   builder="hvm") boots UEFI firmware from flash (docs/hvm.md): `bios_path_override` names the firmware
 *   (default Debian's /usr/share/AAVMF/AAVMF_CODE.fd), Xeno's `uefi_vars` the domain's variable store (default
 *   ${XENO_IMAGES:-~/.cache/xeno}/nvram/NAME_VARS.fd, made from AAVMF_VARS.fd at the first start). Such a
 *   domain also finds Xen (PV on HVM) unless xen_platform_pci = 0 (xl's key; Xeno's xen_platform says the same).
 * - type= must be exactly pv, pvh or hvm (xl accepts any prefix of them by accident of strncmp).
 * - kernel= is mandatory for pv/pvh: direct kernel boot (no pvgrub/bootloader); type="hvm" boots firmware.
 * - vcpus=0 is an error (xl silently uses 1); memory defaults to 32 MiB and maxmem to memory, as libxl.
 * - Numbers may be written as numbers or as strings holding one (xl stores both as text); strings may be given
 *   as numbers (`name = 42` gives "42"), as in xl.
 */
import { statSync } from "node:fs";
import { describeKind } from "../common/host-file.js";
import { homedir } from "node:os";
import { resolve } from "node:path";
import { randomUUID } from "node:crypto";
import { ConfigError, type ConfigErrorCode, type ConfigWarning, type SourcePos } from "./errors.js";
import { applyOverrides, readConfigFile, type ConfigValue, type RawConfig, type Setting } from "./parser.js";
import { parseCpuList, type CpuAffinity, type CpuTerm } from "./cpus.js";
import { parseDiskSpec, type DiskSpec, type SpecOrigin } from "./disk.js";
import { parseVifSpec, type VifSpec } from "./vif.js";
import { XL_KEYS } from "./xl-keys.js";

export type ShutdownAction =
  | "destroy" | "restart" | "rename-restart" | "preserve" | "coredump-destroy" | "coredump-restart" | "soft-reset";
export const SHUTDOWN_ACTIONS: readonly ShutdownAction[] =
  ["destroy", "restart", "rename-restart", "preserve", "coredump-destroy", "coredump-restart", "soft-reset"];

/** Limits. MAX_VCPUS is Xeno's (the GIC model's redistributor count); the memory cap keeps the guest's RAM a
 *  size a Node process can actually back (one SharedArrayBuffer per domain). */
export const MAX_VCPUS = 128;
export const MAX_MEMORY_MIB = 64 * 1024;
/** libxl__domain_build_info_setdefault: max_memkb defaults to 32 MiB, target to max. */
export const DEFAULT_MEMORY_MIB = 32;
/** Credit scheduler: weight 1..65535, default 256; cap in % of one CPU, 0 = none. */
export const DEFAULT_CPU_WEIGHT = 256;

/** Debian's UEFI firmware for arm64 and its variable-store template (apt package qemu-efi-aarch64). */
export const AAVMF_CODE = "/usr/share/AAVMF/AAVMF_CODE.fd", AAVMF_VARS = "/usr/share/AAVMF/AAVMF_VARS.fd";

export interface DomainConfig {
  name: string;
  /** "pvh" (type="pv" is converted, as libxl does on Arm) or "hvm" (firmware boot). */
  type: "pvh" | "hvm";
  /**
   * type="hvm": the firmware (bios_path_override) and the domain's variable store (uefi_vars), absolute; `boot`:
   * xl's boot= letters (default "cd": disks, then cdroms; n: NICs), the order the firmware tries them in; `rng`:
   * Xeno's virtio_rng key (default 1), a virtio-rng device on the PCIe bus (docs/hvm.md: xl has no key for one).
   */
  firmware?: { code: string; vars: string; boot: string; rng: boolean };
  uuid: string;
  uuidGenerated: boolean;
  memoryMiB: number;
  maxMemoryMiB: number;
  vcpus: number;
  maxVcpus: number;
  /** Hard affinity (cpus=), soft affinity (cpus_soft=); absent: no pinning. */
  cpus?: CpuAffinity;
  cpusSoft?: CpuAffinity;
  cpuWeight: number;
  cap: number;
  /**
   * Xeno's `xen_platform` key (default 1): 1 boots the domain as a Xen DomU (the device tree's hypervisor node,
   * hypercalls, XenStore, PV console); 0 boots the same kernel on the bare board, for comparison.
   */
  xenPlatform: boolean;
  /** Absolute paths. */
  kernel: string;
  ramdisk?: string;
  /** The guest kernel command line, after xl's cmdline / root / extra rule. */
  cmdline: string;
  onPoweroff: ShutdownAction;
  onReboot: ShutdownAction;
  onWatchdog: ShutdownAction;
  onCrash: ShutdownAction;
  onSoftReset: ShutdownAction;
  disks: DiskSpec[];
  vifs: VifSpec[];
  /** The config file as given, for messages and for recreating the domain. */
  configFile: string;
}

export interface ParseOptions {
  /** Directory relative kernel/ramdisk paths resolve against (default process.cwd(), as xl). */
  cwd?: string;
  /** Environment for $VAR expansion (default process.env). */
  env?: Record<string, string | undefined>;
  /** Home directory for `~` (default os.homedir()). */
  home?: string;
  /** Check that kernel/ramdisk exist (default true). */
  checkFiles?: boolean;
  /** Randomness for generated MACs (tests pass a fixed source). */
  randomBytes?: (n: number) => Uint8Array;
  /** UUID generator (default crypto.randomUUID). */
  generateUuid?: () => string;
}

export interface ParseResult {
  config: DomainConfig;
  warnings: ConfigWarning[];
}

/** Reads `path`, applies `overrides` (xl create's trailing key=value arguments) and validates. */
export function parseConfigFile(path: string, overrides: readonly string[] = [], opts: ParseOptions = {}): ParseResult {
  const raw = readConfigFile(path);
  applyOverrides(raw, overrides);
  return validateConfig(raw, path, opts);
}

const IMPLEMENTED = new Set([
  "name", "type", "builder", "xen_platform", "xen_platform_pci", "memory", "maxmem", "vcpus", "maxvcpus", "cpus", "cpus_soft", "cpu_weight", "cap",
  "kernel", "ramdisk", "cmdline", "root", "extra", "uuid", "disk", "vif",
  "on_poweroff", "on_reboot", "on_watchdog", "on_crash", "on_soft_reset", "bios_path_override", "uefi_vars", "boot",
  "virtio_rng",
]);

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Validates a parsed config. `file` names the config file in messages about missing keys. */
export function validateConfig(raw: RawConfig, file: string, opts: ParseOptions = {}): ParseResult {
  const v = new Validator(raw, file, opts);
  return { config: v.run(), warnings: v.warnings };
}

class Validator {
  readonly warnings: ConfigWarning[] = [];

  constructor(private readonly raw: RawConfig, private readonly file: string, private readonly opts: ParseOptions) {}

  run(): DomainConfig {
    this.reportKeys();
    const type = this.guestType();
    const name = this.name();
    const uuid = this.uuid();
    const memoryMiB = this.int("memory", DEFAULT_MEMORY_MIB, 1, MAX_MEMORY_MIB, "MiB");
    const maxMemoryMiB = this.int("maxmem", memoryMiB, 1, MAX_MEMORY_MIB, "MiB");
    if (maxMemoryMiB < memoryMiB) this.fail("maxmem", "CONFIG_BAD_VALUE", `maxmem (${maxMemoryMiB} MiB) must be at least memory (${memoryMiB} MiB)`);
    const vcpus = this.int("vcpus", 1, 1, MAX_VCPUS);
    const maxVcpus = this.int("maxvcpus", vcpus, 1, MAX_VCPUS);
    if (maxVcpus < vcpus) this.fail("maxvcpus", "CONFIG_BAD_VALUE", `maxvcpus (${maxVcpus}) must be at least vcpus (${vcpus})`);
    const cpuWeight = this.int("cpu_weight", DEFAULT_CPU_WEIGHT, 1, 65535);
    const cap = this.int("cap", 0, 0, 100 * maxVcpus, "% of one CPU");
    const hvm = type === "hvm";
    // PV on HVM: xl's xen_platform_pci (default 1, as libxl) says whether an HVM guest also finds Xen (docs/hvm.md).
    // On Arm there is no platform PCI device: Xen is the device tree's /hypervisor node, as for any DomU.
    // Xeno's own xen_platform means the same; given both, they must agree.
    const xpp = this.raw.get("xen_platform_pci");
    if (xpp !== undefined && !hvm) this.warn(xpp, "CONFIG_IGNORED", `xen_platform_pci is for type="hvm" (a ${type} guest always has the Xen platform unless xen_platform=0); ignored`);
    let xenPlatform = this.int("xen_platform", 1, 0, 1) === 1;
    if (hvm && xpp !== undefined) {
      const pci = this.int("xen_platform_pci", 1, 0, 1) === 1;
      if (this.raw.get("xen_platform") !== undefined && pci !== xenPlatform) {
        this.fail("xen_platform_pci", "CONFIG_BAD_VALUE", `xen_platform_pci = ${pci ? 1 : 0} contradicts xen_platform = ${xenPlatform ? 1 : 0}: give one of them`);
      }
      xenPlatform = pci;
    }
    let firmware: DomainConfig["firmware"];
    if (hvm) {
      for (const k of ["kernel", "ramdisk"]) {
        if (this.raw.get(k)) this.warn(this.raw.get(k), "CONFIG_IGNORED", `${k}= is not used by type=hvm (the firmware boots the guest); ignored`);
      }
      const code = this.path("bios_path_override", false) ?? this.firmwareDefault();
      firmware = { code, vars: this.varsPath(name), boot: this.bootOrder(), rng: this.int("virtio_rng", 1, 0, 1) === 1 };
    } else {
      if (this.raw.get("boot")) this.warn(this.raw.get("boot"), "CONFIG_IGNORED", `boot= picks an HVM guest's boot device; a ${type} guest's kernel is loaded directly: ignored`);
      if (this.raw.get("virtio_rng")) this.warn(this.raw.get("virtio_rng"), "CONFIG_IGNORED", `virtio_rng is a device of type="hvm"'s device model; a ${type} guest has none: ignored`);
    }
    const kernel = firmware !== undefined ? firmware.code : this.path("kernel", true)!;
    const ramdisk = firmware !== undefined ? undefined : this.path("ramdisk", false);
    const cfg: DomainConfig = {
      name, type, uuid: uuid.uuid, uuidGenerated: uuid.generated, memoryMiB, maxMemoryMiB, vcpus, maxVcpus,
      cpuWeight, cap, xenPlatform, kernel, cmdline: this.cmdline(),
      onPoweroff: this.action("on_poweroff", "destroy"),
      onReboot: this.action("on_reboot", "restart"),
      onWatchdog: this.action("on_watchdog", "destroy"),
      onCrash: this.action("on_crash", "destroy"),
      onSoftReset: this.action("on_soft_reset", "soft-reset"),
      disks: this.disks(),
      vifs: this.vifs(),
      configFile: this.file,
    };
    if (ramdisk !== undefined) cfg.ramdisk = ramdisk;
    if (firmware !== undefined) cfg.firmware = firmware;
    const cpus = this.affinity("cpus");
    if (cpus) cfg.cpus = cpus;
    const cpusSoft = this.affinity("cpus_soft");
    if (cpusSoft) cfg.cpusSoft = cpusSoft;
    return cfg;
  }

  // ---- helpers ----

  private posOf(s: Setting, at: SourcePos = s.value.pos) {
    return { file: s.source.name, line: at.line, column: at.column, key: s.key, sourceLine: s.source.lines[at.line - s.source.firstLine] };
  }

  private fail(key: string, code: ConfigErrorCode, msg: string, at?: SourcePos): never {
    const s = this.raw.get(key);
    if (!s) throw new ConfigError(code, msg, { file: this.file, line: 1, column: 1, key });
    throw new ConfigError(code, msg, this.posOf(s, at));
  }

  private warn(s: Setting | undefined, code: ConfigWarning["code"], message: string, at?: SourcePos): void {
    if (!s) { this.warnings.push({ code, file: this.file, line: 1, column: 1, message }); return; }
    const p = this.posOf(s, at ?? s.pos);
    this.warnings.push({ code, file: p.file, line: p.line, column: p.column, key: s.key, message });
  }

  /** A single value (string or number) as text; undefined when the key is absent. */
  private str(key: string): string | undefined {
    const s = this.raw.get(key);
    if (!s) return undefined;
    if (s.value.kind === "list") this.fail(key, "CONFIG_WRONG_KIND", `${key} must be a single value, not a [list]`);
    return s.value.kind === "string" ? s.value.value : s.value.text;
  }

  private int(key: string, dflt: number, min: number, max: number, unit = ""): number {
    const s = this.raw.get(key);
    if (!s) return dflt;
    const v = s.value;
    let n: number;
    if (v.kind === "list") this.fail(key, "CONFIG_WRONG_KIND", `${key} must be a number, not a [list]`);
    if (v.kind === "number") n = v.value;
    else {
      const t = v.value.trim();
      if (!/^(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.test(t)) {
        this.fail(key, "CONFIG_BAD_VALUE", `${key} must be a number, got ${JSON.stringify(v.value)}${unit === "MiB" ? " (memory is in MiB, without a suffix)" : ""}`);
      }
      n = /^0[xX]/.test(t) ? parseInt(t.slice(2), 16) : /^0./.test(t) ? parseInt(t, 8) : Number(t);
    }
    const u = unit ? ` ${unit}` : "";
    if (n < min || n > max) this.fail(key, "CONFIG_BAD_VALUE", `${key} = ${n}${u} is out of range (${min}..${max}${u})`);
    return n;
  }

  // ---- keys ----

  private reportKeys(): void {
    for (const [key, s] of this.raw.settings) {
      if (IMPLEMENTED.has(key)) continue;
      if (XL_KEYS.has(key)) this.warn(s, "CONFIG_NOT_IMPLEMENTED", `key '${key}' is not implemented yet, ignored`);
      else {
        const near = suggest(key, [...IMPLEMENTED, ...XL_KEYS]);
        this.warn(s, "CONFIG_UNKNOWN_KEY", `unknown key '${key}' (not an xl.cfg key), ignored${near ? `; did you mean '${near}'?` : ""}`);
      }
    }
  }

  /** The firmware when bios_path_override is absent: Debian's AAVMF (checked like a path key). */
  private firmwareDefault(): string {
    if ((this.opts.checkFiles ?? true) && !statSafe(AAVMF_CODE)?.isFile()) {
      this.fail("type", "CONFIG_FILE_NOT_FOUND", `type=hvm boots UEFI firmware: ${AAVMF_CODE} is missing (apt-get install qemu-efi-aarch64, or bios_path_override = "/path/to/CODE.fd")`);
    }
    return AAVMF_CODE;
  }

  /** boot= (xl.cfg: HVM only): letters c (hard disk), d (cdrom), n (network), tried in that order; default "cd". */
  private bootOrder(): string {
    const b = this.str("boot");
    if (b === undefined) return "cd";
    if (!/^[cdn]{1,3}$/.test(b) || new Set(b).size !== b.length) {
      this.fail("boot", "CONFIG_BAD_VALUE", `boot = ${JSON.stringify(b)}: want the letters c (hard disk), d (cdrom), n (network), each at most once, in the order to try them (xl's default "cd")`);
    }
    return b;
  }

  /** uefi_vars (Xeno's key): where the domain's variable store lives; default in the image cache, by name. */
  private varsPath(name: string): string {
    const env = this.opts.env ?? process.env;
    const p = this.str("uefi_vars") ?? `\${XENO_IMAGES:-~/.cache/xeno}/nvram/${name}_VARS.fd`;
    if (p === "") this.fail("uefi_vars", "CONFIG_BAD_VALUE", "uefi_vars is empty");
    const expanded = expandPath(p, env, this.opts.home ?? homedir());
    if (typeof expanded !== "string") this.fail("uefi_vars", "CONFIG_BAD_VALUE", `uefi_vars: ${expanded.error} in ${JSON.stringify(p)}`);
    return resolve(this.opts.cwd ?? process.cwd(), expanded);
  }

  private guestType(): "pvh" | "hvm" {
    const t = this.str("type");
    const b = this.str("builder");
    let type: "pv" | "pvh" | "hvm" | undefined;
    if (t !== undefined) {
      if (t !== "pv" && t !== "pvh" && t !== "hvm") this.fail("type", "CONFIG_BAD_VALUE", `invalid type ${JSON.stringify(t)} (pv, pvh or hvm)`);
      type = t;
    }
    if (b !== undefined) {
      const bt = b === "hvm" ? "hvm" : b === "generic" ? "pv" : undefined;
      if (!bt) this.fail("builder", "CONFIG_BAD_VALUE", `invalid builder ${JSON.stringify(b)} (generic or hvm; builder is deprecated, use type=)`);
      if (type !== undefined && type !== bt) this.fail("builder", "CONFIG_BAD_VALUE", `contradicting "builder" and "type" options`);
      type = bt;
    }
    if (type === "hvm") return "hvm";
    if (type === "pv") {
      this.warn(this.raw.get(t !== undefined ? "type" : "builder"), "CONFIG_CONVERTED",
        "converting PV guest to PVH: Arm guests are PVH (as libxl does on Arm)");
    }
    return "pvh";
  }

  private name(): string {
    const n = this.str("name");
    if (n === undefined) this.fail("name", "CONFIG_MISSING_KEY", "domain name must be specified (name = \"...\")");
    if (!NAME_RE.test(n)) {
      this.fail("name", "CONFIG_BAD_VALUE", `invalid domain name ${JSON.stringify(n)}: use 1-64 letters, digits, '_', '.', '-', starting with a letter or digit`);
    }
    if (/^[0-9]+$/.test(n)) this.fail("name", "CONFIG_BAD_VALUE", `invalid domain name ${JSON.stringify(n)}: a name can't be all digits (it would read as a domain id)`);
    return n;
  }

  private uuid(): { uuid: string; generated: boolean } {
    const u = this.str("uuid");
    if (u === undefined) return { uuid: (this.opts.generateUuid ?? randomUUID)(), generated: true };
    if (!UUID_RE.test(u)) this.fail("uuid", "CONFIG_BAD_VALUE", `failed to parse UUID ${JSON.stringify(u)} (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
    return { uuid: u.toLowerCase(), generated: false };
  }

  private path(key: string, required: boolean): string | undefined {
    const p = this.str(key);
    if (p === undefined || (p === "" && !required)) {
      if (!required) return undefined;
      const alt = ["firmware", "bootloader"].find((k) => this.raw.get(k));
      if (alt) this.fail(alt, "CONFIG_UNSUPPORTED", `${alt}= boot is not implemented yet; use direct kernel boot (kernel = "/path/to/Image")`);
      this.fail(key, "CONFIG_MISSING_KEY", `${key} must be specified: Xeno boots guests by direct kernel boot (kernel = "/path/to/Image")`);
    }
    if (p === "") this.fail(key, "CONFIG_BAD_VALUE", `${key} is empty`);
    const env = this.opts.env ?? process.env;
    const expanded = expandPath(p, env, this.opts.home ?? homedir());
    if (typeof expanded !== "string") this.fail(key, "CONFIG_BAD_VALUE", `${key}: ${expanded.error} in ${JSON.stringify(p)}`);
    const abs = resolve(this.opts.cwd ?? process.cwd(), expanded);
    if (this.opts.checkFiles ?? true) {
      // stat, never open: a FIFO given here must not block the CLI either.
      let st;
      try { st = statSync(abs); } catch { st = undefined; }
      const from = abs !== p ? ` (from ${JSON.stringify(p)})` : "";
      if (st === undefined) this.fail(key, "CONFIG_FILE_NOT_FOUND", `${key}: no such file: ${abs}${from}`);
      if (!st.isFile()) this.fail(key, "CONFIG_BAD_VALUE", `${key}: ${abs}${from} is ${describeKind(st)}; give a regular file`);
    }
    return abs;
  }

  /** xl_parse.c parse_cmdline: cmdline wins; else "root=R E", "root=R", or E. */
  private cmdline(): string {
    const cmdline = this.str("cmdline"), root = this.str("root"), extra = this.str("extra");
    if (cmdline !== undefined) {
      if (root !== undefined || extra !== undefined) {
        this.warn(this.raw.get(root !== undefined ? "root" : "extra"), "CONFIG_IGNORED", "ignoring root= and extra= in favour of cmdline=");
      }
      return cmdline;
    }
    if (root !== undefined && extra !== undefined) return `root=${root} ${extra}`;
    if (root !== undefined) return `root=${root}`;
    return extra ?? "";
  }

  private action(key: string, dflt: ShutdownAction): ShutdownAction {
    const a = this.str(key);
    if (a === undefined) return dflt;
    if (!(SHUTDOWN_ACTIONS as readonly string[]).includes(a)) {
      this.fail(key, "CONFIG_BAD_VALUE", `unknown ${key} action ${JSON.stringify(a)} (${SHUTDOWN_ACTIONS.join(", ")})`);
    }
    return a as ShutdownAction;
  }

  private affinity(key: string): CpuAffinity | undefined {
    const s = this.raw.get(key);
    if (!s) return undefined;
    const one = (v: ConfigValue): { text: string; terms: CpuTerm[] } => {
      if (v.kind === "list") this.fail(key, "CONFIG_WRONG_KIND", `${key}: list items must be CPU lists like "0-3,^1", not [lists]`, v.pos);
      const text = v.kind === "string" ? v.value : v.text;
      const terms = parseCpuList(text);
      if (typeof terms === "string") this.fail(key, "CONFIG_BAD_VALUE", `${key}: ${terms}`, v.pos);
      return { text, terms };
    };
    if (s.value.kind !== "list") return { kind: "all-vcpus", ...one(s.value) };
    if (s.value.items.length === 0) this.fail(key, "CONFIG_BAD_VALUE", `${key}: empty list`);
    const each = s.value.items.map(one);
    return { kind: "per-vcpu", texts: each.map((e) => e.text), terms: each.map((e) => e.terms) };
  }

  /** The string items of a spec list (disk=, vif=), each with its origin for messages. */
  private specList(key: string): { spec: string; origin: SpecOrigin }[] {
    const s = this.raw.get(key);
    if (!s) return [];
    if (s.value.kind !== "list") this.fail(key, "CONFIG_WRONG_KIND", `${key} must be a list: ${key} = [ '...', '...' ]`);
    return s.value.items.map((item, i) => {
      if (item.kind !== "string") this.fail(key, "CONFIG_WRONG_KIND", `${key}[${i}] must be a string spec, not a ${item.kind}`, item.pos);
      const p = this.posOf(s, item.pos);
      return { spec: item.value, origin: { file: p.file, pos: item.pos, key: `${key}[${i}]`, sourceLine: p.sourceLine } };
    });
  }

  private disks(): DiskSpec[] {
    const seen = new Map<number, string>();
    return this.specList("disk").map(({ spec, origin }) => {
      const d = parseDiskSpec(spec, origin);
      if (d.target !== "") {
        // As for kernel= and ramdisk=: $VAR, ${VAR:-default} and ~ are expanded (relative paths stay relative).
        const t = expandPath(d.target, this.opts.env ?? process.env, this.opts.home ?? homedir());
        if (typeof t !== "string") this.fail("disk", "CONFIG_BAD_VALUE", `${origin.key}: ${t.error}`, origin.pos);
        d.target = t;
      }
      const prev = seen.get(d.vdevNumber);
      if (prev !== undefined) {
        this.fail("disk", "CONFIG_BAD_DISK", `${origin.key}: vdev '${d.vdev}' is the same device as '${prev}' of an earlier disk`, origin.pos);
      }
      seen.set(d.vdevNumber, d.vdev);
      return d;
    });
  }

  private vifs(): VifSpec[] {
    const s = this.raw.get("vif");
    const seen = new Set<number>();
    return this.specList("vif").map(({ spec, origin }, i) => {
      const v = parseVifSpec(spec, i, origin, this.opts.randomBytes);
      for (const w of v.warnings) this.warn(s, "CONFIG_IGNORED", `${origin.key}: ${w}`, origin.pos);
      if (seen.has(v.devid)) this.fail("vif", "CONFIG_BAD_VIF", `${origin.key}: devid ${v.devid} used twice`, origin.pos);
      seen.add(v.devid);
      return v;
    });
  }
}

/**
 * Expands `$VAR`, `${VAR}`, `${VAR:-default}` (default itself expanded) and then a leading `~` or `~/`;
 * `$$` is a literal `$`. Returns the path, or {error} naming an unset variable.
 */
export function expandPath(p: string, env: Record<string, string | undefined>, home: string): string | { error: string } {
  let err: string | undefined;
  const vars = (s: string): string =>
    s.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (m, braced: string | undefined, dflt: string | undefined, bare: string | undefined) => {
        if (m === "$$") return "$";
        const name = braced ?? bare!;
        const val = env[name];
        if (val !== undefined && val !== "") return val;
        if (dflt !== undefined) return vars(dflt);
        if (val === undefined) err ??= `environment variable ${name} is not set`;
        return "";
      });
  const out = vars(p);
  if (err) return { error: err };
  if (out === "~" || out.startsWith("~/")) return home + out.slice(1);
  return out;
}

/** The closest key within edit distance 2, for "did you mean". */
function suggest(key: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined, bestD = 3;
  for (const c of candidates) {
    const d = editDistance(key, c);
    if (d < bestD) { best = c; bestD = d; }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

function statSafe(p: string): ReturnType<typeof statSync> | undefined {
  try { return statSync(p); } catch { return undefined; }
}
