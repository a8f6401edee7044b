/** The PV console back-end (hvc0): xencons_interface rings ↔ the host's console. */
export { ConsoleBack } from "./console-back.js";
export type { ConsoleBackOptions, ConsoleBackState, ConsoleBackStats } from "./console-back.js";
