/**
 * An HVM guest's network (docs/hvm.md): `vif = [ 'mac=…, bridge=xenbr0' ]` with type=hvm is a virtio-net device on
 * the emulated PCIe bus (src/devices/virtio/virtio-net.ts) joined to the same bridge daemon as netback's vifs
 * (src/net, with its passt uplink). The guest boots from an ESP built with Debian's GRUB tools (as in
 * test/hvm/disk-boot), its kernel's virtio_net driver (a module its initramfs loads) brings up eth0 with the vif's
 * MAC, and the guest fetches a page from an HTTP server on the host's loopback through the bridge's gateway. It
 * runs with xen_platform_pci = 0 (emulated hardware only) and checks that the kernel finds no Xen, and with
 * virtio_rng = 0: no virtio-rng function, and so no EFI_RNG_PROTOCOL seed for the kernel (disk-boot.test.ts has both).
 * Then the hostile driver (test/hvm/programs/virtio_hostile.c, on a second disk) takes the NIC from Linux and
 * drives its queues with transmit frames in the flash, 0xfffffe00 and 2000 bytes long or in a device-writable
 * buffer (returned unsent), receive buffers in the flash, device-readable or too small (returned with 0 bytes when
 * the gateway's ARP reply comes), descriptor loops on both queues and a head past the queue (DEVICE_NEEDS_RESET);
 * after a reset it gets the gateway's ARP reply, and with Linux's driver bound again the guest fetches the page
 * again.
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
import { hostileProgram, programDisk } from "./guest-programs.js";

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
  const { disk: progDisk, fetch } = programDisk(dir, { h: hostileProgram(dir) }, "/dev/vdb");
  const env = { ...process.env, XENO_RUN_DIR: join(dir, "run") };
  const cfg = join(dir, "hvm-net.cfg");
  writeFileSync(cfg, ['name = "hvm-net"', 'type = "hvm"', "memory = 512", `uefi_vars = "${join(dir, "VARS.fd")}"`,
    `disk = [ '${esp},raw,xvda,ro', '${progDisk},raw,xvdb,ro' ]`, "vif = [ 'mac=00:16:3e:00:00:2a, bridge=xenbr0' ]", 'on_poweroff = "destroy"',
    // Only emulated hardware (disk-boot.test.ts boots with the default, 1, and finds Xen), and no virtio-rng.
    "xen_platform_pci = 0", "virtio_rng = 0", ""].join("\n"));
  const d = new Domain([cfg], env);
  try {
    await d.waitFor(new RegExp(GUEST_READY_MARKER), 0, BOOT_MS, "the kernel's shell");
    // xen_platform_pci = 0: no /hypervisor node, so the kernel finds no Xen (no /sys/hypervisor/type).
    await d.run("cat /sys/hypervisor/type 2>&1; dmesg | grep -c 'Xen .* support found'", /No such file or directory\r?\n0\r?\n/);
    await d.run("cat /sys/class/net/eth0/address; readlink /sys/class/net/eth0/device/driver", /00:16:3e:00:00:2a\r?\n.*virtio_net/);
    await d.run("ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 && echo NET-$((1+1))-UP", /NET-2-UP/);
    await d.run(`wget -q -O - http://10.0.2.2:${hostPort}/ && echo WGET-$((2+2))-DONE`, /hello-from-the-host\r?\n(?:.*\n)?WGET-4-DONE/, 120_000);
    // virtio_rng = 0: no 1af4:1044 function, and the EFI stub found no EFI_RNG_PROTOCOL (no random-seed table).
    await d.run("echo RNG-FUNCTIONS $(cat /sys/bus/pci/devices/*/device | grep -c 0x1044)", /RNG-FUNCTIONS 0\r?\n/);
    assert.match(d.out, /efi: [^\n]*MEMRESERVE=/);
    assert.doesNotMatch(d.out, /efi: [^\n]*\bRNG=/);
    // Hostile transmit and receive chains from a guest program; the device answers each, then serves again.
    // The NIC is the function after the two disks: 0000:00:03.0, 1af4:1041.
    await d.run("cat /sys/bus/pci/devices/0000:00:03.0/device; ls /sys/bus/pci/devices/0000:00:03.0/virtio*/net", /0x1041\r?\neth0\r?\n/);
    await d.run(`${fetch("h", "/tmp/h")} && chmod +x /tmp/h && /tmp/h net 0000:00:03.0`,
      /NET tx=4 rxoob=0 rxro=0 rxsmall=0 rxloop=0x40 txloop=0x40 txhead=0x40 after=arp-reply flash=same\r?\n/, 120_000);
    // Linux's driver bound again: eth0 comes back and fetches the page again.
    await d.run("echo 0000:00:03.0 > /sys/bus/pci/drivers/virtio-pci/bind; ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && " +
      "ip route add default via 10.0.2.2 && cat /sys/class/net/eth0/address && echo NET-$((2+1))-UP", /00:16:3e:00:00:2a\r?\nNET-3-UP/);
    await d.run(`wget -q -O - http://10.0.2.2:${hostPort}/ && echo WGET-$((3+3))-DONE`, /hello-from-the-host\r?\n(?:.*\n)?WGET-6-DONE/, 120_000);
    await d.run("echo NOBODY-CARED $(dmesg | grep -c 'nobody cared')", /NOBODY-CARED 0\r?\n/);
    d.child.stdin!.write("poweroff\n");
    assert.equal((await d.ended(120_000)).code, 0, d.tail());
  } finally {
    d.kill();
    host.close();
  }
});
