/**
 * PSCI over HVC (Arm DEN 0022 "Power State Coordination Interface", v1.0): the firmware interface Linux uses
 * to start and stop CPUs and to power off or reset the machine. Function IDs in w0, arguments in x1..x3,
 * result in x0 (SMC Calling Convention, DEN 0028).
 */
export const PSCI_VERSION = 0x84000000, PSCI_CPU_SUSPEND = 0xc4000001, PSCI_CPU_OFF = 0x84000002,
  PSCI_CPU_ON = 0xc4000003, PSCI_AFFINITY_INFO = 0xc4000004, PSCI_MIGRATE_INFO_TYPE = 0x84000006,
  PSCI_SYSTEM_OFF = 0x84000008, PSCI_SYSTEM_RESET = 0x84000009, PSCI_FEATURES = 0x8400000a,
  SMCCC_VERSION = 0x80000000;
/** 32-bit calling-convention aliases Linux may use. */
export const PSCI_CPU_ON_32 = 0x84000003, PSCI_AFFINITY_INFO_32 = 0x84000004, PSCI_CPU_SUSPEND_32 = 0x84000001;

export const PSCI_SUCCESS = 0, PSCI_NOT_SUPPORTED = -1, PSCI_INVALID_PARAMS = -2, PSCI_DENIED = -3,
  PSCI_ALREADY_ON = -4, PSCI_ON_PENDING = -5, PSCI_INTERNAL_FAILURE = -6;

/** PSCI 1.0. */
export const PSCI_VERSION_1_0 = 0x00010000;
/** MIGRATE_INFO_TYPE: 2 = Trusted OS not present / migration not required. */
export const MIGRATE_NOT_REQUIRED = 2;

export const IMPLEMENTED = new Set([
  PSCI_VERSION, PSCI_CPU_SUSPEND, PSCI_CPU_SUSPEND_32, PSCI_CPU_OFF, PSCI_CPU_ON, PSCI_CPU_ON_32,
  PSCI_AFFINITY_INFO, PSCI_AFFINITY_INFO_32, PSCI_MIGRATE_INFO_TYPE, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET,
  PSCI_FEATURES,
]);
