/**
 * The board's saved state: each vCPU (vcpu-state.ts) with its power and wait state, the GIC, the PL011 and the
 * PL031, and whether the board still runs. Guest RAM is not in it: it is the first ramBytes of the domain
 * memory (Board.memory), which a restore adopts (another thread over the same shared memory: nothing copied)
 * or which a snapshot file carries beside this state. Derived state is rebuilt, not saved: decode cache,
 * TLBs, interrupt lines into the vCPUs (the GIC drives them again), the console's pending input.
 *
 * restoreBoard builds a new Board: if anything in the state is refused (StateError), that board is dropped
 * and nothing else was changed.
 */
import { StateError, stateInt, stateVersion } from "../common/state.js";
import { restoreVcpu, saveVcpu, type VcpuState } from "../cpu/arm64/vcpu-state.js";
import { STOP_WFE, STOP_WFI } from "../cpu/arm64/cpu.js";
import type { Gicv2State } from "../devices/gic/gicv2-state.js";
import type { Pl011State } from "../devices/pl011/pl011.js";
import type { Pl031State } from "../devices/pl031/pl031.js";
import { DomainClock, type DomainClockState } from "../common/domain-clock.js";
import { Board, type BoardOptions, type MachineState } from "./board.js";

export interface BoardState {
  version: 1;
  memMiB: number;
  /** The domain clock (the vCPUs' counter and the RTC's time base), continued on restore. */
  clock: DomainClockState;
  vcpus: { online: boolean; waiting: number; cpu: VcpuState }[];
  gic: Gicv2State;
  uart: Pl011State;
  rtc: Pl031State;
  state: MachineState;
  reason: string;
}

const C = "board";
const STATES: readonly MachineState[] = ["running", "poweroff", "reboot", "crashed"];

/** The board's state now (between slices: no vCPU is inside run()). */
export function saveBoard(b: Board): BoardState {
  if (!(b.clock instanceof DomainClock)) throw new TypeError("saveBoard: the board's clock is not a DomainClock");
  return {
    version: 1,
    memMiB: b.ramBytes / (1024 * 1024),
    clock: b.clock.save(),
    vcpus: b.vcpus.map((v) => ({ online: v.online, waiting: v.waiting, cpu: saveVcpu(v.cpu) })),
    gic: b.gic.save(),
    uart: b.uart.save(),
    rtc: b.rtc.save(),
    state: b.state,
    reason: b.reason,
  };
}

/**
 * A board built from `state` with the wiring in `o` (console sink, platform, and usually the domain memory
 * the state was saved with). `o.memMiB` and `o.vcpus` must match the state. The board gets a DomainClock
 * continued from the state's (o.clock, when given, is that clock: it is restored in place).
 */
export function restoreBoard(o: BoardOptions, state: unknown): Board {
  const s = stateVersion(C, state, 1) as unknown as BoardState;
  stateInt(C, "memMiB", s.memMiB, o.memMiB, o.memMiB);
  if (!Array.isArray(s.vcpus) || s.vcpus.length !== o.vcpus) throw new StateError(C, "vcpus", `not ${o.vcpus} vCPU states`);
  if (!STATES.includes(s.state)) throw new StateError(C, "state", `${String(s.state)} is not one of ${STATES.join(", ")}`);
  if (typeof s.reason !== "string" || s.reason.length > 4096) throw new StateError(C, "reason", "not a string of at most 4096 characters");
  s.vcpus.forEach((v, k) => {
    if (v === null || typeof v !== "object" || typeof v.online !== "boolean") throw new StateError(C, `vcpus[${k}].online`, "not a boolean");
    if (v.waiting !== 0 && v.waiting !== STOP_WFI && v.waiting !== STOP_WFE) throw new StateError(C, `vcpus[${k}].waiting`, `${String(v.waiting)} is not 0, WFI or WFE`);
  });
  const clock = o.clock instanceof DomainClock ? o.clock : new DomainClock();
  const clockBefore = clock.save();
  clock.restore(s.clock);
  let b: Board;
  try {
    b = restoreParts({ ...o, clock }, s);
  } catch (e) {
    clock.restore(clockBefore); // a refused state changes nothing, the caller's clock included
    throw e;
  }
  return b;
}

function restoreParts(o: BoardOptions, s: BoardState): Board {
  const b = new Board(o);
  const ramBytes = b.ramBytes;
  s.vcpus.forEach((v, k) => {
    const t = b.vcpus[k]!;
    try {
      restoreVcpu(t.cpu, v.cpu, ramBytes);
    } catch (e) {
      if (e instanceof StateError) throw new StateError(C, `vcpus[${k}].${e.field}`, e.message);
      throw e;
    }
    t.online = v.online;
    t.waiting = v.waiting;
  });
  b.gic.restore(s.gic);
  b.uart.restore(s.uart);
  b.rtc.restore(s.rtc);
  b.state = s.state;
  b.reason = s.reason;
  return b;
}
