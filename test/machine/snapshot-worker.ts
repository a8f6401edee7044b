/**
 * Worker for snapshot.test.ts: builds a Board from a saved BoardState over the same shared domain memory (the
 * RAM is not copied), sends back its state as restored (for the save → restore → save check), then runs it,
 * taking console input and sending console output as messages.
 */
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { restoreBoard, saveBoard, type BoardState } from "../../src/machine/board-state.js";

interface Data { state: BoardState; memory: WebAssembly.Memory; memMiB: number; vcpus: number }
const d = workerData as Data;
const port = parentPort!;
const board = restoreBoard({ memMiB: d.memMiB, vcpus: d.vcpus, memory: d.memory,
  consoleOut: (b) => port.postMessage({ type: "out", bytes: b.slice() }) }, d.state);
port.postMessage({ type: "restored", state: saveBoard(board), threadId: (await import("node:worker_threads")).threadId });
const nap = new Int32Array(new SharedArrayBuffer(4));
for (;;) {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const msg = m.message as { type: string; bytes?: Uint8Array };
    if (msg.type === "input") board.input(msg.bytes!);
    if (msg.type === "stop") process.exit(0);
  }
  const w = board.runSlice();
  if (w < 0) { port.postMessage({ type: "stopped", state: board.state, reason: board.reason }); break; }
  if (w > 0) Atomics.wait(nap, 0, 0, Math.min(w, 5)); // idle guest: short naps so input is picked up soon
}
