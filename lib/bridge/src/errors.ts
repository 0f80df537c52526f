/** Errors of the bridge core. `code` is stable for programs; the message says what to do. */
export class BridgeError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'BridgeError';
    this.code = code;
  }
}

export function bcheck(cond: boolean, code: string, message: string): asserts cond {
  if (!cond) throw new BridgeError(code, message);
}
