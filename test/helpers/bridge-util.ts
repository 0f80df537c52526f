// Test helpers that drive a bridge port's rings directly (below the public API).
import { Bridge, Forwarder } from '#bridge';

export function mac(s: string): number[] {
  return s.split(':').map((x) => parseInt(x, 16));
}

export function frame(dst: string, src: string, payload: number[] = [], len = 60): Uint8Array {
  const f = new Uint8Array(Math.max(len, 14 + payload.length));
  f.set(mac(dst), 0);
  f.set(mac(src), 6);
  f[12] = 0x08; f[13] = 0x00;
  f.set(payload, 14);
  return f;
}

/** Puts frames into port p's TX ring and runs txsync. Returns frames consumed. */
export function send(b: Bridge, fw: Forwarder, p: number, frames: Uint8Array[]): number {
  const tx = b.txRing(p);
  let h = tx.head;
  for (const f of frames) {
    const off = tx.slotBuf(h);
    b.region.u8.set(f, off);
    tx.setLen(h, f.length);
    h = tx.next(h);
  }
  tx.advance(frames.length);
  return fw.txsync(p);
}

/** Takes every frame waiting in port p's RX ring (copies) and releases the slots. */
export function recv(b: Bridge, p: number): Uint8Array[] {
  const rx = b.rxRing(p);
  const out: Uint8Array[] = [];
  const n = rx.space();
  let h = rx.head;
  for (let i = 0; i < n; i++) {
    out.push(rx.frame(h).slice());
    h = rx.next(h);
  }
  rx.advance(n);
  return out;
}

export function invariant(b: Bridge, p: number): { lhs: number; rhs: number } {
  const c = b.counters(p);
  return {
    lhs: c.txCopies,
    rhs: c.txDelivered + c.dropRingFull + c.dropBadBuf + c.dropBadLen + c.dropNoDest + c.dropBusy + c.dropVlan + c.dropLookup,
  };
}

/**
 * Removes port slot p as Switch does: beginRemove, then tryFinishRemove until it succeeds, and
 * forceFinishRemove once `forceAfterMs` passed. Returns how long it took and whether it was forced.
 */
export async function removeWithin(b: Bridge, p: number, forceAfterMs: number): Promise<{ ms: number; forced: boolean }> {
  const t0 = performance.now();
  b.beginRemove(p);
  while (!b.tryFinishRemove(p)) {
    if (performance.now() - t0 >= forceAfterMs) {
      b.forceFinishRemove(p);
      return { ms: performance.now() - t0, forced: true };
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  return { ms: performance.now() - t0, forced: false };
}
