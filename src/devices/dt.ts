/**
 * Device-tree fragments the devices describe about themselves (Devicetree Specification v0.4, and the Linux
 * bindings in Documentation/devicetree/bindings/). A board's DT writer turns these into FDT nodes; the
 * devices only say what their node must contain.
 *
 * Property values: a string or string list (stringlist, NUL-separated in the blob), a number[] of u32 cells,
 * or `true` for an empty property (e.g. interrupt-controller).
 */
export type DtValue = string | string[] | number[] | true;

export interface DtNode {
  /** Node name with unit address, e.g. "pl011@9000000". */
  name: string;
  props: Record<string, DtValue>;
}

/** Splits a 64-bit address/size (below 2^53) into two u32 cells (for #address-cells = #size-cells = 2). */
export function cells64(v: number): [number, number] {
  return [Math.floor(v / 4294967296) >>> 0, v >>> 0];
}

/** A reg entry for #address-cells = 2, #size-cells = 2. */
export function reg64(base: number, size: number): number[] {
  return [...cells64(base), ...cells64(size)];
}

/** GIC interrupt specifier types (bindings/interrupt-controller/arm,gic.yaml): first cell. */
export const DT_GIC_SPI = 0, DT_GIC_PPI = 1;
/** Third cell flags (include/dt-bindings/interrupt-controller/irq.h). */
export const DT_IRQ_EDGE_RISING = 1, DT_IRQ_LEVEL_HIGH = 4, DT_IRQ_LEVEL_LOW = 8;

/** The interrupts property for an SPI given its GIC interrupt ID (32..1019). */
export function spiInterrupt(intid: number, flags: number = DT_IRQ_LEVEL_HIGH): number[] {
  return [DT_GIC_SPI, intid - 32, flags];
}

/** A fixed-rate clock node (bindings/clock/fixed-clock.yaml), e.g. the PrimeCells' "apb_pclk". */
export function fixedClockNode(name: string, hz: number, phandle: number, outputName: string): DtNode {
  return {
    name,
    props: {
      compatible: "fixed-clock",
      "#clock-cells": [0],
      "clock-frequency": [hz],
      "clock-output-names": outputName,
      phandle: [phandle],
    },
  };
}
