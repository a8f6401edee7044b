/**
 * `xeno image fetch …`: ensureImages (src/images), then the stable names images/vmlinuz and images/initrd.img.
 * `xeno image debian …`: an ext4 arm64 Debian root disk (src/images/debian.ts).
 */
import { imageDebianMain } from "../images/debian.js";
import { defaultCacheDir, imageFetchMain } from "../images/index.js";
import { linkStableImages } from "../images/stable-links.js";

export async function imageMain(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "debian") return imageDebianMain(rest);
  if (sub !== "fetch") {
    process.stderr.write(`usage: xeno image fetch [--dir DIR] [--force] [--quiet] [--json]\n` +
      `       xeno image debian [--uefi] [--suite SUITE] [--size SIZE] [--init sysvinit|systemd] [--force] … (--help)\n`);
    return sub === undefined || sub === "-h" || sub === "--help" ? 0 : 2;
  }
  const code = await imageFetchMain(rest);
  if (code !== 0 || rest.includes("-h") || rest.includes("--help")) return code;
  const d = rest.indexOf("--dir");
  const dir = d >= 0 && d + 1 < rest.length ? rest[d + 1]! : defaultCacheDir();
  try {
    const p = await linkStableImages(dir);
    if (!rest.includes("--quiet") && !rest.includes("-q") && !rest.includes("--json")) {
      process.stdout.write(`links   ${p.kernel}, ${p.initrd}\n`);
    }
  } catch (e) {
    process.stderr.write(`xeno image fetch: cannot link the stable image names: ${(e as Error).message}\n`);
    return 1;
  }
  return 0;
}
