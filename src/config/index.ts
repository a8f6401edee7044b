/**
 * xl.cfg parsing and validation: the public API of src/config.
 *
 *   const { config, warnings } = parseConfigFile("demo.cfg", ["memory=512"]);
 *   for (const w of warnings) console.error(formatWarning(w));
 *   // on failure: catch (e) { console.error(renderConfigError(e)); }   e.code is stable (ConfigErrorCode)
 *   console.log(JSON.stringify(domainConfigToJSON(config), null, 2));   // xeno create -n
 */
export { parseConfigFile, validateConfig, expandPath, SHUTDOWN_ACTIONS, MAX_VCPUS, MAX_MEMORY_MIB, DEFAULT_MEMORY_MIB,
  DEFAULT_CPU_WEIGHT } from "./domain.js";
export type { DomainConfig, ParseOptions, ParseResult, ShutdownAction } from "./domain.js";
export { ConfigError, renderConfigError, formatWarning } from "./errors.js";
export type { ConfigErrorCode, ConfigWarning, SourcePos } from "./errors.js";
export { parseConfigText, readConfigFile, applyOverrides, RawConfig, COMMAND_LINE } from "./parser.js";
export type { ConfigValue, Setting } from "./parser.js";
export { parseDiskSpec, vbdNumber, diskLetters } from "./disk.js";
export type { DiskSpec, DiskFormat, VbdNumber } from "./disk.js";
export { parseVifSpec, parseVifRate, randomXenMac, XEN_OUI, DEFAULT_BRIDGE, DEFAULT_VIF_SCRIPT } from "./vif.js";
export type { VifSpec, VifRate } from "./vif.js";
export { parseCpuList, resolveCpuList } from "./cpus.js";
export type { CpuAffinity, CpuTerm } from "./cpus.js";
export { domainConfigToJSON } from "./json.js";
export type { DomainConfigJSON } from "./json.js";
export { XL_KEYS } from "./xl-keys.js";
