#!/bin/bash
# A full disk (a real 24 MiB tmpfs under the data directory): writes fail
# with no_space while the node keeps running, nothing acknowledged is lost,
# and writes succeed again once there is space, without a restart.
. "$(dirname "$0")/lib.sh"

mkdir -p "$WORK/disk"
if ! mount -t tmpfs -o size=24m tmpfs "$WORK/disk" 2>/dev/null; then
    log "SKIP: cannot mount a tmpfs here (not root?); the log store's"
    log "ENOSPC handling is still covered by test_logstore's fault hook"
    exit 77
fi
ON_EXIT="umount '$WORK/disk'"

alloc_nodes 1
"$KVSTORE" serve --id 1 --address "${PEER[1]}" --client "${CLIENT[1]}" \
    --data-dir "$WORK/disk/n1" --bootstrap >>"$WORK/log1" 2>&1 &
PID[1]=$!
wait_client 1
wait_leader 1 >/dev/null

# 60 MB of values into 24 MB: the disk fills up part way.
if "$KVLOAD" --servers "${CLIENT[1]}" --inflight 16 --count 60000 \
    --value-size 1000 --prefix full --ack-file "$WORK/acked" \
    >"$WORK/load.out" 2>"$WORK/load.err"; then
    fail "60 MB fitted in a 24 MB file system"
fi
grep -q "ERR no_space" "$WORK/load.err" || fail "no no_space error: $(head -3 "$WORK/load.err")"
kill -0 "${PID[1]}" 2>/dev/null || fail "the node died when the disk filled up"
log "disk full after $(wc -l <"$WORK/acked") acknowledged writes"
"$KVLOAD" --servers "${CLIENT[1]}" --verify "$WORK/acked" >&2 ||
    fail "acknowledged writes lost on a full disk"

mount -o remount,size=128m "$WORK/disk"
"$KVLOAD" --servers "${CLIENT[1]}" --inflight 16 --count 2000 \
    --value-size 1000 --prefix more --ack-file "$WORK/acked" >/dev/null ||
    fail "writes did not resume once there was space"

stop_node 1
"$KVSTORE" serve --id 1 --address "${PEER[1]}" --client "${CLIENT[1]}" \
    --data-dir "$WORK/disk/n1" >>"$WORK/log1" 2>&1 &
PID[1]=$!
wait_client 1
wait_leader 1 >/dev/null
"$KVLOAD" --servers "${CLIENT[1]}" --verify "$WORK/acked" >&2 ||
    fail "acknowledged writes lost after a restart"
log "ok"
