/**
 * The board's physical memory map, modelled on QEMU's "virt" machine (hw/arm/virt.c) so the same kernel and
 * command line behave alike under both: GICv2 at 0x0800_0000, PL011 at 0x0900_0000, PL031 at 0x0901_0000,
 * RAM from 0x4000_0000.
 */
export const GICD_BASE = 0x08000000;
export const GICC_BASE = 0x08010000;
export const UART_BASE = 0x09000000;
export const RTC_BASE = 0x09010000;
export const RAM_BASE = 0x40000000;

/** GIC interrupt IDs: SPIs are 32 + the device tree's number; PPIs 16..31. */
export const UART_INTID = 33, RTC_INTID = 34;
/** Generic timer PPIs (Arm's recommended assignment; QEMU virt uses the same). */
export const PPI_HYP_TIMER = 26, PPI_VIRT_TIMER = 27, PPI_SEC_PHYS_TIMER = 29, PPI_PHYS_TIMER = 30;
/** Interrupt lines the GIC implements (32 private + 96 SPIs). */
export const GIC_IRQS = 128;

/** Largest guest RAM the interpreter's MMU addresses (RangeError beyond; see src/mmu). */
export const MAX_RAM_MIB = 2047;
/** vCPUs a board can have: the GICv2 model's CPU interfaces (GICv2 supports at most 8 processors, ARM IHI 0048B). */
export const MAX_BOARD_VCPUS = 8;
/**
 * QEMU virt's flash: two banks of 64 MiB from 0 with 256 KiB sectors (virt_flash_create1). Here, not in
 * firmware.ts, so the CLI's main thread can size a firmware domain without loading the board and the CPU.
 */
export const FLASH_BANK_BYTES = 64 * 1024 * 1024, FLASH_BYTES = 2 * FLASH_BANK_BYTES, FLASH_SECTOR = 256 * 1024;
