/**
 * The Workers of the two-workers example. Each opens its port by name and plays one role:
 *
 * - left:  sends `count` frames to right's MAC, numbered 0..count-1, at most `window` unanswered
 *          at a time (so no ring overflows), and checks that the echoes come back in order;
 * - right: echoes every frame back with the MACs swapped, zero-copy: straight from its RX ring
 *          into its TX ring, both in the bridge's shared memory.
 *
 * Both block in port.wait() between batches, which is fine in a Worker.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openPort, type Port } from 'vswitch';
import { parseMac } from 'vswitch/frame';

export interface PeerJob {
  role: 'left' | 'right';
  count: number;
  window: number;
  leftMac: string;
  rightMac: string;
}

export interface PeerResult {
  role: 'left' | 'right';
  sent: number;
  received: number;
  /** left: echoes that arrived out of order or with a wrong sequence number. */
  outOfOrder: number;
  line: string;
}

/** A local experimental ethertype (IEEE 802): nobody else will interpret these frames. */
const ETHERTYPE_EXPERIMENTAL = 0x88b5;
const SEQ_OFFSET = 14; // the sequence number: u32 right after the Ethernet header
const IDLE_MS = 2000; //  give up when nothing arrives for this long

function left(port: Port, job: PeerJob): PeerResult {
  const frame = new Uint8Array(60);
  frame.set(parseMac(job.rightMac), 0);
  frame.set(parseMac(job.leftMac), 6);
  const view = new DataView(frame.buffer);
  view.setUint16(12, ETHERTYPE_EXPERIMENTAL);

  let sent = 0;
  let received = 0;
  let outOfOrder = 0;
  while (received < job.count) {
    // Keep up to `window` frames in flight: sendBatch copies them into the TX ring and this
    // thread forwards them into right's RX ring right away.
    const batch: Uint8Array[] = [];
    while (sent + batch.length < job.count && sent + batch.length - received < job.window) {
      view.setUint32(SEQ_OFFSET, sent + batch.length);
      batch.push(frame.slice());
    }
    if (batch.length > 0) sent += port.sendBatch(batch);

    if (!port.wait(IDLE_MS)) break; // nothing came back: report what we have
    const rx = port.receive(); // views into the bridge memory, valid until release()
    const mem = new DataView(rx.buffer.buffer, rx.buffer.byteOffset, rx.buffer.byteLength);
    for (let i = 0; i < rx.count; i++) {
      const seq = mem.getUint32(rx.offset(i) + SEQ_OFFSET);
      if (seq !== received) outOfOrder++;
      received++;
    }
    port.release();
  }
  const inOrder = received === job.count && outOfOrder === 0;
  return {
    role: 'left', sent, received, outOfOrder,
    line: `left: sent ${sent}, got ${received} echoes back${inOrder ? ' in order' : `, ${outOfOrder} out of order`}`,
  };
}

function right(port: Port, job: PeerJob): PeerResult {
  let echoed = 0;
  while (echoed < job.count && port.wait(IDLE_MS)) {
    const rx = port.receive();
    let i = 0;
    while (i < rx.count) {
      const tx = port.txReserve(rx.count - i);
      const mem = tx.buffer; // the same bridge memory as rx.buffer
      for (let k = 0; k < tx.count; k++, i++) {
        const from = rx.offset(i);
        const to = tx.offset(k);
        const len = rx.length(i);
        mem.copyWithin(to, from, from + len); //  the frame, RX buffer -> TX buffer
        mem.copyWithin(to, from + 6, from + 12); // destination MAC := its source MAC
        mem.copyWithin(to + 6, from, from + 6); //  source MAC := its destination MAC
        tx.setLength(k, len);
      }
      echoed += port.txCommit(tx.count); // forwards them into left's RX ring
    }
    port.release();
  }
  return { role: 'right', sent: echoed, received: echoed, outOfOrder: 0, line: `right: echoed ${echoed} frames` };
}

const job = workerData as PeerJob;
const port = await openPort(`vale0:${job.role}`); // finds the main thread's Switch by name
const result = job.role === 'left' ? left(port, job) : right(port, job);
await port.close();
parentPort!.postMessage(result);
