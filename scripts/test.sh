#!/bin/bash
# test.sh: builds with -Werror and runs every test (`make check`: unit tests
# and real multi-process cluster tests), then the same under ASan+UBSan, the
# unit tests under valgrind, and the man page lint.
. "$(dirname "$0")/common.sh"
ensure_packages valgrind mandoc clang-format netcat-openbsd

failed=()
step() {
    local name=$1
    shift
    local t0=$SECONDS
    echo "==> $name" >&2
    if "$@"; then
        echo "--- $name: ok ($((SECONDS - t0)) s)" >&2
    else
        echo "--- $name: FAILED ($((SECONDS - t0)) s)" >&2
        failed+=("$name")
    fi
}

check_in() {
    local dir=$ROOT/$1 tests=("${@:2}")
    # Programs in parallel, tests one at a time: the cluster tests measure
    # failover times and must not compete for the two cores.
    make -C "$dir" -j"$(nproc)" check TESTS= >/dev/null || return 1
    if [ ${#tests[@]} -eq 0 ]; then
        tests=($(make -s -C "$dir" print-tests))
    fi
    if ! make -C "$dir" check TESTS="${tests[*]}"; then
        find "$dir/test" -name '*.log' -newer "$dir/Makefile" -exec grep -l -E '^(FAIL|ERROR)' {} + 2>/dev/null |
            while read -r f; do echo "---- $f" >&2; tail -n 60 "$f" >&2; done
        return 1
    fi
}

build build --enable-werror
# t_crash last, on its own: it times nothing (its waits are deadlines of
# tens of seconds), so the sanitizer build compiles beside it at the lowest
# priority, which saves CI the build's minute and a half. The other cluster
# tests measure failovers and run with the machine to themselves.
plain_check() {
    local t tests=()
    for t in $(make -s -C "$ROOT/build" print-tests); do
        [ "$t" = test/integration/t_crash.sh ] || tests+=("$t")
    done
    check_in build "${tests[@]}"
}
crash_check() {
    local asan_log rc=0
    asan_log=$(mktemp)
    (nice -n 19 bash -c "$(declare -f build); ROOT='$ROOT'; \
        build build-asan --enable-werror --enable-sanitizers &&
        make -C '$ROOT/build-asan' -j$(nproc) check TESTS= >/dev/null") \
        >"$asan_log" 2>&1 &
    local asan_pid=$!
    check_in build test/integration/t_crash.sh || rc=1
    wait "$asan_pid" || { cat "$asan_log" >&2; echo "the sanitizer build failed" >&2; }
    rm -f "$asan_log"
    return $rc
}
step "make check" plain_check
step "make check: the crash test, the sanitizer build beside it" crash_check
# The benchmark programs are built by `make bench` only: build them here
# too, so that a change that breaks them shows up in CI.
step "bench programs build" make -C "$ROOT/build" -j"$(nproc)" \
    bench/bench_raw bench/bench_floor bench/etcd_load bench/bench_lib

check_sanitized() {
    # The crash test's 100 rounds run in the plain build; 10 here. Tests
    # that only time elections and failovers (no code path of their own)
    # run in the plain build only, to keep CI well under 15 minutes.
    # The network-fault tests (a cut link is a lost connection and an
    # election, which t_crash, t_restart and t_jacod_membership take under
    # the sanitizers) run in the plain build only too.
    local skip=" test/integration/t_partition.sh test/integration/t_flapping.sh test/integration/t_leader_kill.sh test/integration/t_no_leader.sh test/integration/t_quorum_lost.sh test/integration/t_netfaults.sh test/integration/t_rolling.sh test/integration/t_linearizable.sh test/integration/t_jacod_partition.sh "
    local t tests=()
    for t in $(make -s -C "$ROOT/build-asan" print-tests); do
        [[ $skip == *" $t "* ]] || tests+=("$t")
    done
    CRASH_ROUNDS=10 ASAN_OPTIONS=detect_leaks=1 \
        LSAN_OPTIONS=suppressions=$ROOT/test/lsan.supp \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 check_in build-asan "${tests[@]}"
}
build build-asan --enable-werror --enable-sanitizers
step "make check (ASan+UBSan)" check_sanitized

# valgrind's run of the unit tests and the fuzzers each keep one core busy
# and time nothing: they run side by side (valgrind's output is shown when
# it ends), which saves CI most of a minute.
valgrind_log=$(mktemp)
(step "unit tests under valgrind" env CK_FORK=no valgrind -q --leak-check=full \
    --error-exitcode=1 --suppressions="$ROOT/test/valgrind.supp" \
    "$ROOT/build/test/unit/test_unit"
    [ ${#failed[@]} -eq 0 ]) >"$valgrind_log" 2>&1 &
valgrind_pid=$!

format_check() {
    (cd "$ROOT" && git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror)
}
step "clang-format" format_check

step "man page lint" mandoc -T lint -W warning "$ROOT"/man/man*/*.[0-9]

# Every fuzz target for 10 s with a fixed seed; a crash fails the step and
# prints the input to keep. libFuzzer's runtime is in libclang-rt-dev, which
# clang only recommends.
ensure_packages clang libclang-rt-dev
step "fuzzing (4 s a target)" env FUZZ_SECONDS=4 bash "$ROOT/test/fuzz/run.sh" --ci
if ! wait "$valgrind_pid"; then
    failed+=("unit tests under valgrind")
fi
cat "$valgrind_log" >&2
rm -f "$valgrind_log"

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "all test steps passed" >&2
