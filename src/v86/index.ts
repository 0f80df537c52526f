/**
 * v86 guests on the switch (the `vswitch/v86` entry point). v86 (npm `v86`) is an optional peer
 * dependency: install it next to vswitch to use startV86Guest.
 *
 * - attachV86(emulator, port): a v86 emulator's NIC as a port, in the emulator's thread.
 * - startV86Guest({...}): boots a guest in a Worker, NIC on a port, serial console streamed back.
 */
export { attachV86, type V86Attachment, type V86AttachOptions, type V86AdapterStats, type V86Emulator } from './adapter.js';
export { startV86Guest, V86Guest, type V86GuestOptions, type WaitForOptions } from './guest.js';
