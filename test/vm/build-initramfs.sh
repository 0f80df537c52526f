#!/usr/bin/env bash
# Builds the guest initramfs for the vswitch interop tests.
#   build-initramfs.sh KVER OUT
# Contents: static busybox, the virtio-net driver modules of kernel KVER (Debian builds them as
# modules; loaded by /init in dependency order), and test/vm/init as /init. ~1.5 MB gzipped.
# Needs: busybox-static, kmod (modinfo), cpio, gzip, and linux-image-KVER's /lib/modules.
set -euo pipefail
kver=${1:?usage: build-initramfs.sh KVER OUT}
out=${2:?usage: build-initramfs.sh KVER OUT}
here=$(cd "$(dirname "$0")" && pwd)

bb=/bin/busybox
[ -x "$bb" ] || { echo "no $bb: install busybox-static" >&2; exit 1; }
if ldd "$bb" >/dev/null 2>&1; then  # ldd fails on a static executable
  echo "$bb is dynamically linked: install busybox-static" >&2; exit 1
fi
command -v modinfo >/dev/null || { echo "no modinfo: install kmod" >&2; exit 1; }
command -v cpio >/dev/null || { echo "no cpio: install cpio" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$bb" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$here/init" "$root/init"
chmod 755 "$root/init"

# Dependency order (see docs/INTEROP-TESTS.md). A module built into the kernel has no file: skip it.
: > "$root/modules.order"
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net; do
  f=$(modinfo -k "$kver" -n "$m" 2>/dev/null || true)
  case "$f" in
    ''|'(builtin)'|builtin*) continue ;;
  esac
  [ -f "$f" ] || continue
  case "$f" in
    *.ko) cp "$f" "$root/lib/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$f" > "$root/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" > "$root/lib/modules/$m.ko" ;;
    *.ko.gz) gzip -dc "$f" > "$root/lib/modules/$m.ko" ;;
    *) echo "unknown module file $f" >&2; exit 1 ;;
  esac
  echo "$m" >> "$root/modules.order"
done
grep -q virtio_net "$root/modules.order" || modinfo -k "$kver" -n virtio_net 2>/dev/null | grep -q builtin || {
  echo "virtio_net not found for kernel $kver (install linux-image-$kver / kmod)" >&2; exit 1; }

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -9 > "$out"
