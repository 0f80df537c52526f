/**
 * The copy-only bound: the same copyFrame of the same frames between two places of one region,
 * in batches of 1024, with no rings and no lookup. Run in a Worker beside the scenario it is the
 * reference for, so both see the same machine load. Progress goes to `live` (frames, bytes).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Region, copyFrame } from '#rings';

const { frameLen, bufSize, slots, stop, live } = workerData as {
  frameLen: number; bufSize: number; slots: number; stop: SharedArrayBuffer; live: SharedArrayBuffer;
};
const region = Region.create(Math.ceil((2 * slots * bufSize + 8192) / 4096) * 4096);
const src = region.alloc(slots * bufSize);
const dst = region.alloc(slots * bufSize);
for (let i = 0; i < slots; i++) region.u8.fill(i & 0xff, src + i * bufSize, src + i * bufSize + frameLen);
const stopW = new Int32Array(stop);
const out = new Float64Array(live);
const u8 = region.u8;
const f64 = region.f64;
const mask = slots - 1;
parentPort!.postMessage('ready');
let frames = 0;
let j = 0;
while (Atomics.load(stopW, 0) === 0) {
  for (let k = 0; k < 1024; k++) {
    copyFrame(u8, f64, dst + j * bufSize, src + j * bufSize, frameLen);
    j = (j + 1) & mask;
  }
  frames += 1024;
  out[0] = frames;
  out[1] = frames * frameLen;
}
