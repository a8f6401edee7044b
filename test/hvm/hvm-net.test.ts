/**
 * An HVM guest's network (docs/hvm.md): `vif = [ 'mac=…, bridge=xenbr0' ]` with type=hvm is a virtio-net device on
 * the emulated PCIe bus (src/devices/virtio/virtio-net.ts) joined to the same bridge daemon as netback's vifs
 * (src/net, with its passt uplink). The guest boots from an ESP built with Debian's GRUB tools (as in
 * test/hvm/disk-boot), its kernel's virtio_net driver (a module its initramfs loads) brings up eth0 with the vif's
 * MAC, and the guest fetches a page from an HTTP server on the host's loopback through the bridge's gateway. It
 * runs with xen_platform_pci = 0 (emulated hardware only) and checks that the kernel finds no Xen.
 * The bridge runs in a private XENO_RUN_DIR. Console polling with deadlines, no fixed sleeps.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureHostTools } from "../../src/images/host-packages.js";
import { buildGrubEsp, ensureGrubArm64Efi, ESP_TOOLS } from "../../src/images/uefi-esp.js";
import { defaultCacheDir, ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Domain } from "../machine/cli-domain.js";

const BOOT_MS = 6 * 60_000;
const dir = mkdtempSync(join(tmpdir(), "xeno-hvm-net-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("type=hvm with a vif: virtio-net on the bridge; the guest's eth0 has the vif's MAC and reaches the host through the gateway", { timeout: BOOT_MS + 180_000 }, async () => {
  const say = (m: string): void => { process.stderr.write(`# ${m}\n`); };
  ensureHostTools(ESP_TOOLS, "test/hvm/hvm-net", say);
  const images = await ensureImages({ onProgress: say });
  const esp = join(dir, "esp.img");
  await buildGrubEsp({ out: esp, grubModules: await ensureGrubArm64Efi(defaultCacheDir(), say), kernel: images.kernel, initrd: images.initrd, cmdline: "console=ttyAMA0" });
  const host = createHttpServer((_q, r) => { r.end("hello-from-the-host\n"); });
  await new Promise<void>((r) => host.listen(0, "127.0.0.1", r));
  const hostPort = (host.address() as AddressInfo).port;
  const env = { ...process.env, XENO_RUN_DIR: join(dir, "run") };
  const cfg = join(dir, "hvm-net.cfg");
  writeFileSync(cfg, ['name = "hvm-net"', 'type = "hvm"', "memory = 512", `uefi_vars = "${join(dir, "VARS.fd")}"`,
    `disk = [ '${esp},raw,xvda,ro' ]`, "vif = [ 'mac=00:16:3e:00:00:2a, bridge=xenbr0' ]", 'on_poweroff = "destroy"',
    // Only emulated hardware (disk-boot.test.ts boots with the default, 1, and finds Xen).
    "xen_platform_pci = 0", ""].join("\n"));
  const d = new Domain([cfg], env);
  try {
    await d.waitFor(new RegExp(GUEST_READY_MARKER), 0, BOOT_MS, "the kernel's shell");
    // xen_platform_pci = 0: no /hypervisor node, so the kernel finds no Xen (no /sys/hypervisor/type).
    await d.run("cat /sys/hypervisor/type 2>&1; dmesg | grep -c 'Xen .* support found'", /No such file or directory\r?\n0\r?\n/);
    await d.run("cat /sys/class/net/eth0/address; readlink /sys/class/net/eth0/device/driver", /00:16:3e:00:00:2a\r?\n.*virtio_net/);
    await d.run("ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 && echo NET-$((1+1))-UP", /NET-2-UP/);
    await d.run(`wget -q -O - http://10.0.2.2:${hostPort}/ && echo WGET-$((2+2))-DONE`, /hello-from-the-host\r?\n(?:.*\n)?WGET-4-DONE/, 120_000);
    d.child.stdin!.write("poweroff\n");
    assert.equal((await d.ended(120_000)).code, 0, d.tail());
  } finally {
    d.kill();
    host.close();
  }
});
