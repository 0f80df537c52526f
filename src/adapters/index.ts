/**
 * `vswitch/adapters`: outside software as ports of a bridge (docs/ARCHITECTURE.md §7).
 *
 * ```ts
 * import { Switch } from 'vswitch';
 * import { attachQemuStream, attachQemuDgram, attachVxlan, capture } from 'vswitch/adapters';
 * const sw = new Switch();
 * const vm1 = await attachQemuStream(sw, 'vale0:vm1', 'unix:/run/vswitch/vm1.sock');
 * const vm2 = await attachQemuDgram(sw, 'vale0:vm2', { local: '127.0.0.1:5601', remote: '127.0.0.1:5602' });
 * const up = await attachVxlan(sw, 'vale0:up', { local: '10.99.0.1:4789', remotes: ['10.99.0.2:4789'], vni: 42 });
 * const cap = await capture(sw, 'vale0:vm1', 'vm1.pcap', { count: 1000, durationMs: 10_000 });
 * console.log(vm1.stats(), (await cap.done).frames);
 * await Promise.all([vm1.close(), vm2.close(), up.close()]);
 * ```
 *
 * attach* functions run the adapter on the event loop of the calling thread; attachInWorker runs
 * it in a Worker of its own (the fast way: two adapters use two cores). Every adapter validates every length and header it reads from outside, and counts what it
 * drops by reason (AdapterStats.drops).
 */
export {
  DROP_REASONS, MIN_FRAME, adapterFor, listAdapters, parseHostPort, formatHostPort,
  type Adapter, type AdapterKind, type SwitchRef, type AdapterStats, type DropReason, type DropCounters, type FrameTap, type TapDirection, type HostPort,
} from './common.js';
export { StreamDecoder, encodeStreamFrames, STREAM_MAX_SKIP, type StreamDecoderOptions } from './stream-framing.js';
export { attachQemuStream, parseStreamSpec, QemuStreamAdapter, type QemuStreamOptions, type StreamSpec, type ParsedStreamSpec } from './qemu-stream.js';
export { attachQemuDgram, QemuDgramAdapter, type QemuDgramOptions } from './qemu-dgram.js';
export {
  attachVxlan, VxlanAdapter, vxlanHeader, vxlanEncap, VXLAN_PORT, VXLAN_HEADER_LEN, VXLAN_FLAG_I, VXLAN_OVERHEAD_V4, type VxlanOptions,
} from './vxlan.js';
export {
  capture, replayPcap, type Capture, type CaptureMode, type CaptureOptions, type CaptureResult, type ReplayOptions, type ReplayResult,
} from './capture.js';
export { StreamPeer, connectStreamPeer } from './stream-peer.js';
export { attachTap, type TapOptions } from './tap.js';
export { attachInWorker, WorkerAdapter, type WorkerAdapterSpec } from './threaded.js';
