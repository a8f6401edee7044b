import type { Decoder } from "./decoder.js";

export function register(_d: Decoder): void {
  // encodings are added here
}
