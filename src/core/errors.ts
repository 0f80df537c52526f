/**
 * Typed errors of the public API. Every error has a stable `code` and a message that says what
 * to do. Errors from the bridge core (BridgeError) and the rings (RingError) keep their codes.
 */
export class VswitchError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'VswitchError';
    this.code = code;
  }
}

export const ERR = {
  NO_SWITCH: 'ERR_NO_SWITCH',
  BAD_NAME: 'ERR_BAD_NAME',
  PORT_BUSY: 'ERR_PORT_BUSY',
  NO_PORT: 'ERR_NO_PORT',
  NO_BRIDGE: 'ERR_NO_BRIDGE',
  TOO_MANY_BRIDGES: 'ERR_TOO_MANY_BRIDGES',
  BRIDGE_EXISTS: 'ERR_BRIDGE_EXISTS',
  PORT_EXISTS: 'ERR_PORT_EXISTS',
  CLOSED: 'ERR_PORT_CLOSED',
  BAD_ARG: 'ERR_BAD_ARG',
  SWITCH_EXISTS: 'ERR_SWITCH_EXISTS',
} as const;

/** Rebuilds an error that crossed threads as plain data. */
export function errorFromData(d: { code?: string; message?: string }): VswitchError {
  return new VswitchError(d.code ?? 'ERR_UNKNOWN', d.message ?? 'unknown error');
}

export function errorToData(e: unknown): { code: string; message: string } {
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) {
    return { code: String((e as { code: unknown }).code), message: String((e as { message: unknown }).message) };
  }
  return { code: 'ERR_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}
