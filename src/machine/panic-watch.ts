/**
 * Recognises a Linux guest's kernel panic on its console. Linux on Xen/Arm makes no crash hypercall (the x86
 * panic notifier that calls SCHEDOP_shutdown(SHUTDOWN_crash) has no Arm counterpart, and Debian's arm64
 * kernel has no pvpanic), and panic() ends in a loop with interrupts enabled that looks like an idle guest.
 * Its last words are always `---[ end Kernel panic - not syncing: <why> ]---` (kernel/panic.c), printed after
 * the panic notifiers: seeing that line, the board ends the domain as "crashed" so on_crash applies.
 *
 * Trust: anything able to write that exact line to the guest's console can end its own domain this way —
 * no more than root in the guest can do anyway (sysrq c); it never affects another domain.
 */
const MARK = "---[ end Kernel panic - not syncing: ";
const MAX_LINE = 1024;

export class PanicWatch {
  private line = "";
  constructor(private readonly onPanic: (why: string) => void) {}

  feed(b: Uint8Array): void {
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      if (c === 0x0a || c === 0x0d) {
        if (this.line.length >= MARK.length) this.check();
        this.line = "";
      } else if (this.line.length < MAX_LINE) {
        this.line += String.fromCharCode(c);
      }
    }
  }

  private check(): void {
    const k = this.line.indexOf(MARK);
    if (k < 0) return;
    const rest = this.line.slice(k + MARK.length);
    const end = rest.lastIndexOf(" ]---");
    this.onPanic(end >= 0 ? rest.slice(0, end) : rest);
  }
}
