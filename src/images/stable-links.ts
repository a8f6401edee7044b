/**
 * Stable names for the cached guest images, so configs need not know the kernel release:
 *   <cache>/images/vmlinuz     → ../linux-<release>/Image
 *   <cache>/images/initrd.img  → ../initrd-<release>.cpio.gz
 * (relative symlinks, replaced atomically). examples/demo.cfg points at these. ensureImages keeps the
 * versioned layout; these links are refreshed after every `xeno image fetch` and by `xeno create` when it
 * fetches images.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, symlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { defaultCacheDir } from "./index.js";

export interface StableImagePaths {
  kernel: string;
  initrd: string;
}

export function stableImagePaths(cacheDir = defaultCacheDir()): StableImagePaths {
  return { kernel: join(cacheDir, "images", "vmlinuz"), initrd: join(cacheDir, "images", "initrd.img") };
}

async function linkAtomic(target: string, path: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, path);
}

/** Points images/vmlinuz and images/initrd.img at the release recorded in the cache's manifest.json. */
export async function linkStableImages(cacheDir = defaultCacheDir()): Promise<StableImagePaths> {
  const manifest = JSON.parse(await readFile(join(cacheDir, "manifest.json"), "utf8")) as { kernelRelease: string; initrd: string };
  const kernel = join("..", `linux-${manifest.kernelRelease}`, "Image");
  const initrd = join("..", basename(manifest.initrd));
  const paths = stableImagePaths(cacheDir);
  await mkdir(join(cacheDir, "images"), { recursive: true });
  if (!existsSync(join(cacheDir, "images", kernel))) throw new Error(`${join(cacheDir, `linux-${manifest.kernelRelease}`, "Image")} is missing`);
  await linkAtomic(kernel, paths.kernel);
  await linkAtomic(initrd, paths.initrd);
  return paths;
}
