/** Errors from guest image fetching and building, each with a stable `code` for callers and tests. */

export type ImageErrorCode =
  | "EIMAGES_NEED_ROOT"      // dpkg --add-architecture / apt-get update are needed but we are not root
  | "EIMAGES_NO_TOOL"        // a host tool (apt-get, dpkg-deb, xz, …) is missing
  | "EIMAGES_APT"            // apt-cache / apt-get failed or printed something we cannot parse
  | "EIMAGES_NOT_FOUND"      // the arm64 package is unknown to apt even after an update
  | "EIMAGES_BAD_PACKAGE"    // a downloaded package lacks an expected file
  | "EIMAGES_MODULE"         // a kernel module is missing or malformed
  | "EIMAGES_CPIO";          // an initramfs entry cannot be encoded

export class ImageError extends Error {
  constructor(readonly code: ImageErrorCode, message: string, options?: ErrorOptions & { detail?: string }) {
    super(options?.detail ? `${message}\n${options.detail.trimEnd()}` : message, options);
    this.name = "ImageError";
  }
}
