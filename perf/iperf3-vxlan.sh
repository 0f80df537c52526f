#!/bin/bash
# iperf3 between two Linux network namespaces, as a user connects them (README "Connect Linux
# network namespaces"): kernel vxlan devices in namespaces A and B, `vswitch serve` in a third
# namespace with one VXLAN port per namespace. Beside it, in the same run, two namespaces joined by
# a Linux bridge over veths. For each path: TCP (iperf3, DURATION s) and UDP 64-byte datagrams
# (iperf3 -u -b 0 -l 64), and for vswitch the adapters' own accounting (`vswitch ctl adapters`):
# datagrams received from A's kernel, dropped by reason (kernelQueue included).
#
#   sudo perf/iperf3-vxlan.sh                            # modes "threads main", 8 s each
#   sudo DURATION=5 MODES="threads" perf/iperf3-vxlan.sh
#   sudo BEFORE=/path/to/older/dist/cli/vswitch.js MODES="before main threads" perf/iperf3-vxlan.sh
#   sudo NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" MODES=threads perf/iperf3-vxlan.sh   # profiles, one per thread
#
# MODES: threads = `vswitch serve` as shipped (VXLAN adapters in Workers of their own);
#        main = `vswitch serve --no-adapter-threads` (adapters on the daemon's main thread);
#        before = `vswitch serve` of another build, given by BEFORE (e.g. an older commit).
# Needs root, iproute2, ethtool and iperf3 (apt-get install -y iperf3 ethtool iproute2).
# Creates namespaces vsw-ip-* and removes them on exit; sends traffic only inside them.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
VSWITCH=${VSWITCH:-$ROOT/dist/cli/vswitch.js}
DURATION=${DURATION:-8}
MODES=${MODES:-threads main}
TESTS=${TESTS:-tcp udp}     # which iperf3 tests: tcp, udp
NODE_FLAGS=${NODE_FLAGS:-}  # extra node flags for `vswitch serve`, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
SERVE_ARGS=${SERVE_ARGS:-}  # extra arguments for `vswitch serve`, e.g. "--config big-rings.json"

if [ "$(id -u)" != 0 ]; then echo "iperf3-vxlan: skipped: needs root (network namespaces)"; exit 0; fi
for c in ip ethtool iperf3 node; do
  command -v $c >/dev/null || { echo "iperf3-vxlan: skipped: $c is not installed (apt-get install -y iperf3 ethtool iproute2)"; exit 0; }
done
[ -f "$VSWITCH" ] || { echo "iperf3-vxlan: $VSWITCH not found: build first (npx tsc -b tsconfig.build.json)"; exit 1; }

P=vsw-ip-$$
NS_SW=$P-sw NS_A=$P-a NS_B=$P-b NS_BR=$P-br NS_C=$P-c NS_D=$P-d
TMP=$(mktemp -d /tmp/vsw-iperf.XXXXXX)
SOCK=$TMP/vs.sock
SERVE_PID=

cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  for ns in $NS_SW $NS_A $NS_B $NS_BR $NS_C $NS_D; do
    ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del $ns 2>/dev/null
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
set -e

for ns in $NS_SW $NS_A $NS_B $NS_BR $NS_C $NS_D; do
  ip netns add $ns
  ip netns exec $ns sysctl -qw net.ipv6.conf.default.disable_ipv6=1
  ip -n $ns link set lo up
done

# vswitch path: A, B each have a veth to the switch namespace and a kernel vxlan device.
n=1
for side in A B; do
  ns=$(eval echo \$NS_$side)
  ip link add vs$side$$ type veth peer name vn$side$$
  ip link set vs$side$$ netns $NS_SW
  ip link set vn$side$$ netns $ns
  ip -n $NS_SW addr add 10.99.$n.1/24 dev vs$side$$
  ip -n $NS_SW link set vs$side$$ up
  ip -n $ns addr add 10.99.$n.2/24 dev vn$side$$
  ip -n $ns link set vn$side$$ up
  ip -n $ns link add vx0 type vxlan id 42 local 10.99.$n.2 remote 10.99.$n.1 dstport 4789
  ip netns exec $ns ethtool -K vx0 tx off >/dev/null   # else inner TCP/UDP checksums stay unfinished
  ip -n $ns link set vx0 mtu 1450 up
  ip -n $ns addr add 192.168.42.$n/24 dev vx0
  n=$((n + 1))
