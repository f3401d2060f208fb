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
# The programs export nothing of their own: a global of theirs named like a
# symbol of a library they load (jaco once had json_string, jansson's) would
# take its place inside that library.
for prog in jaco jacod kvstore kvload; do
    bin=$top_builddir/.libs/$prog
    [ -f "$bin" ] || bin=$top_builddir/$prog
    extra=$(nm -D --defined-only "$bin" | awk '$3 !~ /@/ && $3 !~ /^_/ {print $3}')
    if [ -n "$extra" ]; then
        echo "check_abi: $prog exports its own symbols, which interpose on libraries': $extra" >&2
        exit 1
    fi
done
echo "check_abi: jaco, jacod, kvstore and kvload export no symbols of their own"
