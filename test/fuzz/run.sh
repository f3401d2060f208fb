#!/bin/bash
# run.sh [--ci] [TARGET...]: builds the fuzz targets (all, or those named,
# e.g. fuzz_request) with clang's libFuzzer (ASan+UBSan, UB fatal as in
# `configure --enable-sanitizers`) and fuzzes each for FUZZ_SECONDS
# (default 60) in one process, starting from its committed corpus, with any
# further libFuzzer flags in FUZZ_ARGS. New crashes are left in the work
# directory: copy them into test/fuzz/corpus/<target>/ so that `make check`
# replays them for good.
#
# --ci: the bounded run of scripts/test.sh. Every target is fuzzed with the
# fixed seed FUZZ_SEED (default 1) and a 10 s limit per input, whatever
# happens to the others; each crash, leak, timeout or out-of-memory input is
# printed in base64 with the corpus file to decode it into, and the exit
# status is 1 if there was any (the work directory is then kept, else
# removed).
set -euo pipefail
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${FUZZ_SECONDS:-60}
ci=false
if [ "${1:-}" = --ci ]; then
    ci=true
    shift
fi
work=$(mktemp -d /tmp/jaco-fuzz.XXXXXX)
libs=$(pkg-config --libs raft libuv liblz4 msgpack zlib libsodium jansson libarchive yaml-0.1)
cflags="-g -O1 -fno-sanitize-recover=undefined -D_GNU_SOURCE -pthread
    -I$top_srcdir/include -I$top_srcdir/lib
    $(pkg-config --cflags raft libuv liblz4 msgpack zlib libsodium jansson libarchive yaml-0.1)"
if [ $# -gt 0 ]; then
    targets=()
    for name in "$@"; do
        targets+=("$top_srcdir/test/fuzz/${name%.c}.c")
    done
else
    targets=("$top_srcdir"/test/fuzz/fuzz_*.c)
fi

# Each target names the files it needs, from the top of the tree, on
# "fuzz-sources:" lines; a directory stands for all its .c files.
sources_of() {
    local s
    echo "$1"
    # shellcheck disable=SC2013 # words: a line may name several files
    for s in $(sed -n 's/.*fuzz-sources: *\([^*]*\).*/\1/p' "$1"); do
        if [ -d "$top_srcdir/$s" ]; then
            printf '%s\n' "$top_srcdir/$s"/*.c
        else
            echo "$top_srcdir/$s"
        fi
    done
}
object_of() {
    local rel=${1#"$top_srcdir"/}
    echo "$work/obj/${rel//\//_}.o"
}

# Every file once, in parallel, then one link per target.
mkdir -p "$work/obj"
for target in "${targets[@]}"; do
    sources_of "$target"
done | sort -u | while read -r src; do
    printf '%s\0%s\0' "$src" "$(object_of "$src")"
done >"$work/compile.list"
echo "==> compiling $(($(tr -cd '\0' <"$work/compile.list" | wc -c) / 2)) files" >&2
# shellcheck disable=SC2016 # expanded by the inner shell
xargs -0 -n 2 -P "$(nproc)" sh -c \
    'clang $0 -fsanitize=fuzzer-no-link,address,undefined -c "$1" -o "$2"' \
    "$cflags" <"$work/compile.list"
for target in "${targets[@]}"; do
    name=$(basename "$target" .c)
    objects=()
    while read -r src; do
        objects+=("$(object_of "$src")")
    done < <(sources_of "$target")
    # shellcheck disable=SC2086 # libs is a list of flags
    clang -fsanitize=fuzzer,address,undefined -pthread "${objects[@]}" $libs \
        -o "$work/$name"
done

failed=()
for target in "${targets[@]}"; do
    name=$(basename "$target" .c)
    corpus=$top_srcdir/test/fuzz/corpus/${name#fuzz_}
    echo "==> $name ($seconds s)"
    mkdir -p "$work/$name.corpus" "$work/$name.found"
    cp "$corpus"/* "$work/$name.corpus/"
    if ! $ci; then
        # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
        (cd "$work" && "./$name" -max_total_time="$seconds" -max_len=65536 \
            ${FUZZ_ARGS:-} "$work/$name.corpus")
        continue
    fi
    rc=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    (cd "$work" && "./$name" -max_total_time="$seconds" -max_len=65536 \
        -seed="${FUZZ_SEED:-1}" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$work/$name.found/" ${FUZZ_ARGS:-} \
        "$work/$name.corpus") >"$work/$name.log" 2>&1 || rc=$?
    grep -E '^(#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs|stat::average_exec_per_sec)' \
        "$work/$name.log" || true
    if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$work/$name.found")" ]; then
        failed+=("$name")
        tail -n 60 "$work/$name.log"
        for f in "$work/$name.found"/*; do
            [ -e "$f" ] || continue
            echo "--- $name found $(basename "$f") ($(stat -c %s "$f") bytes);"
            echo "--- fix it and keep it as a regression, named for what it shows:"
            echo "base64 -d >test/fuzz/corpus/${name#fuzz_}/$(basename "$f") <<'EOF'"
            base64 -w 76 "$f"
            echo "EOF"
        done
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]} (seed ${FUZZ_SEED:-1}); work directory: $work" >&2
    exit 1
fi
if $ci; then
    rm -rf "$work"
    echo "fuzzing done: no crash"
else
    echo "fuzzing done; work directory: $work"
fi