done

# Linux bridge path: C, D each have a veth into a bridge in its own namespace.
ip -n $NS_BR link add br0 type bridge
ip -n $NS_BR link set br0 up
n=1
for side in C D; do
  ns=$(eval echo \$NS_$side)
  ip link add vb$side$$ type veth peer name vn$side$$
  ip link set vb$side$$ netns $NS_BR
  ip link set vn$side$$ netns $ns
  ip -n $NS_BR link set vb$side$$ master br0 up
  ip -n $ns addr add 192.168.43.$n/24 dev vn$side$$
  ip -n $ns link set vn$side$$ up
  n=$((n + 1))
done

# iperf3 -J output → one figure.
tcp_rate() { node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8")); if(j.error){console.log("error: "+j.error);process.exit(0)} console.log((j.end.sum_received.bits_per_second/1e9).toFixed(2)+" Gbit/s")'; }
udp_figures() {
  node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8")); if(j.error){console.log("error: "+j.error);process.exit(0)}
  const s=j.end.sum, secs=s.seconds, sent=s.packets, lost=s.lost_packets;
  console.log(`offered ${(sent/secs/1e3).toFixed(0)}k/s, delivered ${((sent-lost)/secs/1e3).toFixed(0)}k/s, lost ${(100*lost/Math.max(sent,1)).toFixed(1)}% (${sent} sent, ${lost} lost)`)'
}

run_iperf() { # client-ns server-ns server-ip label
  local c=$1 s=$2 ip=$3 label=$4
  case " $TESTS " in *" tcp "*)
    ip netns exec $s iperf3 -s -B $ip -D -1 >/dev/null 2>&1
    sleep 0.5
    echo "$label TCP:  $(ip netns exec $c iperf3 -c $ip -t $DURATION -J 2>/dev/null | tcp_rate)" ;;
  esac
  case " $TESTS " in *" udp "*)
    ip netns exec $s iperf3 -s -B $ip -D -1 >/dev/null 2>&1
    sleep 0.5
    local before=
    [ -n "${cli:-}" ] && before=$(offered_at_a)
    ip netns exec $c iperf3 -c $ip -u -b 0 -l 64 -t $DURATION -J >"$TMP/udp.json" 2>/dev/null || true
    echo "$label UDP 64 B: $(udp_figures <"$TMP/udp.json")"
    if [ -n "$before" ]; then
      # Every datagram iperf3 sent reached A's adapter socket: delivered into the switch or
      # dropped by a reason (kernelQueue included). A few ARP/control frames ride along.
      sleep 0.2
      local after sent
      after=$(offered_at_a)
      sent=$(node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(j.end&&j.end.sum?j.end.sum.packets:0)' <"$TMP/udp.json")
      echo "  accounting at A's adapter during the UDP test: in + dropped grew by $((after - before)) for $sent datagrams sent by iperf3 ($(node -e "console.log(($sent>0?100*($((after - before))-$sent)/$sent:0).toFixed(2))")% off)"
    fi ;;
  esac
}

# utime and stime (clock ticks) of the serve process, all threads.
serve_cpu() { awk '{print $14, $15}' /proc/$SERVE_PID/stat; }
# Datagrams the two adapters handled: received, sent, or read and dropped (not those the kernel
# dropped before the adapter saw them).
datagrams() {
  node "$cli" ctl adapters --json --socket "$SOCK" | node -e 'let n=0; for (const a of JSON.parse(require("fs").readFileSync(0,"utf8"))) n+=a.rxFrames+a.txFrames+a.dropped-(a.drops.kernelQueue||0); console.log(n)'
}

