/**
 * XAPI's failures: a code and string parameters, as XenAPI's `ErrorDescription` ([CODE, param…]) in XML-RPC and
 * `{code, message: CODE, data: [param…]}` in JSON-RPC. The codes are XAPI's own (xapi's
 * ocaml/idl/datamodel_errors.ml), so clients such as Xen Orchestra's `xen-api` recognise them.
 */
export type XapiErrorCode =
  | "SESSION_AUTHENTICATION_FAILED" // [user, why]
  | "SESSION_INVALID"               // [session ref]
  | "HANDLE_INVALID"                // [class, ref]
  | "UUID_INVALID"                  // [class, uuid]
  | "VM_BAD_POWER_STATE"            // [vm ref, expected, actual]
  | "RBAC_PERMISSION_DENIED"        // [permission, why]
  | "MESSAGE_PARAMETER_COUNT_MISMATCH" // [method, expected, received]
  | "MESSAGE_METHOD_UNKNOWN"        // [method]
  | "FIELD_TYPE_ERROR"              // [parameter name, why] (xapi gives the name only; the second is Xeno's)
  | "MEMORY_CONSTRAINT_VIOLATION"   // [why]
  | "OPERATION_NOT_ALLOWED"         // [why]
  | "EVENTS_LOST"                   // []
  | "EVENT_FROM_TOKEN_PARSE_FAILURE" // [token]
  | "VM_SHUTDOWN_TIMEOUT"           // [vm ref, seconds]
  | "HOST_NOT_ENOUGH_FREE_MEMORY"   // [why]
  | "HOST_OFFLINE"                  // [host ref]: xenod is not connected to the hypervisor
  | "JSONRPC_PARSE_FAILURE"         // [why] (Xeno: a body that is not JSON-RPC)
  | "XMLRPC_UNMARSHAL_FAILURE"      // [why]
  | "INTERNAL_ERROR";               // [why]

export class XapiError extends Error {
  readonly params: string[];
  constructor(readonly code: XapiErrorCode, ...params: (string | number)[]) {
    super(`${code}(${params.join(", ")})`);
    this.name = "XapiError";
    this.params = params.map(String);
  }

  /** XenAPI's ErrorDescription. */
  get description(): string[] { return [this.code, ...this.params]; }
}
