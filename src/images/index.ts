/**
 * Guest images: Debian's stock arm64 cloud kernel and a busybox initramfs, fetched and built into a cache.
 *
 * Cache directory: `$XENO_IMAGES`, else `~/.cache/xeno/`. Layout:
 *   linux-<release>/            the unpacked linux-image-<release> package (boot/, lib/modules/<release>/)
 *   linux-<release>/Image       the bootable arm64 Image (gunzipped when the package ships a gzip vmlinuz)
 *   linux-<release>/.xeno.json  the package version it was unpacked from
 *   busybox-static-arm64/bin/busybox   Debian's busybox-static:arm64 (same place scripts/fetch-busybox.sh uses)
 *   initrd-<release>.cpio.gz    the initramfs (see initramfs.ts)
 *   manifest.json               what was built from what (kernel package version, initramfs recipe hash, …)
 * Older linux-* / initrd-* entries are removed once a newer kernel is in place.
 *
 * The kernel is `linux-image-cloud-arm64`'s current dependency per apt. apt-cache is asked again only when the
 * apt package lists changed since the last check (it takes seconds), so a second call is fast and quiet.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { parseArm64Image } from "../machine/arm64-image.js";
import { type ResolvedPackage, candidateVersion, downloadDeb, enableArm64, extractDeb, resolveKernelPackage } from "./apt.js";
import { ImageError } from "./errors.js";
import { type InitramfsInput, DEFAULT_GUEST_MODULES, INITRAMFS_BUILDER_VERSION, buildInitramfs, initramfsRecipe } from "./initramfs.js";
import { resolveModules } from "./modules.js";

export { ImageError } from "./errors.js";
export { GUEST_READY_MARKER } from "./initramfs.js";

export const KERNEL_METAPACKAGE = "linux-image-cloud-arm64";
export const BUSYBOX_PACKAGE = "busybox-static";
const MANIFEST_FORMAT = 1;
/** apt's package lists; their directory's mtime changes whenever `apt-get update` replaces a list. */
const APT_LISTS = "/var/lib/apt/lists";

export interface EnsureImagesOptions {
  /** Progress lines ("downloading …", "building initramfs (N files)…"); not called when nothing needs doing. */
  onProgress?: (message: string) => void;
  /** Cache directory; defaults to $XENO_IMAGES or ~/.cache/xeno. */
  cacheDir?: string;
  /** Modules /init loads (dependencies are added); default xen-blkfront and xen-netfront. */
  modules?: readonly string[];
  /** Ask apt even if its package lists did not change, and rebuild the initramfs. */
  force?: boolean;
}

export interface GuestImages {
  /** Path of the uncompressed arm64 Image. */
  kernel: string;
  /** Path of the gzip-compressed newc initramfs. */
  initrd: string;
  /** Kernel release (`uname -r` in the guest), e.g. 6.1.0-56-cloud-arm64. */
  kernelVersion: string;
  /** Debian package version, e.g. 6.1.192-2. */
  kernelPackageVersion: string;
  /** lib/modules/<release> of the unpacked package (all modules, not just the initramfs ones). */
  modulesDir: string;
  /** Modules in the initramfs, paths relative to lib/modules/<release>, in load order. */
  modules: string[];
  cacheDir: string;
}

interface Manifest {
  format: number;
  builder: number;
  kernelPackage: string;
  kernelPackageVersion: string;
  kernelRelease: string;
  /** mtime of the apt lists when the kernel package was last resolved. */
  aptListsMtimeMs: number;
  initrd: string;
  initrdSha256: string;
  recipe: string;
  modules: string[];
  missingModules: string[];
}

export function defaultCacheDir(): string {
  return process.env.XENO_IMAGES || join(homedir(), ".cache", "xeno");
}

const releaseOf = (pkg: string): string => pkg.replace(/^linux-image-/, "");

