/**
 * The port table entry is laid out by who writes each cache line (layout.ts): the words a port's
 * own sender writes at every txsync, the words the senders delivering to it write, and the words
 * every sender reads at every delivery must sit in different 64-byte lines, or a round trip
 * moves those lines between cores at every hop. This checks the offsets, so a field added in the
 * wrong place fails here rather than as a slower benchmark.
 */
import t from 'tap';
import {
  C_DROP_BUSY, C_RX_BAD_HEAD, C_RX_BYTES, C_RX_DROP_RING_FULL, C_RX_FRAMES, C_RX_REPAIRS, COUNTER_INDEX, COUNTER_NAMES,
  N_COUNTERS, PT_SIZE, P_BUSY, P_COUNTERS, P_FLAGS, P_GEN, P_LEASE_HEAD, P_LEASE_NEXT, P_MIRROR_RX, P_PVID, P_RX_HWCUR,
  P_RX_HWTAIL, P_RX_LOCK, P_STATE, P_TX_HWCUR, P_VLAN_MAP, P_VLAN_MODE,
} from '#bridge';

const line = (byte: number) => byte >> 6;
const counter = (c: number) => P_COUNTERS + 8 * c;
const RX_COUNTERS = [C_RX_FRAMES, C_RX_BYTES, C_RX_DROP_RING_FULL, C_RX_BAD_HEAD, C_RX_REPAIRS];

t.test('port table entry: lines written by the port\'s own sender, by other senders, and read at every delivery are apart', async (t) => {
  const ownSender = [P_BUSY, P_TX_HWCUR, ...COUNTER_INDEX.filter((c) => !RX_COUNTERS.includes(c)).map(counter)];
  const otherSenders = [P_RX_LOCK, P_RX_HWCUR, P_RX_HWTAIL, P_LEASE_HEAD, P_LEASE_NEXT, ...RX_COUNTERS.map(counter)];
  const readByOthers = [P_STATE, P_GEN, P_FLAGS, P_VLAN_MODE, P_PVID];
  const lines = (xs: number[]) => new Set(xs.map(line));
  const shared = (a: number[], b: number[]) => [...lines(a)].filter((l) => lines(b).has(l));
  t.same(shared(ownSender, otherSenders), [], 'no line holds both the own sender\'s words and words other senders write');
  t.same(shared(ownSender, readByOthers), [], 'no line holds both the own sender\'s words and words other senders read at every delivery');
  t.same(shared(otherSenders, readByOthers), [], 'the RX words other senders write are not in the line they read for state and VLANs');
  t.ok(COUNTER_INDEX.includes(C_DROP_BUSY) && COUNTER_INDEX.length === COUNTER_NAMES.length, 'every counter name has a slot');
  t.equal(new Set(COUNTER_INDEX).size, COUNTER_INDEX.length, 'no two counters share a slot');
  t.ok(COUNTER_INDEX.every((c) => c >= 0 && c < N_COUNTERS), 'every counter inside the counter area');
  const fields = [P_BUSY, P_TX_HWCUR, P_MIRROR_RX, P_RX_LOCK, P_RX_HWCUR, P_RX_HWTAIL, P_LEASE_HEAD, P_LEASE_NEXT];
  t.ok(fields.every((f) => f >= P_COUNTERS + 8 * N_COUNTERS && f + 4 <= P_VLAN_MAP), 'private words lie between the counters and the VLAN map');
  t.equal(P_VLAN_MAP + 4096 / 8, PT_SIZE, 'the VLAN bitmap ends the entry');
});
