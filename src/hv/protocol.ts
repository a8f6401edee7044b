/**
 * The control protocol of Xeno's hypervisor process (`xeno-hv`, src/hv/main.ts) and of the toolstack daemon
 * (`xenod`, src/toolstack), which speaks the same protocol to the CLI and forwards to the hypervisor.
 *
 * Process split (as Xen's): the hypervisor process owns the machine — every domain (a worker thread running
 * its vCPUs and back-ends), the machine-frame pool, and the one XenStore (served to guests over their xenbus
 * rings and to dom0 tools over xenstored's unix socket). xenod is the toolstack: it builds domains from xl.cfg
 * files, keeps names and policies (on_poweroff/on_reboot/on_crash) and answers the CLI. Restarting xenod
 * leaves every domain running in the hypervisor; the new xenod lists them and carries on.
 *
 * Transport: a unix stream socket; messages are JSON objects, one per line (UTF-8, '\n'-terminated, at most
 * MAX_LINE bytes). A client sends requests with a numeric `id`; the server answers each with the same id, in
 * any order. Events (`{event: …}`) arrive on connections that asked for them with `subscribe`.
 * A `console` request turns its connection into a raw byte stream after the OK response: guest console
 * output to the client, client bytes to the guest's console input, until either side closes.
 *
 * `list` includes Domain-0 (domid 0: the toolstack side itself — memory is the hypervisor process's RSS, Time
 * its CPU time outside the guests).
 */

/** Longest protocol line accepted (bytes); a longer one closes the connection. */
export const MAX_LINE = 1 << 20;

/** Socket file names inside the run directory (default /run/xeno, or $XENO_RUN_DIR). */
export const HV_SOCKET = "hv.sock";
export const XENOD_SOCKET = "xenod.sock";

/** What the toolstack asks the hypervisor to build (all paths absolute, all values validated by the caller). */
export interface DomainSpec {
  name: string;
  /** Canonical 8-4-4-4-12 UUID; generated when absent. */
  uuid?: string;
  memMiB: number;
  vcpus: number;
  /** Paths of the arm64 Image and the initramfs (read by the hypervisor at create). */
  kernel: string;
  ramdisk?: string;
  cmdline: string;
  /** Boot as a Xen DomU (default true). */
  xen: boolean;
  /**
   * An HVM domain (xl's type = "hvm"): `kernel` is then the UEFI firmware (AAVMF_CODE.fd, booted from flash) and
   * `vars` the domain's variable store file (a copy of AAVMF_VARS.fd, kept across restarts).
   */
  firmware?: {
    vars: string;
    /** xl's boot= ("cd" by default): the order the firmware tries disks (c), cdroms (d) and NICs (n) in. */
    boot?: string;
    /** Xeno's virtio_rng (default true): a virtio-rng device on the PCIe bus (docs/hvm.md). */
    rng?: boolean;
  };
  /** cdrom: an HVM domain's devtype=cdrom disk (read-only; boot= letter d); nvme: its vdev nvmeN, an NVMe controller. */
  disks: { path: string; devid: number; vdev: string; readOnly: boolean; format?: "raw" | "qcow2"; cdrom?: boolean; nvme?: boolean }[];
  vifs: { devid: number; mac: string; mtu: number; bridge: string; rate?: { bytesPerInterval: number; intervalUsecs: number } }[];
  /** Start with every vCPU paused (xl create -p). */
  paused?: boolean;
  /** Credit scheduler parameters (xl.cfg cpu_weight, cap, cpus); defaults 256, 0, all pCPUs. */
  sched?: { weight?: number; cap?: number; cpus?: number[] | null };
  /** Opaque to the hypervisor: kept with the domain and returned by `list` (xenod keeps policies there). */
  toolstack?: ToolstackData;
}

/** What xenod keeps with a domain so that a restarted xenod can still apply its policies. */
export interface ToolstackData {
  onPoweroff: ShutdownAction;
  onReboot: ShutdownAction;
  onCrash: ShutdownAction;
  /** The config file it came from and its text (xl list -l shows the config). */
  configFile?: string;
  configText?: string;
}

export type ShutdownAction = "destroy" | "restart" | "preserve" | "rename-restart" | "coredump-destroy" | "coredump-restart" | "soft-reset";

