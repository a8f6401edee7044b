/**
 * XAPI's role-based access control roles (xapi's ocaml/idl/datamodel_roles.ml), from most to least powerful.
 * Each call has a minimum role (methods.ts); a role includes every permission of the roles below it.
 */
export const ROLES = ["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "read-only"] as const;
export type Role = (typeof ROLES)[number];

export function isRole(s: string): s is Role { return (ROLES as readonly string[]).includes(s); }

/** True when `have` is at least `need`. */
export function allows(have: Role, need: Role): boolean { return ROLES.indexOf(have) <= ROLES.indexOf(need); }