async function readJson<T>(path: string): Promise<T | null> {
  try { return JSON.parse(await readFile(path, "utf8")) as T; } catch { return null; }
}

/** Write via a temporary file and rename, so readers never see a partial file. */
async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

async function aptListsMtime(): Promise<number> {
  try { return (await stat(APT_LISTS)).mtimeMs; } catch { return -1; }
}

/** Resolve the kernel package, enabling arm64 in apt (root only) when it is unknown. */
async function resolveKernel(progress: (m: string) => void): Promise<ResolvedPackage> {
  const found = await resolveKernelPackage(KERNEL_METAPACKAGE);
  if (found) return found;
  await enableArm64(progress);
  const again = await resolveKernelPackage(KERNEL_METAPACKAGE);
  if (!again) throw new ImageError("EIMAGES_NOT_FOUND", `${KERNEL_METAPACKAGE}:arm64 is not in the configured apt sources`);
  return again;
}

/** Download a package and unpack it into `dest`; on a download failure refresh apt lists once (root) and retry. */
async function fetchAndExtract(pkg: string, version: () => Promise<string>, dest: string, cache: string, progress: (m: string) => void): Promise<void> {
  let deb: string;
  try {
    progress(`downloading ${pkg}:arm64…`);
    deb = await downloadDeb(pkg, await version(), cache);
  } catch (e) {
    // Stale lists name versions the mirror no longer has (security updates replace them).
    if (!(e instanceof ImageError) || (e.code !== "EIMAGES_APT" && e.code !== "EIMAGES_NOT_FOUND")) throw e;
    await enableArm64(progress);
    progress(`downloading ${pkg}:arm64…`);
    deb = await downloadDeb(pkg, await version(), cache);
  }
  try {
    progress(`extracting ${deb.slice(deb.lastIndexOf("/") + 1)}…`);
    await rm(dest, { recursive: true, force: true });
    await extractDeb(deb, dest);
  } finally {
    await rm(dirname(deb), { recursive: true, force: true });
  }
}

/** Make sure linux-<release>/ holds the unpacked package and a bootable Image; returns the Image's path. */
async function ensureKernel(cache: string, pkg: ResolvedPackage, progress: (m: string) => void): Promise<string> {
  const release = releaseOf(pkg.name);
  const dir = join(cache, `linux-${release}`);
  const image = join(dir, "Image");
  const stamp = await readJson<{ package: string; version: string }>(join(dir, ".xeno.json"));
  if (stamp?.version === pkg.version && existsSync(image)) return image;

  const tmp = join(cache, `.linux-${release}.tmp-${process.pid}`);
  await fetchAndExtract(pkg.name, async () => pkg.version, tmp, cache, progress);
  const vmlinuz = join(tmp, "boot", `vmlinuz-${release}`);
  if (!existsSync(vmlinuz)) throw new ImageError("EIMAGES_BAD_PACKAGE", `${pkg.name} ${pkg.version} has no boot/vmlinuz-${release}`);
  const bytes: Buffer = await readFile(vmlinuz);
  // Debian's arm64 vmlinuz is a plain Image in bookworm; some builds ship it gzip-compressed (magic 1f 8b).
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    progress(`decompressing vmlinuz-${release}…`);
    const plain = gunzipSync(bytes);
    parseArm64Image(plain); // throws ImageFormatError if it is not an Image after all
    await writeFile(join(tmp, "Image"), plain);
  } else {
    parseArm64Image(bytes);
    await rename(vmlinuz, join(tmp, "Image")); // no second 27 MB copy
  }
  await writeFile(join(tmp, ".xeno.json"), JSON.stringify({ package: pkg.name, version: pkg.version }) + "\n");
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return image;
}

