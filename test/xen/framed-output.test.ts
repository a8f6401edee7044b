/** framedOutput against console text as seen in CI: a command echoed twice (tty + line editor) and wrapped. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { framedCommand, framedOutput } from "./run-machine.js";

test("framedOutput: output between the computed markers, whatever the echo looks like", () => {
  const line = framedCommand("cat /sys/block/xvda/size /sys/block/xvdb/size", 1002).replace("\n", "");
  assert.equal(line, "echo XO-$((1002+0))-BEGIN; cat /sys/block/xvda/size /sys/block/xvdb/size; echo XO-$((1002+0))-END");
  const wrapped = `/ # ${line}`.replace(/(.{80})/g, "$1\r\n");
  const text = `${line}\r\n${wrapped}\r\nXO-1002-BEGIN\r\n16384\r\n2048\r\nXO-1002-END\r\n/ # `;
  assert.equal(framedOutput(text, 1002), "16384\n2048");
  assert.equal(framedOutput(text.slice(0, text.indexOf("XO-1002-END")), 1002), undefined, "not finished");
  assert.equal(framedOutput("XO-7-BEGIN\nXO-7-END\n", 7), "", "no output");
  assert.equal(framedOutput("XO-7-BEGIN\nx\nXO-7-END\n", 8), undefined, "another command's markers");
});
