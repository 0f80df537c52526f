/** Number formatting shared by the CLI commands, after pkt-gen's `norm`. */

/** 14880000 → "14.880 M" (value divided by 1000 until below 1000, three decimals). */
export function norm(x: number, raw = false): string {
  if (raw) return x.toFixed(0);
  const units = ['', 'K', 'M', 'G', 'T'];
  let u = 0;
  while (Math.abs(x) >= 1000 && u < units.length - 1) { x /= 1000; u++; }
  return `${x.toFixed(3)} ${units[u]}`;
}

export function pad(s: string | number, n: number, right = false): string {
  const t = String(s);
  return right ? t.padEnd(n) : t.padStart(n);
}

/** Prints a line to stderr and exits 1: the one-line failure scripts can rely on. */
export function die(msg: string): never {
  process.stderr.write(`vswitch: ${msg}\n`);
  process.exit(1);
}
