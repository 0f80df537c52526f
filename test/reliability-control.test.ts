/**
 * Hostile input on the control socket of a real daemon (`node dist/cli/vswitch.js serve --socket
 * <tmp>`), one daemon through the whole file, its resident memory sampled all along
 * (/proc/<pid>/status VmRSS, else `ps -o rss=`):
 *
 * 1. malformed requests of every kind (not JSON, binary, invalid UTF-8, deep nesting, huge
 *    numbers, prototype keys, wrong types, 70,000 keys, huge arrays): exactly one error reply
 *    each, the connection stays usable;
 * 2. lines over the 1 MiB limit, and clients that stream 16 MiB without a newline: an error,
 *    then the server hangs up, having kept no more than the limit;
 * 3. clients that connect and send nothing, and clients that send a line that never ends,
 *    hundreds at once: the daemon holds at most MAX_HELD_TOTAL of them and refuses the rest;
 * 4. a client that sends requests and never reads the replies: the server stops reading it,
 *    the replies waiting for it stay bounded, other clients are served promptly;
 * 5. more connections than MAX_CONNECTIONS, and thousands of connect/close cycles.
 *
 * After each, `vswitch ctl ping` still works; at the end the daemon's RSS peak is bounded and it
 * stops cleanly on SIGTERM. The basic cases (bad JSON, one long line, one idle and one greedy
 * client, socket and directory modes) are in test/cli-serve.test.ts; QEMU and VXLAN adapters get
 * their hostile input in test/adapters-malformed.test.ts.
 */
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlClient } from '../src/apps/daemon/control-client.js';
import { MAX_CONNECTIONS, MAX_HELD_TOTAL } from '../src/apps/daemon/control-server.js';
import { MAX_LINE } from '../src/apps/daemon/control-protocol.js';
import { runCli, startServe, tmpSocket, type Daemon } from './helpers/cli.js';
import { until } from './helpers/wait.js';

const STRESS = process.env.VSWITCH_STRESS === '1';
/** The daemon may grow by this much over its idle size at any moment of the test. */
const RSS_BUDGET_MB = 200;
/** A request from a well-behaved client is answered within this while another floods the daemon. */
const PROMPT_MS = 3000;

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch { /* not Linux */ }
  const r = spawnSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' });
  return Number(r.stdout.trim()) / 1024;
}

interface Raw {
  s: Socket;
  replies: Record<string, unknown>[];
  closed: Promise<void>;
  isClosed(): boolean;
  /** Resolves true once `n` replies arrived (false after ms). */
  waitReplies(n: number, ms?: number): Promise<boolean>;
}

/**
 * Resolves at c's next 'drain', when it closes, or after ms, whichever comes first, and leaves no
 * listener behind (a writer that keeps timing out would otherwise pile up one per write).
 */
function drained(c: Raw, ms: number): Promise<unknown> {
  let done!: () => void;
  const d = new Promise<void>((r) => { done = r; c.s.once('drain', done); });
  return Promise.race([d, c.closed, sleep(ms)]).finally(() => c.s.off('drain', done));
}

/** A raw connection that parses reply lines (connect retried while the accept queue is full). */
async function raw(path: string, read = true): Promise<Raw> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<Raw>((resolve, reject) => {
        const s = connect(path);
        const replies: Record<string, unknown>[] = [];
        let buf = '';
        let closed = false;
        if (read) {
          s.setEncoding('utf8');
          s.on('data', (d: string) => {
            buf += d;
            let nl;
            while ((nl = buf.indexOf('\n')) >= 0) {
              replies.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
              buf = buf.slice(nl + 1);
            }
          });
        } else {
          s.pause();
        }
        const closedP = new Promise<void>((r) => s.on('close', () => { closed = true; r(); }));
        s.once('error', reject);
        s.once('connect', () => {
          s.off('error', reject);
          s.on('error', () => {});
          resolve({
            s, replies, closed: closedP, isClosed: () => closed,
            async waitReplies(n, ms = 10_000) {
              const end = Date.now() + ms;
              while (replies.length < n && Date.now() < end) await sleep(5);
              return replies.length >= n;
            },
          });
        });
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'EAGAIN' || code === 'ECONNREFUSED') && attempt < 200) { await sleep(5); continue; }
      throw e;
    }
  }
}

