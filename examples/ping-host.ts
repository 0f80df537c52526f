/**
 * One emulated host of the ping-hosts example, run as a Worker: a MAC address and an IPv4
 * address on a port of bridge vale0. Like a minimal IP stack it
 *   - answers ARP requests for its address (and learns the asker's MAC),
 *   - answers ICMP echo requests sent to its address,
 *   - pings the hosts the main thread names: ARP to find the MAC, then ICMP echo requests,
 *     timing each reply,
 * and it keeps answering the others while it pings.
 *
 * The host runs one blocking loop: port.wait() sleeps until frames arrive, port.receive() hands
 * them over. Blocking is fine in a Worker, but it stops the Worker's event loop, so commands
 * from the main thread are read synchronously between waits with receiveMessageOnPort().
 *
 * Messages: main -> host are ToHost, host -> main are FromHost (both below).
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { openPort, type Port } from 'vswitch';
import { parseMac } from 'vswitch/frame';
import {
  ARP_REPLY, ARP_REQUEST, BROADCAST, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST,
  buildArp, buildIcmpEcho, parsePacket, sameBytes,
} from './packets.js';

export interface HostConfig {
  /** The port is vale0:<name>. */
  name: string;
  mac: string;
  ip: string;
}

export type ToHost =
  | { type: 'ping'; targets: string[]; count: number; timeoutMs: number }
  | { type: 'stop' };

export interface PingResult {
  from: string;
  to: string;
  sent: number;
  received: number;
  rttMs: number[];
  error?: string;
}

export type FromHost =
  | { type: 'ready' }
  | { type: 'result'; result: PingResult }
  | { type: 'done' }
  | { type: 'stopped'; answeredArp: number; answeredEcho: number };

const ECHO_DATA_LEN = 56; // what ping(8) sends: 8 bytes of timestamp, then a pattern

/** Answers ARP and ICMP on a port, and pings. One per Worker. */
class Host {
  readonly mac: Uint8Array;
  /** ICMP identifier of our echo requests (ping uses its process id). */
  readonly icmpId: number;
  /** IPv4 address -> MAC, filled from ARP requests and replies. */
  readonly arpCache = new Map<string, Uint8Array>();
  answeredArp = 0;
  answeredEcho = 0;
  /** The echo request waiting for its reply. */
  #waiting: { ip: string; seq: number; rttMs?: number } | null = null;

  constructor(
    readonly port: Port,
    readonly ip: string,
    mac: string,
  ) {
    this.mac = parseMac(mac);
    this.icmpId = 0x4000 + Number(ip.split('.')[3]);
  }

  /** Handles one received frame: answer, learn, or note an awaited echo reply. */
  handle(frame: Uint8Array): void {
    const p = parsePacket(frame);
    if (!p) return; // not ARP or ICMP echo, or a bad checksum
    if (!sameBytes(p.dstMac, this.mac) && !sameBytes(p.dstMac, BROADCAST)) return; // not for our NIC

    if (p.kind === 'arp') {
      if (p.targetIp !== this.ip) return;
      this.arpCache.set(p.senderIp, p.senderMac); // RFC 826: learn the sender of a request or a reply
      if (p.op === ARP_REQUEST) {
        this.port.send(buildArp({ op: ARP_REPLY, senderMac: this.mac, senderIp: this.ip, targetMac: p.senderMac, targetIp: p.senderIp }));
        this.answeredArp++;
      }
      return;
    }

    if (p.dstIp !== this.ip) return;
    if (p.type === ICMP_ECHO_REQUEST) {
      // The reply goes back where the request came from, with the same id, seq and data.
      this.port.send(buildIcmpEcho({
        type: ICMP_ECHO_REPLY, srcMac: this.mac, dstMac: p.srcMac, srcIp: this.ip, dstIp: p.srcIp,
        id: p.id, seq: p.seq, data: p.data,
      }));
      this.answeredEcho++;
    } else if (p.id === this.icmpId && this.#waiting && p.srcIp === this.#waiting.ip && p.seq === this.#waiting.seq) {
      const sentAt = new DataView(p.data.buffer, p.data.byteOffset).getFloat64(0);
      this.#waiting.rttMs = performance.now() - sentAt;
    }
  }

  /** Receives and handles frames until `done()` or until `timeoutMs` passes. Returns done(). */
  serveUntil(done: () => boolean, timeoutMs: number): boolean {
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      if (this.port.closed) throw new Error(`port ${this.port.name} was closed`);
      if (!this.port.wait(left)) continue; // blocks this Worker until frames arrive
      const batch = this.port.receive(); //   zero-copy views into the bridge memory...
      for (let i = 0; i < batch.count; i++) this.handle(batch.frame(i));
      this.port.release(); //                 ...given back to the switch here
    }
    return true;
  }

  /** The MAC of `ip`: from the ARP cache, or by broadcasting ARP requests (3 tries). */
  resolve(ip: string, timeoutMs: number): Uint8Array | undefined {
    for (let attempt = 0; attempt < 3 && !this.arpCache.has(ip); attempt++) {
      this.port.send(buildArp({ op: ARP_REQUEST, senderMac: this.mac, senderIp: this.ip, targetMac: new Uint8Array(6), targetIp: ip }));
      this.serveUntil(() => this.arpCache.has(ip), timeoutMs);
    }
    return this.arpCache.get(ip);
  }

  /** Pings `ip` `count` times, one echo request at a time, like `ping -c count -W timeout`. */
  ping(ip: string, count: number, timeoutMs: number): PingResult {
    const result: PingResult = { from: this.ip, to: ip, sent: 0, received: 0, rttMs: [] };
    const mac = this.resolve(ip, timeoutMs);
    if (!mac) return { ...result, error: `no ARP reply from ${ip}` };
    for (let seq = 1; seq <= count; seq++) {
      const data = new Uint8Array(ECHO_DATA_LEN);
      for (let i = 8; i < data.length; i++) data[i] = i;
      new DataView(data.buffer).setFloat64(0, performance.now()); // the reply brings it back
      const waiting = { ip, seq, rttMs: undefined as number | undefined };
      this.#waiting = waiting;
      this.port.send(buildIcmpEcho({
        type: ICMP_ECHO_REQUEST, srcMac: this.mac, dstMac: mac, srcIp: this.ip, dstIp: ip, id: this.icmpId, seq, data,
      }));
      result.sent++;
      if (this.serveUntil(() => waiting.rttMs !== undefined, timeoutMs)) {
        result.received++;
        result.rttMs.push(waiting.rttMs!);
      }
    }
    this.#waiting = null;
    return result;
  }

  /** Serves until the main thread sends a command (checked every 20 ms). */
  nextCommand(): ToHost {
    for (;;) {
      const m = receiveMessageOnPort(parentPort!);
      if (m) return m.message as ToHost;
      this.serveUntil(() => false, 20);
    }
  }
}

const cfg = workerData as HostConfig;
const tell = (m: FromHost) => parentPort!.postMessage(m);

const port = await openPort(`vale0:${cfg.name}`); // finds the main thread's Switch by name
const host = new Host(port, cfg.ip, cfg.mac);
tell({ type: 'ready' });
for (;;) {
  const cmd = host.nextCommand();
  if (cmd.type === 'stop') break;
  for (const target of cmd.targets) tell({ type: 'result', result: host.ping(target, cmd.count, cmd.timeoutMs) });
  tell({ type: 'done' });
}
await port.close();
tell({ type: 'stopped', answeredArp: host.answeredArp, answeredEcho: host.answeredEcho });
