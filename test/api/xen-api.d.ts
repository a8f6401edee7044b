/** The parts of Xen Orchestra's connector (npm `xen-api`, plain JavaScript) the tests use. */
declare module "xen-api" {
  export interface XapiObject { $ref: string; $type: string; [field: string]: unknown }
  export interface Xapi {
    connect(): Promise<void>;
    disconnect(): Promise<void>;
    readonly objectsFetched: Promise<void>;
    readonly objects: { all: Record<string, XapiObject>; on(event: "add" | "update" | "remove", cb: (objects: Record<string, XapiObject>) => void): void };
    readonly sessionId: string;
    call(method: string, ...args: unknown[]): Promise<unknown>;
    /** Async.METHOD, then waits for its task through event.from. */
    callAsync(method: string, ...args: unknown[]): Promise<unknown>;
    getObjectByRef(ref: string): XapiObject;
    /** Writes a key into pool.other_config and waits until event.from brings it back. */
    barrier(ref?: string): Promise<unknown>;
  }
  export function createClient(opts: { url: string; transport?: "auto" | "json-rpc" | "xml-rpc"; allowUnauthorized?: boolean; auth?: { user: string; password: string }; watchEvents?: boolean | string[]; debounce?: number }): Xapi;
}
