/**
 * GET /metrics: Prometheus text (prom-client) with each domain's CPU time, memory (actual, balloon target,
 * maximum), vCPUs, state, and its back-ends' I/O counters; the host's pool memory and pCPUs; the API's own call
 * counts. Values are read from the hypervisor (`list`, `info`) at each scrape. The `xeno_domain_*` I/O counters
 * are per domain, summed over its VBDs and over its VIFs (src/hv/io-stats.ts, xentop's columns); `xeno_vbd_*` and
 * `xeno_vif_*` have each device's own (labels `vbd`: the vdev, `xvda`; `vif`: the devid, `0`, as xapi names its
 * `vbd_DEV_*` / `vif_N_*` data sources), and `xeno_vcpu_cpu_seconds_total` each vCPU's (label `vcpu`). They are
 * separate metrics, not extra labels on the sums, so `sum by (domain)` over either never counts twice.
 *
 * A scrape needs credentials of any role: HTTP Basic (a Prometheus `basic_auth`) or `?session_id=` of a session.
 * A Basic credential that succeeded is remembered (as its SHA-256) for CRED_CACHE_MS so a scrape every few
 * seconds costs no password hash.
 */
import { createHash } from "node:crypto";
import { Counter, Gauge, Registry } from "prom-client";
import type { DomainInfo } from "../hv/protocol.js";
import type { Dispatcher } from "./dispatch.js";
import type { XenModel } from "./model.js";

const CRED_CACHE_MS = 60_000;

type Labels = "domain" | "domid" | "uuid";

export class ApiMetrics {
  readonly registry = new Registry();
  private readonly creds = new Map<string, number>();