t.test('the control socket under hostile clients: errors or hang-ups, bounded memory, always up', async (t) => {
  const { socket } = tmpSocket(t);
  const d: Daemon = await startServe(t, socket);
  const ping = async (what: string) => {
    const r = await runCli(['ctl', 'ping', '--socket', socket]);
    t.equal(r.code, 0, `after ${what}: vswitch ctl ping works${r.code === 0 ? '' : ` (${r.stderr.trim()})`}`);
  };
  // After clients went away, the daemon may not have seen every hang-up yet (its connection
  // count, its held-bytes budget): ping until it answers, within a deadline, and say how often.
  const pingSoon = async (what: string) => {
    const end = Date.now() + 20_000;
    let tries = 0;
    let r;
    do {
      tries++;
      r = await runCli(['ctl', 'ping', '--socket', socket]);
    } while (r.code !== 0 && Date.now() < end);
    t.equal(r.code, 0, `after ${what}: vswitch ctl ping works (${tries} tr${tries === 1 ? 'y' : 'ies'})${r.code === 0 ? '' : ` (${r.stderr.trim()})`}`);
  };
  await ping('start-up');
  const base = rssMiB(d.pid);
  let peak = base;
  let peakWhere = 'start';
  let where = 'start';
  const sampler = setInterval(() => {
    const r = rssMiB(d.pid);
    if (r > peak) { peak = r; peakWhere = where; }
  }, 50);
  t.teardown(() => clearInterval(sampler));
  const figures: string[] = [];

  // ---- 1. malformed requests --------------------------------------------------------------
  where = 'malformed requests';
  {
    const c = await raw(socket);
    const manyKeys = '{"id":30,"op":"ping",' + Array.from({ length: 70_000 }, (_, i) => `"k${i}":${i}`).join(',') + '}';
    const bigArrayOk = JSON.stringify({ id: 33, op: 'vlan', port: 'vale0:ctl', config: { mode: 'trunk', vlans: Array.from({ length: 150_000 }, (_, i) => 1 + (i % 4094)) } });
    const bigArray = JSON.stringify({ id: 31, op: 'vlan', port: 'vale0:none', config: { mode: 'trunk', vlans: Array.from({ length: 150_000 }, (_, i) => 1 + (i % 4094)) } });
    const lines: [string | Buffer, 'ok' | RegExp][] = [
      ['this is not json', /ERR_BAD_REQUEST/],
      [Buffer.from([0x00, 0x01, 0x02, 0xff, 0xfe, 0x80]), /ERR_BAD_REQUEST/],
      [Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x31, 0x2c, 0x22, 0x6f, 0x70, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), /ERR_UNKNOWN_OP/], // invalid UTF-8 in op
      ['{', /ERR_BAD_REQUEST/],
      ['}', /ERR_BAD_REQUEST/],
      ['['.repeat(300_000), /ERR_BAD_REQUEST/],
      ['['.repeat(200_000) + ']'.repeat(200_000), /ERR_BAD_REQUEST/],
      ['{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000), /ERR_BAD_REQUEST/],
      ['"just a string"', /ERR_BAD_REQUEST/],
      ['null', /ERR_BAD_REQUEST/],
      ['123', /ERR_BAD_REQUEST/],
      ['{"id":1e400,"op":"ping"}', /ERR_BAD_REQUEST/],
      ['{"id":"1","op":"ping"}', /ERR_BAD_REQUEST/],
      ['{"id":1,"op":["ping"]}', /ERR_BAD_REQUEST/],
      ['{"id":2,"op":"ping","__proto__":{"op":"shutdown","polluted":true}}', 'ok'],
      ['{"id":3,"op":"constructor"}', /ERR_UNKNOWN_OP/],
      ['{"id":4,"op":"__proto__"}', /ERR_UNKNOWN_OP/],
      ['{"id":5,"op":"toString"}', /ERR_UNKNOWN_OP/],
      ['{"id":6,"op":"' + 'x'.repeat(200_000) + '"}', /ERR_UNKNOWN_OP/],
      ['{"id":7,"op":"stats","port":{"name":"vale0:a"}}', /ERR_BAD_REQUEST/],
      ['{"id":8,"op":"create","name":"vale0:' + 'x'.repeat(5000) + '"}', /ERR_BAD_NAME/],
      ['{"id":9,"op":"create","name":"vale0:a\\u0000b"}', /ERR_BAD_NAME/],
      ['{"id":10,"op":"fdb","bridge":null}', /ERR_BAD_REQUEST/],
      // No bridge yet: the name is checked first; then with the bridge, the value.
      ['{"id":11,"op":"ageing","bridge":"vale0","seconds":-1}', /^ERR_NO_BRIDGE$/],
      ['{"id":18,"op":"create","name":"vale0:ctl"}', 'ok'],
      ['{"id":19,"op":"ageing","bridge":"vale0","seconds":-1}', /^ERR_BAD_OPTION$/],
      ['{"id":12,"op":"pktgen","opts":{"port":123}}', /^ERR_BAD_NAME$/],
      ['{"id":13,"op":"pktgen","opts":{"port":"vale0:pg","frames":[""]}}', /^ERR_BAD_ARG$/],
      ['{"id":14,"op":"bridge","a":"vale0:a","b":"vale0:a","intervalMs":5}', /ERR_BAD_REQUEST/],
      ['{"id":15,"op":"stop","target":"x"}', /ERR_BAD_REQUEST/],
      ['{"id":16,"op":"mirror","port":"vale0:m","tx":[1,2,3]}', /ERR_BAD_REQUEST/],
      ['{"id":17,"op":"vlan","port":"vale0:a","config":"trunk"}', /ERR_BAD_REQUEST/],
      [manyKeys, 'ok'],
      [bigArray, /^ERR_NO_PORT$/],
      [bigArrayOk, 'ok'], // 150,000 VLAN ids (repeats of 1..4094) on a port that exists: a trunk of all of them
      ['{"id":34,"op":"remove","name":"vale0:ctl"}', 'ok'],
      ['{"id":32,"op":"ping"}', 'ok'],
    ];
    for (const [line] of lines) {
      c.s.write(line);
      c.s.write('\n\r\n\n'); // empty lines get no reply
    }
    const got = await c.waitReplies(lines.length, 20_000);
    t.ok(got, `one reply for each of ${lines.length} malformed or odd requests (got ${c.replies.length})`);
    const wrong: string[] = [];
    lines.forEach(([line, want], i) => {
      const r = c.replies[i] as { ok?: boolean; error?: { code?: string } } | undefined;
      const shown = (Buffer.isBuffer(line) ? `<${line.length} bytes>` : line.slice(0, 40)) + (line.length > 40 ? '…' : '');
      if (!r) wrong.push(`${shown}: no reply`);
      else if (want === 'ok' ? r.ok !== true : r.ok !== false || !want.test(String(r.error?.code))) {
        wrong.push(`${shown}: ${JSON.stringify(r).slice(0, 200)}`);
      }
    });
    t.same(wrong, [], 'each got the reply it should: an error with a code, or the answer for the valid ones');
    t.notOk(c.isClosed(), 'the connection is still open');
    // Replies come in request order: once the reply to one more ping is in, no stray reply to the
    // lines above (or to the empty lines between them) can still be on its way.
    c.s.write('{"id":99,"op":"ping"}\n');
    t.ok(await c.waitReplies(lines.length + 1, 10_000), 'a last ping is answered');
    t.equal(c.replies.length, lines.length + 1, 'and no more replies than requests');
    t.match(c.replies[lines.length], { id: 99, ok: true }, 'the last reply is the ping\'s');
    c.s.destroy();
    figures.push(`${lines.length} malformed/odd requests → ${lines.filter(([, w]) => w !== 'ok').length} errors`);
  }
  await ping('malformed requests');

  // ---- 2. lines over the limit --------------------------------------------------------------
  where = 'over-long lines';
  {
    const one = await raw(socket);
    one.s.write(JSON.stringify({ id: 1, op: 'ping', pad: 'y'.repeat(MAX_LINE + 1000) }) + '\n');
    t.ok(await one.waitReplies(1), 'a valid but 1 MiB+ request: one reply');
    t.match(one.replies[0], { id: null, ok: false, error: { code: 'ERR_LINE_TOO_LONG' } });
    await one.closed;
    // Clients that stream 16 MiB with no newline at all, several at once.
    const N = STRESS ? 32 : 8;
    const streams = await Promise.all(Array.from({ length: N }, () => raw(socket)));
    const chunk = Buffer.alloc(1 << 16, 0x61);
    await Promise.all(streams.map(async (c) => {
      for (let sent = 0; sent < 16 << 20 && !c.isClosed(); sent += chunk.length) {
        if (!c.s.write(chunk)) await drained(c, 2000);
      }
    }));
    await Promise.all(streams.map((c) => Promise.race([c.closed, sleep(5000)])));
    t.ok(streams.every((c) => c.isClosed()), `${N} clients streaming 16 MiB without a newline: all hung up on`);
    t.ok(streams.every((c) => (c.replies[0] as { error?: { code?: string } } | undefined)?.error?.code === 'ERR_LINE_TOO_LONG'),
      '... each after an ERR_LINE_TOO_LONG reply');
    figures.push(`${N} × 16 MiB lines: refused at ${MAX_LINE} bytes`);
  }
  await ping('over-long lines');

  // ---- 3. idle clients and lines that never end -------------------------------------------
  where = 'idle and never-ending clients';
  {
    const idle = await Promise.all(Array.from({ length: 200 }, () => raw(socket)));
    await ping('200 idle connections');
    const M = STRESS ? 400 : 150;
    const partial: Raw[] = [];
    const half = '{"id":1,"op":"ping","pad":"' + 'z'.repeat(MAX_LINE - 200);
    for (let i = 0; i < M; i++) {
      const c = await raw(socket);
      c.s.write(half);
      partial.push(c);
    }
    // Until the daemon has refused enough of them that what it keeps fits its budget (refusals
    // only grow, kept connections only shrink: once true, it stays true).
    const kept = () => partial.filter((c) => !c.isClosed()).length;
    await until('the never-ending clients over the budget to be refused',
      () => kept() * (MAX_LINE - 200) <= MAX_HELD_TOTAL + (1 << 20) * 2, 30_000).catch((e: Error) => t.comment(e.message));
    const rssHolding = rssMiB(d.pid);
    const refused = partial.filter((c) => (c.replies[0] as { error?: { code?: string } } | undefined)?.error?.code === 'ERR_SERVER_BUSY').length;
    const open = partial.filter((c) => !c.isClosed()).length;
    t.ok(refused > 0, `${M} clients each holding a ${MAX_LINE >> 10} KiB line that never ends: ${refused} refused with ERR_SERVER_BUSY`);
    t.ok(open * (MAX_LINE - 200) <= MAX_HELD_TOTAL + (1 << 20) * 2,
      `... ${open} kept, about ${(open * MAX_LINE) >> 20} MiB, within the ${MAX_HELD_TOTAL >> 20} MiB budget`);
    t.ok(rssHolding - base < RSS_BUDGET_MB, `... daemon RSS ${rssHolding.toFixed(0)} MiB (idle ${base.toFixed(0)} MiB)`);
    t.ok(idle.every((c) => !c.isClosed()), 'the 200 idle clients are still connected (an idle connection costs no timer and no buffer)');
    await ping(`${M} never-ending lines`);
    figures.push(`200 idle + ${M} never-ending 1 MiB lines: ${refused} refused, RSS ${rssHolding.toFixed(0)} MiB`);
    for (const c of [...idle, ...partial]) c.s.destroy();
    // The budget is given back: a long request goes through again, once the daemon has seen the
    // hang-ups (until then it may still answer ERR_SERVER_BUSY: try again, within a deadline).
    const end = Date.now() + 20_000;
    let reply: Record<string, unknown> | undefined;
    let tries = 0;
    do {
      tries++;
      const after = await raw(socket);
      after.s.write(JSON.stringify({ id: 5, op: 'ping', pad: 'w'.repeat(MAX_LINE - 1000) }) + '\n');
      reply = (await after.waitReplies(1)) ? after.replies[0] : undefined;
      after.s.destroy();
      if (reply?.ok !== true) await sleep(20);
    } while (reply?.ok !== true && Date.now() < end);
    t.match(reply, { id: 5, ok: true }, `once they are gone, a long request is served again (${tries} tries)`);
  }

  // ---- 4. a client that never reads -------------------------------------------------------
  where = 'a client that never reads';
  {
    const cc = await ControlClient.connect(socket);
    for (let i = 0; i < 40; i++) await cc.request('create', { name: `vale0:p${i}` });
    const greedy = await raw(socket, false);
    const req = Buffer.from('{"id":1,"op":"list"}\n'.repeat(2000));
    const total = STRESS ? 400 : 60; // × 2000 list requests, each answered with ~19 KB
    for (let i = 0; i < total && !greedy.isClosed(); i++) {
      if (!greedy.s.write(req)) await drained(greedy, 100);
    }
    // Ready when the daemon has stopped reading the greedy client: what it writes piles up on
    // its side (or it was dropped).
    await until('the daemon to stop reading the greedy client', () => greedy.isClosed() || greedy.s.writableLength > 0, 30_000);
    const t0 = performance.now();
    t.match(await cc.request('ping'), { pid: d.pid }, 'another client is served while the greedy one does not read');
    const pingMs = performance.now() - t0;
    // Served at once rather than after the greedy client's backlog (seconds of work): measured
    // 33 ms at load 8 on 2 cores; the bound leaves a wide margin for a busier machine.
    t.ok(pingMs < PROMPT_MS, `... within ${pingMs.toFixed(0)} ms (bound ${PROMPT_MS} ms)`);
    const rssGreedy = rssMiB(d.pid);
    t.ok(rssGreedy - base < RSS_BUDGET_MB, `a client asking ${total * 2000} lists (${((total * 2000 * 19_000) / 2 ** 30).toFixed(1)} GiB of replies) ` +
      `without reading: daemon RSS ${rssGreedy.toFixed(0)} MiB (${greedy.isClosed() ? 'dropped' : 'paused, still connected'})`);
    figures.push(`non-reader asking ${total * 2000} lists: RSS ${rssGreedy.toFixed(0)} MiB, ${greedy.isClosed() ? 'dropped' : 'paused'}`);
    greedy.s.destroy();
    for (let i = 0; i < 40; i++) await cc.request('remove', { name: `vale0:p${i}` });
    cc.close();
  }
  await ping('a client that never reads');

  // ---- 5. too many connections, and churn ------------------------------------------------
  where = 'many connections';
  {
    const N = MAX_CONNECTIONS + 100;
    const conns: Raw[] = [];
    for (let i = 0; i < N; i++) conns.push(await raw(socket));
    const over = N - MAX_CONNECTIONS - 2;
    await until(`the server to close ${over} connections over its limit`, () => conns.filter((c) => c.isClosed()).length >= over, 30_000)
      .catch((e: Error) => t.comment(e.message));
    const closed = conns.filter((c) => c.isClosed()).length;
    t.ok(closed >= N - MAX_CONNECTIONS - 2, `${N} connections: the server closed ${closed} over its limit of ${MAX_CONNECTIONS}`);
    const live = conns.filter((c) => !c.isClosed());
    const probe = live.slice(0, 20);
    for (const [i, c] of probe.entries()) c.s.write(`{"id":${i},"op":"ping"}\n`);
    t.ok((await Promise.all(probe.map((c) => c.waitReplies(1, 5000)))).every(Boolean), 'the connections it kept are served');
    for (const c of conns) c.s.destroy();
    await pingSoon(`${N} connections`);
    where = 'connection churn';
    const cycles = STRESS ? 20_000 : 2000;
    for (let i = 0; i < cycles; i++) {
      const c = await raw(socket, false);
      c.s.write('{"id":1,"op":"ping"}\n');
      c.s.destroy();
    }
    await pingSoon(`${cycles} connect/close cycles`);
    figures.push(`${N} connections: ${closed} closed over the limit; ${cycles} connect/close cycles`);
  }

  clearInterval(sampler);
  const end = rssMiB(d.pid);
  t.ok(peak - base < RSS_BUDGET_MB, `daemon RSS peak ${peak.toFixed(0)} MiB (during ${peakWhere}), idle ${base.toFixed(0)} MiB, end ${end.toFixed(0)} MiB`);
  t.equal(d.proc.exitCode, null, 'the daemon never exited');
  t.same(await d.stop('SIGTERM'), { code: 0, signal: null }, 'and it stops cleanly on SIGTERM');
  t.comment(`control socket: ${figures.join('; ')}; RSS idle ${base.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB (${peakWhere}), end ${end.toFixed(0)} MiB`);
});