/**
 * running: some vCPU runnable; blocked: every vCPU waiting for an event (WFI); paused: paused by the
 * toolstack; shutdown: the guest shut itself down (reason says how) and the domain awaits the toolstack;
 * crashed: the guest or its emulation failed; dying: being destroyed.
 */
export type DomainState = "running" | "blocked" | "paused" | "shutdown" | "crashed" | "dying";
export type ShutdownReason = "poweroff" | "reboot" | "suspend" | "crash" | "watchdog" | "soft_reset";

export interface DomainInfo {
  domid: number;
  name: string;
  uuid: string;
  state: DomainState;
  /** Set for state "shutdown" (and "crashed": "crash"). */
  shutdownReason?: ShutdownReason;
  /** Human-readable detail of the last stop (e.g. "SCHEDOP_shutdown poweroff", an emulator fault). */
  reason?: string;
  /** Current reservation (after ballooning) and maximum, KiB. */
  memKiB: number;
  maxMemKiB: number;
  /** Balloon target (memory/target), KiB. */
  targetKiB: number;
  vcpus: number;
  /** vCPUs online in the guest (PSCI CPU_ON'd). */
  onlineVcpus: number;
  /** Host CPU seconds the domain's vCPUs have used (their threads' run time: src/common/thread-cpu.ts). */
  cpuSeconds: number;
  /** Seconds its vCPUs held pCPU slots of the credit scheduler (what credit is charged; ≥ cpuSeconds on a host
   * that other processes load). Absent from Domain-0. */
  slotSeconds?: number;
  /** The same per vCPU (index = vCPU id; they sum to cpuSeconds): Xen's per-vCPU cputime (vcpu-list's Time, xcp-rrdd's
   * `cpuN`). Absent from Domain-0 and from a hypervisor that does not count them. */
  vcpuCpuSeconds?: number[];
  /** Unix time (s) of creation. */
  startTime: number;
  spec: DomainSpec;
  /** Credit scheduler: weight, cap (% of a pCPU, 0 = none), hard affinity (null = all pCPUs); the pCPU it holds
   * now (-1: none — blocked, paused, or waiting for its turn). */
  sched?: { weight: number; cap: number; affinity: number[] | null };
  pcpu?: number;
  /** The pCPU it last held (vcpu-list's CPU column while it waits, as Xen shows v->processor); -1: never ran. */
  lastPcpu?: number;
  /**
   * Per vCPU (index = vCPU id) when each is an entity of the credit scheduler of its own (vCPUs on threads of
   * their own; vCPU 0 is the domain's home thread): the pCPU it holds now and the one it held last (-1: none,
   * never), and whether it has guest code to run (false: it waits in WFI — Xen's blocked). Absent when the
   * vCPUs share the domain's thread, and so its pcpu, lastPcpu and state.
   */
  vcpuSched?: { pcpu: number; lastPcpu: number; runnable: boolean }[];
  /** Its devices' xenbus state (xl block-list / network-list; src/hv/device-info.ts). */
  devices?: DeviceInfo[];
  /** Its back-ends' I/O counters summed over its devices (xentop; src/hv/io-stats.ts). */
  io?: DomainIo;
  /** control/shutdown as the guest left it: the request until the guest reads it, "" once acknowledged
   * (absent: never written). `xeno shutdown -w` reports from it. */
  controlShutdown?: string;
}

/** A device as xl block-list / network-list show it: front-end state, event channel, ring refs (-1: absent). */
export interface DeviceInfo {
  kind: "vbd" | "vif";
  devid: number;
  /** XenbusState of the front-end (what libxl reports) and of the back-end. */
  state: number;
  backendState: number;
  evtch: number;
  /** vbd: ring-ref; vif: tx-ring-ref and rx-ring-ref. */
  ringRef?: number;
  txRingRef?: number;
  rxRingRef?: number;
}

/** xentop's counters: vbd requests out of resources, read and write requests and sectors; vif bytes from the
 * guest's side (tx: sent by the guest). */
export interface DomainIo {
  vbdOo: number; vbdRd: number; vbdWr: number; vbdRsect: number; vbdWsect: number;
  netTxBytes: number; netRxBytes: number;
  /** Frames (packets) through netback, from the guest's side, summed over its vifs (absent from older hypervisors). */
  netTxPackets?: number; netRxPackets?: number;
  /** Each device's own counters (the first 8 devices; absent from older hypervisors). vif figures from the guest's side. */
  vbds?: { devid: number; reads: number; writes: number; readBytes: number; writeBytes: number }[];
  vifs?: { devid: number; txPackets: number; txBytes: number; rxPackets: number; rxBytes: number }[];
}

