# shellcheck shell=bash
# Common settings for the scripts in scripts/: the pinned kernel version, the
# build folders and small helpers. Sourced, never run.

# The one place where the kernel version is pinned. Debian's linux-source-6.12
# package at this version gives the tree; the cloud image of the same version
# is the stock kernel we compare against. scripts/rebase-series moves it.
KERNEL_DEB_PIN=${KERNEL_DEB_PIN:-6.12.117-1~deb12u1}

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}

# Debian's security suite keeps only its last few 6.12 versions. Once the pin
# has left it, install-deps falls back to the newest one offered and records
# "PIN VERSION" in build/kernel-version; every script then uses VERSION.
KERNEL_DEB_VERSION=$KERNEL_DEB_PIN
if [ -r "$BUILD/kernel-version" ]; then
	read -r _pin _ver <"$BUILD/kernel-version" || true
	[ "${_pin:-}" = "$KERNEL_DEB_PIN" ] && [ -n "${_ver:-}" ] && KERNEL_DEB_VERSION=$_ver
	unset _pin _ver
fi
KERNEL_VERSION=${KERNEL_DEB_VERSION%%-*}
STOCK_IMAGE_PKG=linux-image-${KERNEL_VERSION}+deb12-cloud-amd64-unsigned
SRC=$BUILD/src/linux-$KERNEL_VERSION
LOGS=$BUILD/logs
# ccache lives outside the clone so a fresh clone on the same machine reuses it.
# Without $HOME (some CI runners) it goes under build/ instead.
export CCACHE_DIR=${CCACHE_DIR:-${HOME:-$BUILD}/.cache/udp-hotswap-ccache}
export CCACHE_BASEDIR=$BUILD
export CCACHE_SLOPPINESS=time_macros,include_file_mtime,include_file_ctime
# The kernel is built with -g (BTF): ccache would hash the build directory
# too, and a clone elsewhere (CI's) would miss on every file.
export CCACHE_NOHASHDIR=1
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

# The files of the current directory's tree that patches/ FILE... change
# (their pre-images), one per line: what "base" must hold for git am.
series_preimages() {
	(cd "$TOP/patches" && sed -n 's|^diff --git a/\([^ ]*\) b/.*|\1|p' "$@") | sort -u |
		while IFS= read -r f; do if [ -e "$f" ]; then echo "$f"; fi; done
}

# stock_image_pkg DEBVERSION -> the cloud image package of that version.
stock_image_pkg() { echo "linux-image-${1%%-*}+deb12-cloud-amd64-unsigned"; }

# offered PKG VERSION: does apt offer PKG at VERSION?
offered() { apt-cache madison "$1" 2>/dev/null | awk -v v="$2" '$3 == v { f = 1 } END { exit !f }'; }

# kernel_resolve -> the Debian version to use: the pin while apt offers both
# its linux-source-6.12 and its cloud image, else the newest 6.12 for which
# it offers both (with a message on stderr), else nothing and status 1.
kernel_resolve() {
	local v
	if offered linux-source-6.12 "$KERNEL_DEB_PIN" &&
		offered "$(stock_image_pkg "$KERNEL_DEB_PIN")" "$KERNEL_DEB_PIN"; then
		echo "$KERNEL_DEB_PIN"
		return 0
	fi
	for v in $(apt-cache madison linux-source-6.12 2>/dev/null | awk '{ print $3 }' |
			sort -urV); do
		offered "$(stock_image_pkg "$v")" "$v" || continue
		msg "the pinned kernel $KERNEL_DEB_PIN is no longer offered by Debian;" \
			"using the newest 6.12 that is, $v (the series goes on with git am -3;" \
			"scripts/rebase-series $v moves the pin)"
		echo "$v"
		return 0
	done
	msg "error: Debian offers no linux-source-6.12 with its cloud image"
	return 1
}
