# lib.sh: helpers for the end-to-end tests: real kvstore processes on
# 127.0.0.1 with free ports and temporary data directories, cleaned up on
# exit whatever happens. Source it; it sets `set -euo pipefail`.
set -euo pipefail

top_builddir=${top_builddir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../build" && pwd)}
KVSTORE=${KVSTORE:-$top_builddir/kvstore}
KVLOAD=${KVLOAD:-$top_builddir/kvload}
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/jaco-$TEST_NAME.XXXXXX")
ELECTION_MS=${ELECTION_MS:-1000}
declare -A PID=() PEER=() CLIENT=() NSWRAP=()
N=0

log() { printf '%s [%s] %s\n' "$(date +%T.%N | cut -c1-12)" "$TEST_NAME" "$*" >&2; }

fail() {
    log "FAIL: $*"
    if [ -n "${ON_FAIL:-}" ]; then
        eval "$ON_FAIL" >&2 || true
    fi
    for f in "$WORK"/log*; do
        [ -f "$f" ] || continue
        echo "---- $f (last 30 lines)" >&2
        tail -n 30 "$f" >&2
    done
    # What each running kvstore node says of itself (its raft indexes).
    for i in "${!PID[@]}"; do
        [ -n "${CLIENT[$i]:-}" ] || continue
        echo "---- node $i status" >&2
        ${CLIENT_WRAP:-} timeout 2 "$KVSTORE" --server "${CLIENT[$i]}" status --json >&2 2>&1 || true
    done
    exit 1
}

cleanup() {
    local rc=$?
    for i in "${!PID[@]}"; do
        kill -CONT "${PID[$i]}" 2>/dev/null || true
        kill -9 "${PID[$i]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ -n "${ON_EXIT:-}" ]; then
        eval "$ON_EXIT" || true
    fi
    if [ $rc -eq 0 ] && [ -z "${KEEP:-}" ]; then
        rm -rf "$WORK"
    else
        log "work directory kept: $WORK"
    fi
}
trap cleanup EXIT

# A port nobody listens on, below the kernel's ephemeral range so that no
# outgoing connection can be holding it.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
# A port nothing listens on and that this test has not handed out before:
# the nodes bind their ports only when they start, so two nodes drawn at
# random could otherwise get the same one (1 test run in about 1500). The
# list is a file because callers run this in a subshell.
free_port() {
    local p
    while :; do
        p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
        if grep -qx "$p" "$WORK/.ports" 2>/dev/null; then
            continue
        fi
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            if ! ss -ltn 2>/dev/null | grep -q ":$p "; then
                echo "$p" >>"$WORK/.ports"
                echo "$p"
                return
            fi
        fi
    done
}

# alloc_nodes COUNT: choose peer and client ports for nodes 1..COUNT.
alloc_nodes() {
    N=$1
    local i
    for ((i = 1; i <= N; i++)); do
        PEER[$i]="127.0.0.1:$(free_port)"
        CLIENT[$i]="127.0.0.1:$(free_port)"
    done
}

initial_cluster() {
    local i s=""
    for ((i = 1; i <= N; i++)); do s+="${s:+,}$i=${PEER[$i]}"; done
    echo "$s"
}

# start_node I [extra kvstore flags...]: start node I in the background
# (with the cluster secret of start_cluster, if there is one).
start_node() {
    local i=$1 auth=()
    shift
    if [ -f "$WORK/secret" ]; then auth=(--secret-file "$WORK/secret"); fi
    # NSWRAP[I] (netns.sh) runs the node inside its network namespace.
    ${NSWRAP[$i]:-} "$KVSTORE" serve --id "$i" --address "${PEER[$i]}" \
        --client "${CLIENT[$i]}" --data-dir "$WORK/n$i" \
        --election-timeout "$ELECTION_MS" "${auth[@]}" "$@" >>"$WORK/log$i" 2>&1 &
    PID[$i]=$!
}

# secret_file: the cluster secret of the test's cluster (made once).
secret_file() {
    if [ ! -f "$WORK/secret" ]; then
        (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$WORK/secret")
    fi
    echo "$WORK/secret"
}

start_cluster() {
    local i ic s
    ic=$(initial_cluster)
    s=$(secret_file)
    for ((i = 1; i <= N; i++)); do start_node "$i" --initial-cluster "$ic" "$@"; done
}

kill_node() { kill -9 "${PID[$1]}" 2>/dev/null || true; wait "${PID[$1]}" 2>/dev/null || true; unset "PID[$1]"; }
stop_node() { kill -TERM "${PID[$1]}"; wait "${PID[$1]}" || fail "node $1 did not exit 0 on SIGTERM"; unset "PID[$1]"; }

# CLIENT_WRAP (netns.sh) runs clients where the nodes' addresses are.
kv() { local i=$1; shift; ${CLIENT_WRAP:-} timeout 20 "$KVSTORE" --server "${CLIENT[$i]}" "$@"; }

status_field() {
    # status_field NODE FIELD: a top-level field of the node's status JSON.
    kv "$1" status --json 2>/dev/null | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",]*\)\"\{0,1\}[,}].*/\1/p" | head -n 1
}

# wait_client I: wait until node I answers on its client port.
wait_client() {
    local i=$1 t
    for ((t = 0; t < 200; t++)); do
        if kv "$i" status --json >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    fail "node $i did not come up"
}

# leader_of NODE: the leader id NODE reports (0 if none).
leader_of() { status_field "$1" leader_id || echo 0; }

# wait_leader NODES...: wait until all the given nodes agree on one leader
# (other than $NOT_LEADER, if set); prints its id.
wait_leader() {
    local l first deadline=$((SECONDS + ${LEADER_WAIT:-60}))
    while ((SECONDS < deadline)); do
        first=""
        for i in "$@"; do
            l=$(leader_of "$i" 2>/dev/null || echo 0)
            if [ -z "$l" ] || [ "$l" = 0 ] || [ "$l" = "${NOT_LEADER:-}" ]; then
                first=""
                break
            fi
            if [ -z "$first" ]; then first=$l; elif [ "$first" != "$l" ]; then first=""; break; fi
        done
        if [ -n "$first" ]; then echo "$first"; return 0; fi
        sleep 0.05
    done
    fail "no agreed leader among nodes $*"
}

# wait_applied NODE INDEX: wait until NODE has applied INDEX.
wait_applied() {
    local t a
    for ((t = 0; t < 600; t++)); do
        a=$(status_field "$1" applied_index || echo 0)
        if [ -n "$a" ] && [ "$a" -ge "$2" ]; then return 0; fi
        sleep 0.05
    done
    fail "node $1 did not apply index $2 (at ${a:-?})"
}

assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }

# ---- jacod tests: node I runs with $WORK/nI.conf, logs to $WORK/logI and
# serves jaco on ${SOCK[I]} ----
JACOD=${JACOD:-$top_builddir/jacod}
JACO=${JACO:-$top_builddir/jaco}
declare -A SOCK=()

start_jacod() {
    ${NSWRAP[$1]:-} "$JACOD" --config "$WORK/n$1.conf" >>"$WORK/log$1" 2>&1 &
    PID[$1]=$!
}

jaco() { local i=$1; shift; timeout 60 "$JACO" --socket "${SOCK[$i]}" "$@"; }

# jfield NODE FIELD: a top-level field of NODE's `jaco -o json cluster status`.
jfield() {
    jaco "$1" -o json cluster status 2>/dev/null |
        sed -n "s/^{.*\"$2\":\"\{0,1\}\([^\",]*\)\"\{0,1\}[,}].*/\1/p"
}

# wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds, or fail.
wait_for() {
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@"; do
        ((SECONDS < deadline)) || fail "timed out waiting for: $what"
        sleep 0.2
    done
}
