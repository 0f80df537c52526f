/** Errors of the shared-memory-ring package. `code` is stable; the message says what to do. */
export class RingError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'RingError';
    this.code = code;
  }
}

export function check(cond: boolean, code: string, message: string): asserts cond {
  if (!cond) throw new RingError(code, message);
}

export function checkInt(value: unknown, name: string, min: number, max: number): asserts value is number {
  check(
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max,
    'ERR_RING_ARG',
    `${name} must be an integer in [${min}, ${max}], got ${String(value)}`,
  );
}

export function checkPow2(value: number, name: string): void {
  check((value & (value - 1)) === 0, 'ERR_RING_ARG', `${name} must be a power of two, got ${value}`);
}
