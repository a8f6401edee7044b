/**
 * Random bytes for the guest (AT_RANDOM, getrandom) from the host's /dev/urandom: node:crypto would cost
 * ~10 ms of each `xeno run-user` start to load (it brings ~15 internal modules), for 16 bytes. Falls back to
 * node:crypto where /dev/urandom cannot be opened.
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";

let fd = -1;

/** Fills `b` with random bytes. */
export function fillRandom(b: Uint8Array): void {
  if (fd < 0) {
    try { fd = fs.openSync("/dev/urandom", "r"); }
    catch { (createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto")).randomFillSync(b); return; }
  }
  for (let off = 0; off < b.length;) off += fs.readSync(fd, b, off, b.length - off, null);
}
