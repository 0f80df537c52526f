#!/usr/bin/env bash
# Builds a v86 guest from Debian i386 packages (nothing else is downloaded):
#   build-v86-image.sh OUTDIR
# Writes OUTDIR/vmlinuz (the 686 kernel of linux-image-686:i386), OUTDIR/initrd.cpio (static i386
# busybox, the ne2k-pci and virtio-net modules, test/vm/v86-init as /init; uncompressed, which
# boots ~1 s faster in v86 than gzip) and OUTDIR/kernel-package (the package used).
# Needs: the i386 architecture enabled in dpkg (dpkg --add-architecture i386 && apt-get update),
# apt-get, dpkg-deb, cpio. Runs as any user that can write OUTDIR (apt-get download needs no root).
set -euo pipefail
out=${1:?usage: build-v86-image.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
command -v cpio >/dev/null || { echo "no cpio: apt-get install cpio" >&2; exit 1; }
dpkg --print-foreign-architectures | grep -qx i386 || { echo "i386 is not a dpkg architecture: dpkg --add-architecture i386 && apt-get update" >&2; exit 1; }

# The current 686 (non-PAE) kernel: what the linux-image-686 metapackage depends on.
kpkg=$(apt-cache depends linux-image-686:i386 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "apt-cache knows no linux-image-686:i386 (apt-get update after adding i386?)" >&2; exit 1; }
case "$kpkg" in *:i386) ;; *) kpkg="$kpkg:i386" ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
(cd "$work" && apt-get download -q "$kpkg" busybox-static:i386 >/dev/null 2>&1) || {
  echo "apt-get download $kpkg busybox-static:i386 failed" >&2; exit 1; }
mkdir "$work/x"
for d in "$work"/*.deb; do dpkg-deb -x "$d" "$work/x"; done
kver=$(ls "$work/x/lib/modules" | head -1)
kdir="$work/x/lib/modules/$kver/kernel"

root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$work/x/bin/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$here/v86-init" "$root/init"
chmod 755 "$root/init"
for f in drivers/net/ethernet/8390/8390.ko drivers/net/ethernet/8390/ne2k-pci.ko \
         drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko drivers/virtio/virtio_pci_modern_dev.ko \
         drivers/virtio/virtio_pci_legacy_dev.ko drivers/virtio/virtio_pci.ko net/core/failover.ko \
         drivers/net/net_failover.ko drivers/net/virtio_net.ko; do
  src="$kdir/$f"
  name=$(basename "$f")
  if [ -f "$src" ]; then cp "$src" "$root/lib/modules/$name"
  elif [ -f "$src.xz" ]; then xz -dc "$src.xz" > "$root/lib/modules/$name"
  else echo "module $f not in $kpkg" >&2; exit 1
  fi
done
mkdir -p "$out"
(cd "$root" && find . | cpio -o -H newc --owner=0:0 --quiet) > "$out/initrd.cpio"
cp "$work/x/boot/vmlinuz-$kver" "$out/vmlinuz"
echo "$kpkg" > "$out/kernel-package"
