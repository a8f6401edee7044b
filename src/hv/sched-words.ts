/**
 * The credit scheduler's control words of one domain (src/hv/credit.ts), in a SharedArrayBuffer that the
 * hypervisor, the domain's home thread (vm-worker.ts) and its vCPU threads (vcpu-thread.ts) share. The scheduler
 * places vCPUs, as Xen does: the home thread (vCPU 0, the devices, the Xen layer and back-ends — and every vCPU of
 * the domain when they do not run on threads of their own) holds the permit of vCPU 0, each vCPU thread its own.
 * Per vCPU k, 16 bytes at 16k:
 *
 *   Int32 [4k]      permit: non-zero while the thread running vCPU k may run (set by the hypervisor): 1, or
 *                   PERMIT_WAITED (vCPU 0 only) when another entity waits for a slot, so that the holder should
 *                   say when it blocks (credit.ts: a blocked holder keeps its slot until someone needs it)
 *   Int32 [4k + 1]  want: 1 while it has guest code to run (set by that thread)
 *   Float64 [2k + 1] seconds that thread has run guest code (for k = 0 the home thread's own slices, without the
 *                    vCPU threads'): the scheduler debits each entity its own time
 */
export const SCHED_PERMIT = 0, SCHED_WANT = 1;
/** The permit word's value while another entity waits for a slot (see above). */
export const PERMIT_WAITED = 2;

/** Bytes of the words for a domain of `vcpus` vCPUs. */
export function schedBytes(vcpus: number): number { return 16 * vcpus; }
/** Int32 index of vCPU k's permit and want words; Float64 index of its thread's CPU seconds. */
export function permitAt(k: number): number { return 4 * k + SCHED_PERMIT; }
export function wantAt(k: number): number { return 4 * k + SCHED_WANT; }
export function cpuAt(k: number): number { return 2 * k + 1; }

/** The scheduler's id of the entity for vCPU k ≥ 1 of domain `domid` on a thread of its own (vCPU 0: domid). */
export function vcpuEntityId(domid: number, k: number): number { return -(domid * 16 + k); }
