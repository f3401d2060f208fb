#!/bin/bash
# run.sh [TARGET...]: builds the fuzz targets (all, or those named, e.g.
# fuzz_request) with clang's libFuzzer (ASan+UBSan, UB fatal as in
# `configure --enable-sanitizers`) and fuzzes each for FUZZ_SECONDS
# (default 60) in one process, starting from its committed corpus, with any
# further libFuzzer flags in FUZZ_ARGS. New crashes are left in the work
# directory: copy them into test/fuzz/corpus/<target>/ so that `make check`
# replays them for good.
set -euo pipefail
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${FUZZ_SECONDS:-60}
work=$(mktemp -d /tmp/jaco-fuzz.XXXXXX)
flags=$(pkg-config --cflags --libs raft libuv liblz4 msgpack zlib libsodium jansson libarchive yaml-0.1)
if [ $# -gt 0 ]; then
    targets=()
    for name in "$@"; do
        targets+=("$top_srcdir/test/fuzz/${name%.c}.c")
    done
else
    targets=("$top_srcdir"/test/fuzz/fuzz_*.c)
fi
for target in "${targets[@]}"; do
    name=$(basename "$target" .c)
    corpus=$top_srcdir/test/fuzz/corpus/${name#fuzz_}
    echo "==> $name ($seconds s)"
    # Each target names the files it needs, from the top of the tree, on a
    # "fuzz-sources:" lines; a directory stands for all its .c files.
    sources=()
    for s in $(sed -n 's/.*fuzz-sources: *\([^*]*\).*/\1/p' "$target"); do
        if [ -d "$top_srcdir/$s" ]; then
            sources+=("$top_srcdir/$s"/*.c)
        else
            sources+=("$top_srcdir/$s")
        fi
    done
    clang -g -O1 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -D_GNU_SOURCE -pthread \
        -I"$top_srcdir/include" -I"$top_srcdir/lib" "$target" \
        "${sources[@]}" $flags -o "$work/$name"
    mkdir -p "$work/$name.corpus"
    cp "$corpus"/* "$work/$name.corpus/"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    (cd "$work" && "./$name" -max_total_time="$seconds" -max_len=65536 \
        ${FUZZ_ARGS:-} "$work/$name.corpus")
done
echo "fuzzing done; work directory: $work"
