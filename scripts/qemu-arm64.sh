#!/usr/bin/env bash
# Runs a command with arm64 binaries executing under qemu-aarch64 (user mode)
# on an emulated CPU model: make test-arm64 and the arm64 checks of .ci/run.
#
#   scripts/qemu-arm64.sh CPU COMMAND...    CPU: a qemu-aarch64 -cpu model
#                                           (max: Armv8.x with the dot
#                                           product; cortex-a72: Armv8.0,
#                                           without it)
#
# What it sets up, idempotently (scripts/deps.sh installs the packages):
# - binfmt_misc runs aarch64 ELF files through qemu (Debian's qemu-user-binfmt
#   registration, made by systemd where there is one, by hand here), so that
#   `go test` with GOARCH=arm64 can execute its test binaries and those can
#   start child processes of their own (worker and re-exec tests), which
#   inherit QEMU_CPU and QEMU_LD_PREFIX from the environment.
# - A prefix folder per CPU model for QEMU_LD_PREFIX: lib/ links to the cross
#   C library (libc6-dev-arm64-cross, libstdc++6-arm64-cross), and
#   proc/cpuinfo describes the emulated core. qemu 7.2 passes /proc/cpuinfo
#   through from the x86 host, and onnxruntime's cpuinfo library dereferences
#   a null pointer when it finds no Arm processor there; qemu looks paths up
#   in the prefix first, so onnxruntime reads this file instead.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd) # the command runs in the caller's folder

if [ $# -lt 2 ]; then
  echo "usage: $0 CPU COMMAND... (CPU: max, cortex-a72, ...)" >&2
  exit 2
fi
cpu=$1
shift

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
conf=/usr/lib/binfmt.d/qemu-aarch64.conf # from qemu-user-binfmt
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e $binfmt/qemu-aarch64 ]; then
  [ -f $conf ] || { echo "qemu-arm64: $conf missing: run scripts/deps.sh (qemu-user-binfmt)" >&2; exit 1; }
  [ -e $binfmt/register ] || $SUDO mount -t binfmt_misc binfmt_misc $binfmt
  $SUDO sh -c "cat $conf > $binfmt/register"
fi

# MIDR fields (implementer, variant, part, revision) and hardware features
# of the core each model emulates: Cortex-A72 (Raspberry Pi 4) for
# cortex-a72, a Neoverse-N1 (Graviton 2) description for the others.
case $cpu in
  cortex-a72) part=0xd08 variant=0x0 rev=3 feat="fp asimd evtstrm crc32 cpuid" ;;
  *) part=0xd0c variant=0x3 rev=1 feat="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs" ;;
esac
root=$repo/.cache/qemu-arm64/$cpu
mkdir -p "$root/proc"
ln -sfn /usr/aarch64-linux-gnu/lib "$root/lib"
n=$(getconf _NPROCESSORS_CONF)
for ((i = 0; i < n; i++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %d\n\n' \
    "$i" "$feat" "$variant" "$part" "$rev"
done >"$root/proc/cpuinfo"

export QEMU_CPU=$cpu QEMU_LD_PREFIX=$root
exec "$@"
