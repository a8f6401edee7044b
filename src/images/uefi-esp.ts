/**
 * An EFI system partition image built on the host with Debian's own tools, for `type = "hvm"` guests: GRUB for
 * arm64-efi (grub-mkimage from the host's grub-common, with the arm64-efi modules of Debian's
 * grub-efi-arm64-bin:arm64, fetched with `apt-get download` as the kernel is), a grub.cfg that boots a kernel
 * and an initramfs from the same FAT file system, all written into a FAT32 image with mtools (mformat, mmd,
 * mcopy; no loop mounts, no root). The firmware finds GRUB at the removable-media path \EFI\BOOT\BOOTAA64.EFI
 * (UEFI 2.10 section 3.5.1.1), so the image needs no boot entry. The image is a bare FAT file system ("superfloppy",
 * no partition table), which UEFI and GRUB both read.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm, stat, truncate, writeFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { candidateVersion, downloadDeb, extractDeb, run } from "./apt.js";
import { ImageError } from "./errors.js";
import type { HostTool } from "./host-packages.js";

export const GRUB_EFI_PACKAGE = "grub-efi-arm64-bin";
/** The host programs buildGrubEsp runs (install with host-packages.ts ensureHostTools). */
export const ESP_TOOLS: readonly HostTool[] = [
  { cmd: "mformat", pkg: "mtools", why: "FAT file systems for EFI system partitions" },
  { cmd: "mcopy", pkg: "mtools", why: "copying files into a FAT image" },
  { cmd: "grub-mkimage", pkg: "grub-common", why: "building GRUB's arm64-efi boot image" },
];
/** GRUB modules built into the image: enough to read the ESP and boot Linux through its EFI stub. */
export const GRUB_MODULES = ["fat", "part_gpt", "part_msdos", "normal", "configfile", "linux", "echo", "search", "search_fs_file", "ls", "test"];
/** What GRUB prints before loading the kernel (tests wait for it). */
export const GRUB_ESP_MARKER = "xeno-esp: GRUB loading the kernel";

/**
 * grub-efi-arm64-bin:arm64 unpacked under `cacheDir` (once per version); returns its arm64-efi module directory.
 */
export async function ensureGrubArm64Efi(cacheDir: string, progress: (m: string) => void = () => {}): Promise<string> {
  const version = await candidateVersion(GRUB_EFI_PACKAGE);
  if (version === null) throw new ImageError("EIMAGES_NOT_FOUND", `${GRUB_EFI_PACKAGE}:arm64 is not known to apt (dpkg --add-architecture arm64 && apt-get update)`);
  const dir = join(cacheDir, `grub-efi-arm64-${version.replace(/[^A-Za-z0-9.+~-]/g, "_")}`);
  const modules = join(dir, "usr", "lib", "grub", "arm64-efi");
  if (existsSync(join(modules, "linux.mod"))) return modules;
  progress(`downloading ${GRUB_EFI_PACKAGE}:arm64 ${version}…`);
  const deb = await downloadDeb(GRUB_EFI_PACKAGE, version, cacheDir);
  const tmp = `${dir}.tmp-${process.pid}`;
  try {
    await rm(tmp, { recursive: true, force: true });
    await extractDeb(deb, tmp);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } finally {
    await rm(join(deb, ".."), { recursive: true, force: true });
    await rm(tmp, { recursive: true, force: true });
  }
  if (!existsSync(join(modules, "linux.mod"))) throw new ImageError("EIMAGES_APT", `${GRUB_EFI_PACKAGE} has no arm64-efi modules in ${modules}`);
  return modules;
}

export interface GrubEspInput {
  /** The image file to write (replaced). */
  out: string;
  /** grub-efi-arm64-bin's module directory (ensureGrubArm64Efi). */
  grubModules: string;
  /** The kernel (an arm64 Image with its EFI stub) and the initramfs, copied as /vmlinuz and /initrd.img. */
  kernel: string;
  initrd: string;
  cmdline: string;
}

/** Writes a FAT32 ESP image holding GRUB (\EFI\BOOT\BOOTAA64.EFI, grub.cfg), the kernel and the initramfs. */
export async function buildGrubEsp(o: GrubEspInput): Promise<void> {
  const work = await mkdtemp(join(o.out + ".work-"));
  try {
    const efi = join(work, "BOOTAA64.EFI"), cfg = join(work, "grub.cfg");
    // The prefix is the directory grub.cfg is in, on the device GRUB was loaded from.
    await run("grub-mkimage", ["-d", o.grubModules, "-O", "arm64-efi", "-o", efi, "-p", "/EFI/BOOT", ...GRUB_MODULES]);
    await writeFile(cfg, `set timeout=0\necho "${GRUB_ESP_MARKER}"\nlinux /vmlinuz ${o.cmdline}\ninitrd /initrd.img\nboot\n`);
    let bytes = 16 << 20;
    for (const f of [efi, o.kernel, o.initrd]) bytes += (await stat(f)).size;
    // FAT32 wants at least 65525 clusters: 33 MiB with 512-byte clusters; round up to whole MiB.
    const size = Math.max(64 << 20, Math.ceil(bytes / (1 << 20)) << 20);
    await rm(o.out, { force: true });
    await writeFile(o.out, new Uint8Array(0));
    await truncate(o.out, size);
    const img = ["-i", o.out];
    await run("mformat", [...img, "-F", "-v", "XENO-ESP", "::"]);
    await run("mmd", [...img, "::/EFI", "::/EFI/BOOT"]);
    await run("mcopy", [...img, efi, "::/EFI/BOOT/BOOTAA64.EFI"]);
    await run("mcopy", [...img, cfg, "::/EFI/BOOT/grub.cfg"]);
    await run("mcopy", [...img, o.kernel, "::/vmlinuz"]);
    await run("mcopy", [...img, o.initrd, "::/initrd.img"]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The files an ESP image holds (mdir -/ -b), for checks. */
export async function espFiles(image: string): Promise<string[]> {
  return (await run("mdir", ["-i", image, "-/", "-b", "::"])).split("\n").map((l) => l.trim()).filter((l) => l !== "");
}

