/**
 * Host package tooling for fetching Debian arm64 packages without installing them: apt-cache to resolve names and
 * versions, `apt-get download` to fetch a .deb, `dpkg-deb -x` to unpack it. Needs a Debian/Ubuntu host; adding
 * the arm64 architecture and refreshing package lists need root and happen only when a package is not found.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { ImageError } from "./errors.js";

const execFileP = promisify(execFile);

/** Run a host tool with C locale output; ENOENT becomes EIMAGES_NO_TOOL, a failure EIMAGES_APT with its output. */
export async function run(tool: string, args: readonly string[], opts: { cwd?: string } = {}): Promise<string> {
  try {
    const { stdout } = await execFileP(tool, args, {
      cwd: opts.cwd, maxBuffer: 1 << 26, env: { ...process.env, LC_ALL: "C", LANG: "C", DEBIAN_FRONTEND: "noninteractive" },
    });
    return stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (err.code === "ENOENT") {
      throw new ImageError("EIMAGES_NO_TOOL", `'${tool}' is not available: fetching guest images needs a Debian/Ubuntu host with apt and dpkg`, { cause: e });
    }
    throw new ImageError("EIMAGES_APT", `${tool} ${args.join(" ")} failed`, { cause: e, detail: err.stderr || err.stdout });
  }
}

export interface ResolvedPackage {
  /** Real package name, e.g. linux-image-6.1.0-56-cloud-arm64. */
  name: string;
  /** Debian version, e.g. 6.1.192-2. */
  version: string;
}

/** Candidate version of an arm64 package, or null when apt does not know it. */
export async function candidateVersion(pkg: string): Promise<string | null> {
  let out: string;
  try { out = await run("apt-cache", ["policy", `${pkg}:arm64`]); } catch (e) {
    if (e instanceof ImageError && e.code === "EIMAGES_APT") return null;
    throw e;
  }
  const m = /^\s*Candidate:\s*(\S+)/m.exec(out);
  return m && m[1] !== "(none)" ? m[1]! : null;
}

/**
 * The real kernel package behind the `linux-image-cloud-arm64` metapackage: its candidate's Depends names
 * linux-image-<release> (= version). Null when apt does not know the metapackage for arm64. One apt-cache call
 * (they take seconds on a loaded machine).
 */
export async function resolveKernelPackage(meta = "linux-image-cloud-arm64"): Promise<ResolvedPackage | null> {
  let show: string;
  try { show = await run("apt-cache", ["show", "--no-all-versions", `${meta}:arm64`]); } catch (e) {
    if (e instanceof ImageError && e.code === "EIMAGES_APT") return null; // "E: No packages found"
    throw e;
  }
  if (!/^Package:/m.test(show)) return null;
  const dep = /^Depends:.*?\b(linux-image-[0-9][^\s,:(]*)(?::arm64)?(?:\s*\(\s*=\s*([^\s)]+)\s*\))?/m.exec(show);
  if (!dep) throw new ImageError("EIMAGES_APT", `cannot find the kernel package in ${meta}'s Depends`, { detail: show });
  const name = dep[1]!;
  const version = dep[2] ?? await candidateVersion(name);
  if (!version) throw new ImageError("EIMAGES_NOT_FOUND", `${meta} depends on ${name}, which apt cannot find for arm64`);
  return { name, version };
}

const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;

/**
 * Make arm64 packages visible to apt: `dpkg --add-architecture arm64` when missing, then `apt-get update`.
 * Both need root; otherwise throws EIMAGES_NEED_ROOT naming the commands to run.
 */
export async function enableArm64(progress: (msg: string) => void): Promise<void> {
  const native = (await run("dpkg", ["--print-architecture"])).trim();
  const foreign = (await run("dpkg", ["--print-foreign-architectures"])).split(/\s+/);
  const needArch = native !== "arm64" && !foreign.includes("arm64");
  if (!isRoot()) {
    throw new ImageError("EIMAGES_NEED_ROOT",
      "arm64 packages are not known to apt; as root run:\n  " +
      (needArch ? "dpkg --add-architecture arm64 && " : "") + "apt-get update\nthen retry");
  }
  if (needArch) {
    progress("adding the arm64 architecture to dpkg…");
    await run("dpkg", ["--add-architecture", "arm64"]);
  }
  progress("updating apt package lists (apt-get update)…");
  await run("apt-get", ["update", "-q"]);
}

/** `apt-get download pkg:arm64=version` into a fresh temporary directory under `tmpParent`; returns the .deb path. */
export async function downloadDeb(pkg: string, version: string, tmpParent: string): Promise<string> {
  const dir = await mkdtemp(join(tmpParent, ".download-"));
  try {
    await run("apt-get", ["download", "-q", `${pkg}:arm64=${version}`], { cwd: dir });
    const debs = (await readdir(dir)).filter((f) => f.endsWith(".deb"));
    if (debs.length !== 1) throw new ImageError("EIMAGES_APT", `apt-get download of ${pkg} produced ${debs.length} .deb files`);
    return join(dir, debs[0]!);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Unpack a .deb's data into `dest` (created with its parents: dpkg-deb only creates the last component). */
export async function extractDeb(deb: string, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  await run("dpkg-deb", ["-x", deb, dest]);
}

export const canFixApt = isRoot;
