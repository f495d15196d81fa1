# shellcheck shell=bash
# Common settings for the scripts in scripts/: the pinned kernel version, the
# build folders and small helpers. Sourced, never run.

# The one place where the kernel version is pinned. Debian's linux-source-6.12
# package at this version gives the tree; the cloud image of the same version
# is the stock kernel we compare against.
KERNEL_DEB_VERSION=6.12.117-1~deb12u1
KERNEL_VERSION=${KERNEL_DEB_VERSION%%-*}
STOCK_IMAGE_PKG=linux-image-${KERNEL_VERSION}+deb12-cloud-amd64-unsigned

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
SRC=$BUILD/src/linux-$KERNEL_VERSION
LOGS=$BUILD/logs
# ccache lives outside the clone so a fresh clone on the same machine reuses it.
# Without $HOME (some CI runners) it goes under build/ instead.
export CCACHE_DIR=${CCACHE_DIR:-${HOME:-$BUILD}/.cache/udp-hotswap-ccache}
export CCACHE_BASEDIR=$BUILD
export CCACHE_SLOPPINESS=time_macros,include_file_mtime,include_file_ctime
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
# Reproducible strings in the kernel image, so ccache hits on init/version.c.
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2026'
export KBUILD_BUILD_USER=udp-hotswap KBUILD_BUILD_HOST=build

JOBS=${JOBS:-$(($(nproc) + 1))}

msg() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { msg "error: $*"; exit 1; }

# kernel_build_dir FLAVOUR -> path of the O= build tree of that flavour.
kernel_build_dir() { echo "$BUILD/kernel-$1"; }

# hash_of FILE... -> one sha256 over the contents of the given files.
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
