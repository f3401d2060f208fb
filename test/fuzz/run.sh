#!/bin/bash
# run.sh: builds every fuzz target with clang's libFuzzer (ASan+UBSan) and
# fuzzes each for FUZZ_SECONDS (default 60), starting from its committed
# corpus. New crashes are left in the work directory: copy them into
# test/fuzz/corpus/<target>/ so that `make check` replays them for good.
set -euo pipefail
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${FUZZ_SECONDS:-60}
work=$(mktemp -d /tmp/jaco-fuzz.XXXXXX)
flags=$(pkg-config --cflags --libs raft libuv liblz4 msgpack)
for target in "$top_srcdir"/test/fuzz/fuzz_*.c; do
    name=$(basename "$target" .c)
    corpus=$top_srcdir/test/fuzz/corpus/${name#fuzz_}
    echo "==> $name ($seconds s)"
    # Each target names the library files it needs on a "fuzz-sources:"
    # line.
    sources=$(sed -n 's/.*fuzz-sources: *\([^*]*\).*/\1/p' "$target")
    clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
        -I"$top_srcdir/include" -I"$top_srcdir/lib" "$target" \
        $(printf "$top_srcdir/lib/%s " $sources) $flags -o "$work/$name"
    mkdir -p "$work/$name.corpus"
    cp "$corpus"/* "$work/$name.corpus/"
    (cd "$work" && "./$name" -max_total_time="$seconds" -max_len=65536 \
        "$work/$name.corpus")
done
echo "fuzzing done; work directory: $work"