/** Debian's busybox-static:arm64 at busybox-static-arm64/bin/busybox (shared with scripts/fetch-busybox.sh). */
async function ensureBusybox(cache: string, progress: (m: string) => void): Promise<string> {
  const dest = join(cache, "busybox-static-arm64");
  const bin = join(dest, "bin", "busybox");
  if (existsSync(bin)) return bin;
  const tmp = join(cache, `.busybox.tmp-${process.pid}`);
  const version = async (): Promise<string> => {
    const v = await candidateVersion(BUSYBOX_PACKAGE);
    if (!v) throw new ImageError("EIMAGES_NOT_FOUND", `${BUSYBOX_PACKAGE}:arm64 is not known to apt`);
    return v;
  };
  await fetchAndExtract(BUSYBOX_PACKAGE, version, join(tmp, "x"), cache, progress);
  const extracted = join(tmp, "x", "bin", "busybox");
  if (!existsSync(extracted)) throw new ImageError("EIMAGES_BAD_PACKAGE", `${BUSYBOX_PACKAGE}:arm64 has no bin/busybox`);
  await mkdir(join(tmp, "out", "bin"), { recursive: true });
  await rename(extracted, join(tmp, "out", "bin", "busybox"));
  try { await rename(join(tmp, "out"), dest); } catch (e) {
    if (!existsSync(bin)) throw e; // a concurrent fetch won the race: use its copy
  }
  await rm(tmp, { recursive: true, force: true });
  return bin;
}

/** Leftovers of interrupted runs older than this are removed (younger ones may belong to a concurrent run). */
const LEFTOVER_AGE_MS = 3600_000;

/** Remove linux-* and initrd-* entries for other releases, and old leftovers of interrupted runs. */
async function pruneOld(cache: string, release: string): Promise<void> {
  for (const name of await readdir(cache)) {
    const path = join(cache, name);
    let stale = (name.startsWith("linux-") && name !== `linux-${release}`) ||
      (name.startsWith("initrd-") && name !== `initrd-${release}.cpio.gz`);
    if (!stale && /^\.(linux-|busybox\.tmp-|download-)|\.tmp-\d+$/.test(name)) {
      stale = Date.now() - (await stat(path)).mtimeMs > LEFTOVER_AGE_MS;
    }
    if (stale) await rm(path, { recursive: true, force: true });
  }
}