export interface HostInfo {
  host: string;
  release: string;
  machine: string;
  nrCpus: number;
  /** pCPUs the credit scheduler places domains on, and its time slice. */
  pcpus?: number;
  tsliceMs?: number;
  /** Worker threads running domains, and the most domains one holds (several share a thread's V8 isolate). */
  vmThreads?: number;
  /** A thread without domains is kept warm for the next one (src/hv/hypervisor.ts SPARE_KEEP_MS). */
  vmSpareThread?: boolean;
  /** The spare domain memory kept for the next restore (save-spare-memory.ts): its size, and restores that took one. */
  spareMemoryBytes?: number;
  spareMemoryTaken?: number;
  /** Lazy restores (src/hv/lazy-ram.ts) still loading in the background, and the last finished load (ms after its first slice). */
  lazyRestore?: { pending: number; last: { ms: number; here: number; total: number } | null };
  /** Worker threads started since the hypervisor started (the spare taken again is not a new one). */
  vmThreadsStarted?: number;
  domainsPerThread?: number;
  /** Domains the balancer moved between worker threads since the hypervisor started (src/hv/balance.ts). */
  vmMoves?: number;
  /** Machine-frame pool, MiB. */
  totalMemoryMiB: number;
  freeMemoryMiB: number;
  xenMajor: number;
  xenMinor: number;
  xenExtra: string;
  /** Hypervisor process uptime, s. */
  uptime: number;
  /** Paths of the sockets this hypervisor serves. */
  xenstoredSocket: string;
}

