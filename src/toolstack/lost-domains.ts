/**
 * What xenod does about domains that vanish with the hypervisor (a `kill -9` of xeno-hv, or its crash): it
 * keeps the last listing of every domain (refreshed after each domain event and whenever the link comes up);
 * when the link drops those domains are "at risk", and when it comes up again each of them the new listing no
 * longer has (by uuid) is logged as lost and gets its on_crash (xl.cfg(5)) as if it had crashed:
 *  - restart, rename-restart, coredump-restart, soft-reset: created again from its spec (same name and uuid, a new
 *    domid: the new hypervisor is started with --first-domid above every domid seen, so no id names two domains). Nothing of the old domain is left to rename, so rename-restart acts as restart;
 *  - destroy, coredump-destroy: nothing to do but say so;
 *  - preserve: its state went with the hypervisor; said so.
 * A domain stopped by a hypervisor shutting down cleanly (SIGTERM: it destroys every domain and says so in events)
 * is never at risk. A hypervisor that lost the link but kept its domains lists them again: nothing is lost.
 */
import type { DomainInfo, Event, ResultMap } from "../hv/protocol.js";
import type { LogLevel } from "../common/log.js";
import { DEFAULT_POLICIES } from "./policy.js";
import type { HvRequester } from "./supervisor.js";

const REFRESH_DELAY_MS = 100;

export class LostDomains {
  /** The last listing, by uuid (Domain-0 and dying domains left out). */
  private readonly known = new Map<string, DomainInfo>();
  private atRisk: DomainInfo[] | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private up = false;

  /** One above the highest domid seen (so a new hypervisor gives new ids, as Xen never reuses a live one). */
  private highest = 0;

  constructor(private readonly hv: HvRequester, private readonly log: (line: string, level?: LogLevel) => void) {}

  get nextDomid(): number | undefined {
    return this.highest === 0 || this.highest >= 0x7fef ? undefined : this.highest + 1;
  }

  /** A hypervisor event: a destroyed domain is forgotten at once, anything else refreshes the listing soon. */
  onEvent(e: Event): void {
    if (e.event !== "domain") return;
    if (e.state === "destroyed" || e.state === "dying") {
      for (const [k, d] of this.known) if (d.domid === e.domid) this.known.delete(k);
    }
    if (this.refreshTimer === null && this.up) {
      this.refreshTimer = setTimeout(() => { this.refreshTimer = null; void this.refresh().catch(() => undefined); }, REFRESH_DELAY_MS);
      this.refreshTimer.unref();
    }
  }

  /** The link dropped: every domain of the last listing is at risk until the next listing. */
  linkDown(): void {
    this.up = false;
    if (this.refreshTimer !== null) { clearTimeout(this.refreshTimer); this.refreshTimer = null; }
    const risk = new Map((this.atRisk ?? []).map((d) => [d.uuid, d]));
    for (const [k, d] of this.known) risk.set(k, d);
    this.atRisk = [...risk.values()];
  }

  /** The link is up: list, and handle the domains at risk that the hypervisor no longer has. */
  async linkUp(): Promise<void> {
    this.up = true;
    const now = await this.refresh();
    const risk = this.atRisk;
    this.atRisk = null;
    if (risk === null || risk.length === 0) return;
    const have = new Set(now.map((d) => d.uuid));
    const lost = risk.filter((d) => !have.has(d.uuid));
    if (lost.length === 0) return;
    const policy = (d: DomainInfo): string => d.spec.toolstack?.onCrash ?? DEFAULT_POLICIES.onCrash;
    this.log(`the hypervisor lost ${lost.length} domain${lost.length > 1 ? "s" : ""} (it died or was killed): ` +
      lost.map((d) => `${d.name} (id ${d.domid}, on_crash=${policy(d)})`).join(", "), "warn");
    for (const d of lost) await this.apply(d, policy(d));
  }

  private async apply(d: DomainInfo, action: string): Promise<void> {
    switch (action) {
      case "restart": case "rename-restart": case "coredump-restart": case "soft-reset": {
        try {
          const r = await this.hv.request({ op: "create", spec: d.spec }) as ResultMap["create"];
          this.log(`${d.name} (id ${d.domid}) lost with the hypervisor: on_crash=${action}: created again as id ${r.domid}`);
        } catch (e) {
          this.log(`${d.name} (id ${d.domid}) lost with the hypervisor: on_crash=${action}: cannot create it again: ${(e as Error).message}`);
        }
        return;
      }
      case "preserve":
        this.log(`${d.name} (id ${d.domid}) lost with the hypervisor: on_crash=preserve, but its state went with the hypervisor; nothing kept`);
        return;
      default:
        this.log(`${d.name} (id ${d.domid}) lost with the hypervisor: on_crash=${action}: not created again`);
    }
  }

  private async refresh(): Promise<DomainInfo[]> {
    const list = await this.hv.request({ op: "list" }) as ResultMap["list"];
    this.known.clear();
    for (const d of list) {
      this.highest = Math.max(this.highest, d.domid);
      if (d.domid !== 0 && d.state !== "dying") this.known.set(d.uuid, d);
    }
    return list;
  }
}
