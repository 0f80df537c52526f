/**
 * Frame copy inside one region. For short frames a Float64 word loop beats `copyWithin`, because
 * `copyWithin` pays a fixed call cost (63 vs 34 Mpps at 60 B on the project's 2-core machines,
 * Node 20); for long frames `copyWithin` (memmove) wins (135 vs 58 Gbit/s at 1514 B). The
 * crossover lies between 512 and 640 bytes: copies per CPU-second of 1024 buffers of 2 KiB
 * (median of 15 interleaved rounds, two runs, 2026-12-01):
 *
 * | frame | 256 B | 320 B | 384 B | 448 B | 512 B | 640 B | 1514 B |
 * | --- | --- | --- | --- | --- | --- | --- | --- |
 * | word loop, M/s | 22.7–32.5 | 21.6–22.2 | 16.4–16.9 | 21.6–22.0 | 19.3–19.5 | 9.4–15.9 | 7.0 |
 * | copyWithin, M/s | 16.0–20.3 | 7.8–16.7 | 15.5–16.7 | 19.1–19.9 | 18.1–18.8 | 9.8–16.5 | 10.5 |
 *
 * Float64 loads and stores keep every bit pattern (NaN payloads included) on x86-64, checked in
 * all V8 tiers. Exactly `len` bytes are written: nothing past the frame leaks from the source
 * buffer.
 *
 * Both offsets must be multiples of 8 (buffers are 64-aligned).
 */
export const COPY_LOOP_MAX = 512;

export function copyFrame(u8: Uint8Array, f64: Float64Array, dst: number, src: number, len: number): void {
  if (len > COPY_LOOP_MAX) {
    u8.copyWithin(dst, src, src + len);
    return;
  }
  const words = len >>> 3;
  const d = dst >>> 3;
  const s = src >>> 3;
  for (let k = 0; k < words; k++) f64[d + k] = f64[s + k];
  let k = words << 3;
  if ((len & 4) !== 0) {
    u8[dst + k] = u8[src + k];
    u8[dst + k + 1] = u8[src + k + 1];
    u8[dst + k + 2] = u8[src + k + 2];
    u8[dst + k + 3] = u8[src + k + 3];
    k += 4;
  }
  for (; k < len; k++) u8[dst + k] = u8[src + k];
}