/** Fetch (or reuse) the kernel, busybox and modules and (re)build the initramfs when any input changed. */
export async function ensureImages(opts: EnsureImagesOptions = {}): Promise<GuestImages> {
  const progress = opts.onProgress ?? ((): void => {});
  const cache = opts.cacheDir ?? defaultCacheDir();
  await mkdir(cache, { recursive: true });
  const manifestPath = join(cache, "manifest.json");
  const old = await readJson<Manifest>(manifestPath);
  const listsMtime = await aptListsMtime();

  // The apt lists unchanged since the last check mean the same answer (pins aside): skip the slow apt-cache call.
  const reuse = !opts.force && old?.format === MANIFEST_FORMAT && old.aptListsMtimeMs === listsMtime && listsMtime >= 0;
  let pkg: ResolvedPackage;
  if (reuse) pkg = { name: old.kernelPackage, version: old.kernelPackageVersion };
  else {
    try { pkg = await resolveKernel(progress); } catch (e) {
      // No apt on this host (images copied from elsewhere): keep using what the cache has.
      if (!(e instanceof ImageError && e.code === "EIMAGES_NO_TOOL" && old?.format === MANIFEST_FORMAT)) throw e;
      pkg = { name: old.kernelPackage, version: old.kernelPackageVersion };
    }
  }
  const release = releaseOf(pkg.name);
  const kernel = await ensureKernel(cache, pkg, progress);
  const busybox = await ensureBusybox(cache, progress);

  const modulesDir = join(cache, `linux-${release}`, "lib", "modules", release);
  const wanted = opts.modules ?? DEFAULT_GUEST_MODULES;
  const { modules, missing } = await resolveModules(modulesDir, wanted);
  const moduleFiles: Record<string, Uint8Array> = {};
  // modules.builtin lets kmod's modprobe succeed quietly for built-in drivers (busybox ignores it).
  for (const f of ["modules.builtin"]) {
    if (existsSync(join(modulesDir, f))) moduleFiles[f] = await readFile(join(modulesDir, f));
  }
  const input: InitramfsInput = {
    kernelRelease: release, busybox: await readFile(busybox), modules, moduleFiles,
    load: wanted.filter((w) => !missing.includes(w.replace(/-/g, "_"))),
  };
  const recipe = initramfsRecipe(input);
  const initrd = join(cache, `initrd-${release}.cpio.gz`);
  let initrdSha256 = old?.initrdSha256 ?? "";
  const upToDate = !opts.force && old?.recipe === recipe && old.builder === INITRAMFS_BUILDER_VERSION &&
    old.kernelPackageVersion === pkg.version && existsSync(initrd);
  if (!upToDate) {
    const built = buildInitramfs(input);
    progress(`building initramfs (${built.fileCount} files)…`);
    await writeAtomic(initrd, built.image);
    initrdSha256 = createHash("sha256").update(built.image).digest("hex");
  }
  const manifest: Manifest = {
    format: MANIFEST_FORMAT, builder: INITRAMFS_BUILDER_VERSION, kernelPackage: pkg.name,
    kernelPackageVersion: pkg.version, kernelRelease: release, aptListsMtimeMs: listsMtime, initrd, initrdSha256,
    recipe, modules: modules.map((m) => m.relPath), missingModules: missing,
  };
  if (JSON.stringify(manifest) !== JSON.stringify(old)) await writeAtomic(manifestPath, JSON.stringify(manifest, null, 2) + "\n");
  if (old?.kernelRelease !== release || !upToDate) await pruneOld(cache, release);
  return {
    kernel, initrd, kernelVersion: release, kernelPackageVersion: pkg.version, modulesDir,
    modules: manifest.modules, cacheDir: cache,
  };
}

const USAGE = `usage: xeno image fetch [--dir DIR] [--force] [--quiet] [--json]
Fetch Debian's arm64 cloud kernel and busybox with apt and build the guest initramfs.
  --dir DIR   cache directory (default $XENO_IMAGES or ~/.cache/xeno)
  --force     ask apt again and rebuild the initramfs
  --quiet     no progress lines
  --json      print the result as JSON
`;

/** `xeno image fetch` entry point: returns the process exit code. */
export async function imageFetchMain(args: readonly string[]): Promise<number> {
  const opts: EnsureImagesOptions = {};
  let quiet = false, json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--dir" && i + 1 < args.length) opts.cacheDir = args[++i]!;
    else if (a === "--force") opts.force = true;
    else if (a === "--quiet" || a === "-q") quiet = true;
    else if (a === "--json") json = true;
    else if (a === "-h" || a === "--help") { process.stdout.write(USAGE); return 0; }
    else { process.stderr.write(`xeno image fetch: unknown argument '${a}'\n${USAGE}`); return 2; }
  }
  if (!quiet) opts.onProgress = (m): void => { process.stderr.write(`xeno: ${m}\n`); };
  try {
    const r = await ensureImages(opts);
    if (json) process.stdout.write(JSON.stringify(r, null, 2) + "\n");
    else {
      const size = async (p: string): Promise<string> => `${((await stat(p)).size / 1048576).toFixed(1)} MiB`;
      process.stdout.write(`kernel  ${r.kernel} (${r.kernelVersion}, package ${r.kernelPackageVersion}, ${await size(r.kernel)})\n` +
        `initrd  ${r.initrd} (${await size(r.initrd)}; modules: ${r.modules.join(" ") || "none"})\n`);
    }
    return 0;
  } catch (e) {
    const code = e instanceof ImageError ? ` [${e.code}]` : "";
    process.stderr.write(`xeno image fetch${code}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