  constructor(private readonly model: XenModel, private readonly dispatcher: Dispatcher) {
    const r = this.registry;
    const doms = (): DomainInfo[] => [...this.model.domains.values()];
    const labels = (d: DomainInfo): Record<Labels, string> => ({ domain: d.name, domid: String(d.domid), uuid: d.uuid });
    const names: Labels[] = ["domain", "domid", "uuid"];
    /** A counter whose value is read from the hypervisor's cumulative figure at each scrape. */
    const counter = (name: string, help: string, get: (d: DomainInfo) => number | undefined): void => {
      new Counter({
        name, help, labelNames: names, registers: [r],
        collect() { this.reset(); for (const d of doms()) { const v = get(d); if (v !== undefined) this.inc(labels(d), v); } },
      });
    };
    const gauge = (name: string, help: string, get: (d: DomainInfo) => number | undefined): void => {
      new Gauge({
        name, help, labelNames: names, registers: [r],
        collect() { this.reset(); for (const d of doms()) { const v = get(d); if (v !== undefined) this.set(labels(d), v); } },
      });
    };
    counter("xeno_domain_cpu_seconds_total", "Host CPU seconds the domain's vCPUs used (Domain-0: the toolstack and hypervisor processes)", (d) => d.cpuSeconds);
    gauge("xeno_domain_memory_bytes", "The domain's current reservation (after ballooning)", (d) => d.memKiB * 1024);
    gauge("xeno_domain_memory_target_bytes", "The balloon target (memory/target; Domain-0 has none)", (d) => (d.domid === 0 ? undefined : d.targetKiB * 1024));
    gauge("xeno_domain_memory_max_bytes", "The domain's maximum reservation", (d) => d.maxMemKiB * 1024);
    gauge("xeno_domain_vcpus", "vCPUs the domain was created with", (d) => d.vcpus);
    gauge("xeno_domain_vcpus_online", "vCPUs online in the guest", (d) => d.onlineVcpus);
    counter("xeno_domain_vbd_read_requests_total", "Block read requests served by blkback, all the domain's VBDs", (d) => d.io?.vbdRd);
    counter("xeno_domain_vbd_write_requests_total", "Block write requests served by blkback, all the domain's VBDs", (d) => d.io?.vbdWr);
    counter("xeno_domain_vbd_read_bytes_total", "Bytes read by the domain's VBDs (512-byte sectors)", (d) => d.io === undefined ? undefined : d.io.vbdRsect * 512);
    counter("xeno_domain_vbd_write_bytes_total", "Bytes written by the domain's VBDs (512-byte sectors)", (d) => d.io === undefined ? undefined : d.io.vbdWsect * 512);
    counter("xeno_domain_vbd_oo_requests_total", "Block requests that waited for blkback's resources (xentop VBD_OO)", (d) => d.io?.vbdOo);
    counter("xeno_domain_vif_tx_bytes_total", "Bytes the domain sent through netback, all its VIFs", (d) => d.io?.netTxBytes);
    counter("xeno_domain_vif_rx_bytes_total", "Bytes the domain received through netback, all its VIFs", (d) => d.io?.netRxBytes);
    counter("xeno_domain_vif_tx_packets_total", "Packets the domain sent through netback, all its VIFs", (d) => d.io?.netTxPackets);
    counter("xeno_domain_vif_rx_packets_total", "Packets the domain received through netback, all its VIFs", (d) => d.io?.netRxPackets);
    // Per vCPU and per device: one series per (domain, vcpu / device), from the hypervisor's per-item figures.
    const each = (name: string, help: string, key: string, get: (d: DomainInfo, out: (id: string, v: number) => void) => void): void => {
      new Counter({
        name, help, labelNames: [...names, key], registers: [r],
        collect() { this.reset(); for (const d of doms()) get(d, (id, v) => this.inc({ ...labels(d), [key]: id }, v)); },
      });
    };
    each("xeno_vcpu_cpu_seconds_total", "Host CPU seconds each vCPU used (they sum to xeno_domain_cpu_seconds_total)", "vcpu", (d, out) => {
      d.vcpuCpuSeconds?.forEach((v, k) => out(String(k), v));
    });
    /** A VBD's label: its vdev (`xvda`) from the domain's config, else its devid. */
    const vdev = (d: DomainInfo, devid: number): string => d.spec?.disks?.find((k) => k.devid === devid)?.vdev ?? String(devid);
    const vbd = (name: string, help: string, pick: (v: NonNullable<NonNullable<DomainInfo["io"]>["vbds"]>[number]) => number): void =>
      each(name, help, "vbd", (d, out) => { for (const v of d.io?.vbds ?? []) out(vdev(d, v.devid), pick(v)); });
    vbd("xeno_vbd_read_requests_total", "Block read requests blkback served for this VBD", (v) => v.reads);
    vbd("xeno_vbd_write_requests_total", "Block write requests blkback served for this VBD", (v) => v.writes);
    vbd("xeno_vbd_read_bytes_total", "Bytes read through this VBD", (v) => v.readBytes);
    vbd("xeno_vbd_write_bytes_total", "Bytes written through this VBD", (v) => v.writeBytes);
    const vif = (name: string, help: string, pick: (v: NonNullable<NonNullable<DomainInfo["io"]>["vifs"]>[number]) => number): void =>
      each(name, help, "vif", (d, out) => { for (const v of d.io?.vifs ?? []) out(String(v.devid), pick(v)); });
    vif("xeno_vif_tx_bytes_total", "Bytes the domain sent through this VIF (netback)", (v) => v.txBytes);
    vif("xeno_vif_rx_bytes_total", "Bytes the domain received through this VIF (netback)", (v) => v.rxBytes);
    vif("xeno_vif_tx_packets_total", "Packets the domain sent through this VIF (netback)", (v) => v.txPackets);
    vif("xeno_vif_rx_packets_total", "Packets the domain received through this VIF (netback)", (v) => v.rxPackets);
    new Gauge({
      name: "xeno_domain_state", help: "1 for the domain's state", labelNames: [...names, "state"], registers: [r],
      collect() { this.reset(); for (const d of doms()) this.set({ ...labels(d), state: d.state }, 1); },
    });
    const host = (name: string, help: string, get: () => number | undefined): void => {
      new Gauge({ name, help, registers: [r], collect: function () { const v = get(); if (v !== undefined) this.set(v); } });
    };
    host("xeno_host_memory_total_bytes", "The hypervisor's machine-frame pool", () => (this.model.host ? this.model.host.totalMemoryMiB * 1048576 : undefined));
    host("xeno_host_memory_free_bytes", "Free frames in the pool", () => (this.model.host ? this.model.host.freeMemoryMiB * 1048576 : undefined));
    host("xeno_host_pcpus", "pCPUs the credit scheduler places domains on", () => this.model.host?.pcpus ?? this.model.host?.nrCpus);
    host("xeno_api_calls_total", "XenAPI calls received", () => this.dispatcher.counts.calls);
    host("xeno_api_errors_total", "XenAPI calls answered with an error", () => this.dispatcher.counts.errors);
    host("xeno_api_login_failures_total", "Failed XenAPI logins", () => this.dispatcher.counts.loginFailures);
  }

  /** True when the request carries credentials of any role (see the header). */
  async authorised(authorization: string | undefined, sessionId: string | undefined): Promise<boolean> {
    if (sessionId !== undefined) return this.dispatcher.hasSession(sessionId);
    const m = /^Basic ([A-Za-z0-9+/=]{1,1024})$/.exec(authorization ?? "");
    if (!m) return false;
    const key = createHash("sha256").update(m[1]!).digest("hex");
    const now = Date.now();
    const until = this.creds.get(key);
    if (until !== undefined && until > now) return true;
    const text = Buffer.from(m[1]!, "base64").toString("utf8");
    const colon = text.indexOf(":");
    if (colon < 0) return false;
    const ok = await this.dispatcher.checkLogin(text.slice(0, colon), text.slice(colon + 1), "metrics");
    if (ok) {
      if (this.creds.size > 1000) this.creds.clear();
      this.creds.set(key, now + CRED_CACHE_MS);
    }
    return ok;
  }

  async scrape(): Promise<{ type: string; text: string }> {
    await this.model.refresh();
    return { type: this.registry.contentType, text: await this.registry.metrics() };
  }
}
