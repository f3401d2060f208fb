#!/bin/bash
# check_abi.sh: the shared library exports exactly the symbols listed in
# lib/jacoraft.sym; adding one means updating the list (and the man page),
# removing one is an ABI break.
set -euo pipefail
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../build" && pwd)}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
lib=$top_builddir/.libs/libjacoraft.so
[ -f "$lib" ] || { echo "check_abi: $lib not built" >&2; exit 1; }
if ! diff -u "$top_srcdir/lib/jacoraft.sym" \
    <(nm -D --defined-only "$lib" | awk '{print $3}' | sort); then
    echo "check_abi: exported symbols differ from lib/jacoraft.sym" >&2
    exit 1
fi
echo "check_abi: $(wc -l <"$top_srcdir/lib/jacoraft.sym") exported symbols, all expected"