# rxFrames + dropped (all reasons) of A's adapter: every datagram that reached its socket.
offered_at_a() {
  node "$cli" ctl adapters --json --socket "$SOCK" | node -e 'const a=JSON.parse(require("fs").readFileSync(0,"utf8")).find((x)=>x.port==="vale0:nsa"); console.log(a?a.rxFrames+a.dropped:0)'
}

adapters() {
  node "$cli" ctl adapters --json --socket "$SOCK" | node -e 'const a=JSON.parse(require("fs").readFileSync(0,"utf8"));
  for (const x of a) { const r=Object.entries(x.drops).filter(([,v])=>v>0).map(([k,v])=>k+"="+v).join(" ")||"-";
    console.log(`  ${x.port}: in ${x.rxFrames} out ${x.txFrames} dropped ${x.dropped} (${r}), switch ring full ${x.switch?x.switch.rxDropRingFull:"-"}${x.thread!==undefined?", thread "+x.thread:""}`) }'
}

echo "iperf3-vxlan: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), node $(node -v), $DURATION s per test"
for mode in $MODES; do
  case $mode in
    threads) flags= cli=$VSWITCH ;;
    main) flags=--no-adapter-threads cli=$VSWITCH ;;
    before) flags= cli=${BEFORE:?set BEFORE=path/to/dist/cli/vswitch.js for mode before} ;;
    *) echo "unknown mode $mode (threads, main, before)"; exit 1 ;;
  esac
  ip netns exec $NS_SW node $NODE_FLAGS "$cli" serve --socket "$SOCK" $flags $SERVE_ARGS >"$TMP/serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 600); do grep -q listening "$TMP/serve.log" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$TMP/serve.log" || { echo "vswitch serve ($mode) did not start in 60 s:"; cat "$TMP/serve.log"; exit 1; }
  node "$cli" ctl attach vale0:nsa --vxlan --local 10.99.1.1:4789 --remote 10.99.1.2:4789 --vni 42 --socket "$SOCK" >/dev/null
  node "$cli" ctl attach vale0:nsb --vxlan --local 10.99.2.1:4789 --remote 10.99.2.2:4789 --vni 42 --socket "$SOCK" >/dev/null
  ip netns exec $NS_A ping -q -c 2 -W 2 192.168.42.2 >/dev/null || echo "vswitch ($mode): ping failed"
  cpu0=$(serve_cpu) dg0=$(datagrams)
  run_iperf $NS_A $NS_B 192.168.42.2 "vswitch VXLAN ($mode)"
  cpu1=$(serve_cpu) dg1=$(datagrams)
  # CPU time of the whole serve process (all threads) per datagram it moved: less noisy than
  # rates on shared cores, which depend on how much CPU the threads were given.
  echo "  serve used $(node -e "const [u0,s0]='$cpu0'.split(' ').map(Number),[u1,s1]='$cpu1'.split(' ').map(Number),t=$(getconf CLK_TCK),d=$dg1-$dg0;
    console.log(((u1-u0)/t).toFixed(2)+' s user + '+((s1-s0)/t).toFixed(2)+' s system for '+d+' datagrams handled: '+(1e6*(u1-u0+s1-s0)/t/Math.max(d,1)).toFixed(2)+' µs per datagram ('+(1e6*(u1-u0)/t/Math.max(d,1)).toFixed(2)+' user)')")"
  echo " vswitch ctl adapters after the run:"
  adapters
  kill $SERVE_PID; wait $SERVE_PID 2>/dev/null || true
  SERVE_PID=
done
cli=
ip netns exec $NS_C ping -q -c 2 -W 2 192.168.43.2 >/dev/null || echo "linux bridge: ping failed"
run_iperf $NS_C $NS_D 192.168.43.2 "Linux bridge over veths"
