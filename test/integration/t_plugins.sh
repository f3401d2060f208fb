#!/bin/bash
# Plugins loaded with dlopen (jacod_plugin.h): the shipped "none" isolation
# plugin loads and self-tests; a plugin built out of tree against the
# header (as jaco-plugins(7) shows) loads as a scheduler; jacod refuses to
# start, naming the path and what is wrong, on a plugin of another ABI,
# one whose struct is too small, one of the wrong kind, a shared object
# without the entry symbol, and a missing file.
. "$(dirname "$0")/lib.sh"

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
NONE=$top_builddir/.libs/jacod-isolation-none.so
[ -f "$NONE" ] || fail "the none plugin is not built: $NONE"

# plugin NAME KIND ABI SIZE-EXPR [ENTRY]: build $WORK/NAME.so out of tree.
plugin() {
    local name=$1 kind=$2 abi=$3 size=$4 entry=${5:-jacod_plugin_entry}
    cat >"$WORK/$name.c" <<EOF
#include <stddef.h>
#include <stdio.h>
#include <jacod_plugin.h>
static int start(const struct jacod_host *h, const char *c, void **s)
{
    struct jacod_node_view v[4];
    char msg[128];
    (void)c;
    *s = 0;
    h->log(h->data, 1, "$name: started on this host");
    /* A member of 0.2: present only if the host's struct is that big. */
    if (h->size >= offsetof(struct jacod_host, nodes) + sizeof h->nodes &&
        h->nodes != NULL && h->audit != NULL) {
        snprintf(msg, sizeof msg, "$name: the host offers audit and nodes (%zu known)",
                 h->nodes(h->data, v, 4));
        h->log(h->data, 1, msg);
    }
    return 0;
}
static void stop(void *s) { (void)s; }
static const struct jacod_sched_ops ops = {sizeof ops};
static const struct jacod_plugin p = {$abi, $size, $kind, "$name", start, stop, &ops};
__attribute__((visibility("default"))) const struct jacod_plugin *
$entry(const struct jacod_host *h) { (void)h; return &p; }
EOF
    cc -shared -fPIC -fvisibility=hidden -Wall -Werror -I"$srcdir/daemon" \
        -o "$WORK/$name.so" "$WORK/$name.c" || fail "cannot build $name.so"
}
plugin good JACOD_PLUGIN_SCHEDULER JACOD_PLUGIN_ABI "sizeof p"
plugin future JACOD_PLUGIN_SCHEDULER 7 "sizeof p"
plugin small JACOD_PLUGIN_SCHEDULER JACOD_PLUGIN_ABI 8
plugin wrongkind JACOD_PLUGIN_ISOLATION JACOD_PLUGIN_ABI "sizeof p"
plugin noentry JACOD_PLUGIN_SCHEDULER JACOD_PLUGIN_ABI "sizeof p" other_symbol

SOCK[1]="$WORK/n1.sock"
conf() { # conf SCHEDULER ISOLATION
    cat >"$WORK/n1.conf" <<EOF
name = n1
data-dir = $WORK/n1
peer-address = 127.0.0.1:$(free_port)
socket = "${SOCK[1]}"
bootstrap = true
scheduler-plugin = $1
isolation-plugin = $2
EOF
}

# Refusals: exit 1 before anything is written, with the path named.
refused() { # refused SCHEDULER ISOLATION PATTERN
    conf "$1" "$2"
    rm -rf "$WORK/n1"
    rc=0
    timeout 20 "$JACOD" --config "$WORK/n1.conf" >"$WORK/out" 2>&1 || rc=$?
    assert_eq "$rc" 1 "exit code of jacod with a bad plugin ($3)"
    grep -q "$3" "$WORK/out" || fail "the refusal does not say '$3': $(cat "$WORK/out")"
    [ ! -e "$WORK/n1/jacoraft.id" ] || fail "jacod wrote its data directory before refusing the plugin"
}
refused "$WORK/future.so" "" "future.so: built for plugin ABI 7, this jacod has ABI 1"
refused "$WORK/small.so" "" "small.so: its plugin struct is 8 bytes"
refused "$WORK/wrongkind.so" "" "wrongkind.so is a isolation plugin"
refused "$WORK/noentry.so" "" "noentry.so: no jacod_plugin_entry symbol"
refused "$WORK/missing.so" "" "missing.so: cannot load"
refused "" "$WORK/good.so" "good.so is a scheduler plugin"

# The out-of-tree scheduler and the shipped none isolation load.
conf "$WORK/good.so" "$NONE"
rm -rf "$WORK/n1"
start_jacod 1
wait_for 30 "n1 leads" bash -c "timeout 10 '$JACO' --socket '${SOCK[1]}' -o json cluster status 2>/dev/null | grep -q '\"leader_name\":\"n1\"'"
grep -q 'good: started on this host' "$WORK/log1" || fail "the plugin's log line is not in jacod's log"
grep -q 'good: the host offers audit and nodes (0 known)' "$WORK/log1" || fail "the host services of 0.2 are not offered"
grep -q 'scheduler plugin good (.*good.so) loaded' "$WORK/log1" || fail "the scheduler load is not logged"
grep -q 'isolation plugin none (.*): self-test ok' "$WORK/log1" || fail "the none self-test is not logged: $(cat "$WORK/log1")"
stop_node 1
log "plugins: 6 refusals named, out-of-tree scheduler and none isolation loaded"