/** Requests (the `op` field) and their arguments. */
export type Request =
  | { id: number; op: "create"; spec: DomainSpec }
  | { id: number; op: "list" }
  | { id: number; op: "info" }
  | { id: number; op: "pause"; domid: number }
  /**
   * `report`: answered when the domain's next slice starts, with that time (wall ms since the epoch); with it
   * `name` renames the domain first (xeno migrate-receive: its NAME--incoming copy becomes NAME and runs).
   */
  | { id: number; op: "unpause"; domid: number; report?: boolean; name?: string }
  /** Asks the guest to shut down (control/shutdown, as xl shutdown/reboot do); the guest decides. */
  | { id: number; op: "shutdown"; domid: number; reason: "poweroff" | "reboot" | "halt" | "suspend" }
  | { id: number; op: "destroy"; domid: number }
  /**
   * xl save: the domain's state and memory to `path` (absolute; the hypervisor writes it). `checkpoint` (-c):
   * the domain runs on after the save; `paused` (-p): it stays paused after the save; neither: destroyed after
   * a successful save. Progress events go to subscribers. `suspend`: Xen's suspend protocol first (the guest
   * is asked through control/shutdown, suspends itself and resumes from the file as in a new domain).
   */
  | { id: number; op: "save"; domid: number; path: string; checkpoint?: boolean; paused?: boolean; suspend?: boolean }
  /**
   * xl restore: a domain from the save file at `path`, under its saved name or `name`; `paused` (-p): not
   * unpaused. `spec` (xl restore CONFIG FILE) replaces the saved config: same memory, vCPUs and devices (devid,
   * vdev, read-only; vif MAC and MTU), while name, disk paths, bridges, policies and scheduling may differ.
   * `stream` (xeno migrate-receive): `path` is a unix socket the client listens on, carrying the stream.
   * `received` (with `paused`; xeno migrate-receive): answered once the file or stream is read and checked and
   * the domain's id, name, frames and store nodes are taken, while its worker still builds the Machine (the
   * build overlaps the migration's ready → go-ahead handshake); an `unpause` with `report` waits for the build,
   * and a build that fails makes that unpause fail with the domain gone (xl's "unpause failed" path: the source
   * resumes). `timing`'s build figures are then NaN; the unpause's answer carries them (`build`).
   */
  | { id: number; op: "restore"; path: string; paused?: boolean; name?: string; spec?: DomainSpec; stream?: boolean; received?: boolean }
  /**
   * xl migrate's sending side: the save stream into the unix socket `socket` (absolute; the client listens),
   * live (pre-copy) unless `live` is false; maxRounds/minDirty: when pre-copy stops (5 rounds, < 50 dirty pages).
   * The domain is left paused and saved (as save -p). `renameTo`: renamed so once the stream is sent (xeno
   * migrate's NAME--migratedaway, with no request of its own while the target restores; `renamed` says it was).
   */
  | { id: number; op: "migrate-send"; domid: number; socket: string; live?: boolean; maxRounds?: number; minDirty?: number; renameTo?: string }
  | { id: number; op: "rename"; domid: number; name: string }
  /** Sets memory/target (the balloon); KiB. */
  | { id: number; op: "mem-set"; domid: number; targetKiB: number }
  | { id: number; op: "sysrq"; domid: number; key: string }
  /** xl mem-max (KiB) and vcpu-set (count). */
  | { id: number; op: "mem-max"; domid: number; maxKiB: number }
  | { id: number; op: "vcpu-set"; domid: number; vcpus: number }
  /** Updates the toolstack data kept with the domain. */
  | { id: number; op: "set-toolstack"; domid: number; toolstack: ToolstackData }
  /** Credit scheduler: a domain's weight/cap (omitted = unchanged); returns the current parameters. */
  | { id: number; op: "sched-credit"; domid: number; weight?: number; cap?: number }
  /** Credit scheduler: the time slice in ms (omitted = unchanged); returns it with the pCPU count. */
  | { id: number; op: "sched-params"; tsliceMs?: number }
  /** Hard affinity of a domain (all its vCPUs: they share one thread): pCPU numbers, or null for all. */
  | { id: number; op: "vcpu-pin"; domid: number; cpus: number[] | null }
  /**
   * Hot-plug (xl block-attach/-detach, network-attach/-detach). Detach waits for the guest to let go (≤ 10 s)
   * and fails with EBUSY when it does not (the device stays, closing); force removes it at once (xl -f).
   */
  | { id: number; op: "block-attach"; domid: number; disk: DomainSpec["disks"][number] }
  | { id: number; op: "block-detach"; domid: number; devid: number; force?: boolean }
  | { id: number; op: "network-attach"; domid: number; vif: DomainSpec["vifs"][number] }
  | { id: number; op: "network-detach"; domid: number; devid: number; force?: boolean }
  /** The hypervisor's log (xl dmesg). */
  | { id: number; op: "dmesg"; clear?: boolean }
  /** This connection receives events from now on. */
  | { id: number; op: "subscribe" }
  /** Turns this connection into the domain's console stream (after the OK). `replay`: recent output first. */
  | { id: number; op: "console"; domid: number; replay?: boolean };

export type Op = Request["op"];

export interface ResultMap {
  create: { domid: number };
  list: DomainInfo[];
  info: HostInfo;
  save: { bytes: number; pages: number; zeroPages: number; ms: number };
  "migrate-send": MigrateSendResult;
  restore: { domid: number; bytes: number; ms: number; timing: RestoreTimingInfo };
  pause: null; unpause: null | { runningAt: number; build?: RestoreBuildInfo }; shutdown: null; destroy: null; rename: null; "mem-set": null; sysrq: null;
  "set-toolstack": null; subscribe: null; console: null;
  dmesg: string[];
  "sched-credit": { weight: number; cap: number; affinity: number[] | null };
  "sched-params": { tsliceMs: number; pcpus: number };
  "vcpu-pin": { weight: number; cap: number; affinity: number[] | null };
  "mem-max": null; "vcpu-set": null;
  "block-attach": null; "network-attach": null;
  /** forced: removed before the front-end closed (force, or a front-end already gone). */
  "block-detach": { forced: boolean }; "network-detach": { forced: boolean };
}

export type Response =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: ErrorCode; message: string } };

/** Stable error codes (tests assert on them). */
export type ErrorCode =
  | "ENOENT_DOMAIN"   // no such domain
  | "EEXIST_NAME"     // a domain with that name exists
  | "EINVAL"          // malformed request or argument
  | "ENOMEM"          // not enough free frames in the pool
  | "ESTATE"          // not possible in the domain's state (e.g. unpause a running domain)
  | "EBUILD"          // the domain could not be built (kernel unreadable, disk image missing, …); message says why
  | "EBUSY"           // the guest did not let go of a device being detached (it stays); message says which
  | "ENOSYS"          // unknown op
  | "EIO"             // a file could not be read or written (message: which and why)
  | "EFORMAT"         // a save file is not one, is corrupt, or does not fit (message: what and where)
  | "EHVDOWN";        // (xenod) the hypervisor process is not reachable; xenod keeps retrying

