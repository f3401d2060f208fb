# common.sh: installs the Debian packages the build needs and builds the
# tree out of source; sourced by demo.sh and test.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACKAGES="build-essential autoconf automake libtool pkg-config libraft-dev
libuv1-dev liblz4-dev libmsgpack-dev libsodium-dev libjansson-dev libarchive-dev libnftables-dev nftables libyaml-dev check iproute2 procps"

ensure_packages() {
    local missing=() p
    for p in $PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing ${missing[*]}" >&2
        if [ "$(id -u)" -ne 0 ]; then
            echo "error: missing packages (${missing[*]}); run as root or install them" >&2
            exit 1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" </dev/null >/dev/null
    fi
}

# build DIR [configure flags...]: configure (once) and build in ROOT/DIR.
build() {
    local dir=$ROOT/$1
    shift
    if [ ! -x "$ROOT/configure" ] || [ "$ROOT/configure.ac" -nt "$ROOT/configure" ]; then
        echo "==> autoreconf" >&2
        (cd "$ROOT" && autoreconf -fi >/dev/null 2>&1) || (cd "$ROOT" && autoreconf -fi)
    fi
    mkdir -p "$dir"
    if [ ! -f "$dir/Makefile" ] || [ "$ROOT/configure" -nt "$dir/config.status" ] ||
        [ "$(cat "$dir/.configure-flags" 2>/dev/null)" != "$*" ]; then
        echo "==> configure $* (in $dir)" >&2
        (cd "$dir" && "$ROOT/configure" -q "$@")
        echo "$*" >"$dir/.configure-flags"
    fi
    echo "==> make (in $dir)" >&2
    make -C "$dir" -j"$(nproc)" -s >/dev/null
}