export type Event =
  /** A domain's state changed (created, paused, shutdown, crashed, destroyed → state "dying" then gone). */
  | { event: "domain"; domid: number; name: string; state: DomainState | "destroyed"; shutdownReason?: ShutdownReason; reason?: string }
  /** A save or restore in progress: pages of the domain's RAM done so far, and bytes of the file. */
  | { event: "progress"; op: "save" | "restore"; domid: number; path: string; pages: number; totalPages: number; bytes: number };

/** Where a restore's time went (Hypervisor.restore; xeno restore -v and migrate-receive print it), ms. */
export interface RestoreTimingInfo {
  /** The file or stream read and checked (for a stream: until its end came, pre-copy included). */
  readMs: number;
  /**
   * The hypervisor process's CPU time (all its threads: process.cpuUsage) while the file was read and checked:
   * on a loaded host readMs is mostly waiting for a CPU, this is the work. NaN for a stream (pre-copy included).
   */
  readCpuMs: number;
  /** Config and state checks, frames claimed, XenStore nodes written, the domain introduced. */
  storeMs: number;
  /** The pages were read into the spare memory of a domain destroyed after its save (save-spare-memory.ts). */
  spareMemory?: boolean;
  /** The worker built the Machine from the state and answered (threadMs + machineMs + the answer's trip). */
  buildMs: number;
  /** From the build's start to the worker beginning it (a thread started, or its loop turning). */
  threadMs: number;
  /** The Machine restored from the snapshot in the worker. */
  machineMs: number;
  /**
   * A file's: the part of readMs spent reading its pages after the records were checked (save-jobs.ts), and how
   * many PAGE_DATA records the hypervisor's main thread and the helper thread read. Absent for a stream.
   */
  pagesMs?: number;
  jobsMain?: number;
  jobsHelper?: number;
  /** Wall times (ms since the epoch, µs precision): the stream's end read, the domain built. */
  readAt: number;
  builtAt: number;
  /** A migration's: when the source asked its domain to pause (the source host's wall clock). */
  pausedAt?: number;
  /**
   * A restore that runs (not paused): from the request to the domain's first guest instruction (its first slice
   * starting in the worker), ms; the answer waits for it (at most RUN_WAIT_MS, else NaN).
   */
  runningMs?: number;
  /** A lazy restore's (src/hv/lazy-ram.ts): pages left out of the memory, loaded on first touch and in the background. */
  lazyPages?: number;
}

/**
 * A restore answered with `received`: its build, which went on after the answer (the unpause with `report` that
 * waited for it gives this). Wall times as in RestoreTimingInfo; ms.
 */
export interface RestoreBuildInfo {
  /** The worker built the Machine and answered (wall ms since the epoch). */
  builtAt: number;
  threadMs: number;
  machineMs: number;
}

/** What a migration's sending side did (Hypervisor.migrateSend). */
export interface MigrateSendResult {
  bytes: number;
  /** Before the pause: the drain mark's wait (ms) and whether the receiver answered it (save-live.ts). */
  drain?: { ms: number; answered: boolean };
  /** Pre-copy ran (rounds non-empty); else whyNotLive. */
  live: boolean;
  whyNotLive?: string;
  /** Each pre-copy round: pages sent, ms, pages dirty after it. */
  rounds: { pages: number; ms: number; dirtyAfter: number }[];
  /** Pages sent while paused (stop-and-copy). */
  finalPages: number;
  /** The domain was paused before the migration. */
  wasPaused: boolean;
  /** Wall time (ms since the epoch, this host's clock) the domain was asked to pause for the stop-and-copy. */
  pausedAt: number;
  stopCopyMs: number;
  /** The stop-and-copy's parts, ms: the worker saved and paused the domain, the last dirty pages taken, the
   * state encoded and written, the pages written, the stream's end written and taken by the client. */
  stopCopy: { saveMs: number; dirtyMs: number; stateMs: number; pagesMs: number; endMs: number };
  ms: number;
  /** Renamed to the request's `renameTo` once the stream was sent. */
  renamed?: boolean;
}
