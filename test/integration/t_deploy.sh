#!/bin/bash
# Deployments end to end with 4 real jacod (jaco.yaml(5), jaco(8)): bad
# manifests are refused with file:line and change nothing; a deployment's
# replicas run as real processes, spread over the READY hosts and never on
# the host whose isolation self-test failed (NODE_STATUS_ISOLATION_UNAVAILABLE);
# a replica killed with SIGKILL is restarted; a command that always fails is
# failed: restart_exhausted after 3 attempts, and a new apply (revision)
# resets its attempts; a command that cannot run is failed: exec_failed;
# replicas keep running on a host cut off from the quorum; a pinned replica
# on a stopped host is pending (cannot satisfy host placement: n3
# unreachable), an unpinned one moves, and after node remove --force the
# pinned one says "n3 removed"; jaco delete stops the replicas; a host
# restarted with a failed isolation self-test starts none of its replicas.
. "$(dirname "$0")/lib.sh"

SPREAD=$top_builddir/.libs/jacod-scheduler-spread.so
[ -f "$SPREAD" ] || fail "the spread scheduler is not built: $SPREAD"
srcdir=$(cd "$(dirname "$0")/../.." && pwd)

# An isolation plugin whose self-test fails, built out of tree.
cat >"$WORK/noiso.c" <<'EOF'
#include <stdio.h>
#include <jacod_plugin.h>
static int start(const struct jacod_host *h, const char *c, void **s)
{ (void)h; (void)c; *s = 0; return 0; }
static void stop(void *s) { (void)s; }
static int self_test(void *s, char *why, size_t n)
{ (void)s; snprintf(why, n, "no nf_tables in this test kernel"); return -9; }
static int reconcile(void *s, char *d, size_t n) { (void)s; (void)d; (void)n; return 0; }
static const struct jacod_iso_ops ops = {sizeof ops, self_test, reconcile, 0};
static const struct jacod_plugin p = {JACOD_PLUGIN_ABI, sizeof p,
    JACOD_PLUGIN_ISOLATION, "noiso", start, stop, &ops};
__attribute__((visibility("default"))) const struct jacod_plugin *
jacod_plugin_entry(const struct jacod_host *h) { (void)h; return &p; }
EOF
cc -shared -fPIC -fvisibility=hidden -Wall -Werror -I"$srcdir/daemon" \
    -o "$WORK/noiso.so" "$WORK/noiso.c" || fail "cannot build noiso.so"

N=4
ic=""
for i in 1 2 3 4; do
    PEER[$i]="127.0.0.1:$(free_port)"
    SOCK[$i]="$WORK/$i.sock"
    ic+="${ic:+,}n$i=${PEER[$i]}"
done
secret=$(secret_file)
for i in 1 2 3 4; do
    cat >"$WORK/n$i.conf" <<EOF
name = n$i
data-dir = $WORK/n$i
peer-address = ${PEER[$i]}
socket = "${SOCK[$i]}"
initial-cluster = $ic
secret-file = $secret
election-timeout = $ELECTION_MS
scheduler-plugin = $SPREAD
restart-backoff = 200
stop-timeout = 2000
reschedule-after = 2s
EOF
done
echo "isolation-plugin = $WORK/noiso.so" >>"$WORK/n4.conf"
for i in 1 2 3 4; do start_jacod "$i"; done

# status LINE helpers: `jaco status` rows are REPLICA HOST ATTEMPTS REV PID
# STATE...
row() { jaco "${AT:-1}" status 2>/dev/null | awk -v r="$1" '$1 == r'; }
col() { row "$1" | awk -v c="$2" '{print $c}'; }
state_of() { row "$1" | sed 's/^\([^ ]* *\)\{5\}//'; }
state_is() { [[ "$(state_of "$1")" == $2 ]]; }
# On a failure, the replicas of killed jacods go too.
ON_EXIT='for f in "$WORK"/n*/replicas/running; do [ -f "$f" ] && awk "{print \$1}" "$f" | while read -r p; do kill -9 -- "-$p"; done; done 2>/dev/null'
ON_FAIL='echo "---- jaco status and node list"; jaco 1 status; jaco 1 node list'
wait_for 60 "the cluster serves" jaco 1 node label n1 up=yes
wait_for 30 "n4 is ISOLATION_UNAVAILABLE" bash -c \
    "timeout 10 '$JACO' --socket ${SOCK[1]} node list | grep -q '^n4 .*ISOLATION_UNAVAILABLE .*unavailable'"
wait_for 30 "every host reports its runtime" bash -c \
    "[ \$(timeout 10 '$JACO' --socket ${SOCK[1]} -o json node list | grep -o '\"runtime\":\"spread\"' | wc -l) = 4 ]"
grep -q '^n1 .*READY .* none ' <<<"$(jaco 1 node list)" || fail "n1 is not READY without isolation: $(jaco 1 node list)"

# ---- bad manifests: refused with file and line, nothing applied ----
cat >"$WORK/bad.yaml" <<'EOF'
deployments:
  web:
    services:
      api:
        replicas: two
        command: [/bin/sleep, "1000"]
EOF
rc=0
jaco 1 apply -f "$WORK/bad.yaml" >"$WORK/out" 2>&1 || rc=$?
assert_eq "$rc" 1 "exit code of jaco apply with a bad manifest"
grep -q "^jaco: $WORK/bad.yaml:5: deployments.web.services.api.replicas: expected an integer from 0 to 64, got \"two\"" "$WORK/out" ||
    fail "the refusal does not name file, line and field: $(cat "$WORK/out")"
printf 'deployments:\n  web:\n    services:\n      api:\n        command: [x]\n        placment: {hosts: [n1]}\n' >"$WORK/typo.yaml"
jaco 1 apply -f "$WORK/typo.yaml" 2>"$WORK/out" && fail "a misspelt key was accepted"
grep -q "typo.yaml:6: deployments.web.services.api.placment: unknown key" "$WORK/out" ||
    fail "the typo is not named: $(cat "$WORK/out")"
jaco 1 apply -f "$WORK/missing.yaml" 2>"$WORK/out" && fail "a missing file was accepted"
grep -q "missing.yaml: No such file or directory" "$WORK/out" || fail "missing file: $(cat "$WORK/out")"
rc=0
jaco 1 apply --bogus 2>/dev/null || rc=$?
assert_eq "$rc" 2 "exit code of jaco apply --bogus"
grep -q '^no deployments' <<<"$(jaco 1 status)" || fail "a refused manifest changed the state: $(jaco 1 status)"

# ---- a deployment: spread, real processes, never on n4 ----
cat >"$WORK/web.yaml" <<EOF
deployments:
  web:
    services:
      api:
        replicas: 4
        command: [/bin/sh, -c, 'echo "\$JACO_HOST \$JACO_REPLICA \$\$" >>$WORK/ran; echo "replica \$JACO_REPLICA up"; exec sleep 1000']
        ports: [20080]
      flaky:
        command: 'test -e $WORK/broken && exit 1; exec sleep 1000'
      nope:
        command: [/nonexistent/program]
  db:
    services:
      main:
        command: [sleep, "1000"]
        placement:
          hosts: [n3]
      cache:
        command: [sleep, "1000"]
        placement:
          hosts: [n3, n4]
EOF
touch "$WORK/broken"
grep -q 'deployment web: valid' <<<"$(jaco 1 apply -f "$WORK/web.yaml" --dry-run)" || fail "dry run"
grep -q '^no deployments' <<<"$(jaco 1 status)" || fail "a dry run applied"
jaco 2 apply -f "$WORK/web.yaml" >"$WORK/out" || fail "apply: $(cat "$WORK/out")"
grep -q '^deployment web: revision 1$' "$WORK/out" || fail "apply output: $(cat "$WORK/out")"
wait_for 30 "4 api replicas running" bash -c \
    "[ \$(timeout 10 '$JACO' --socket ${SOCK[2]} status web/api | grep -c '^web/api/.* running\$') = 4 ]"
hosts=$(for k in 0 1 2 3; do col "web/api/$k" 2; done | sort | uniq -c | awk '{print $2 ":" $1}' | tr '\n' ' ')
assert_eq "$hosts" "n1:2 n2:1 n3:1 " "api replicas per host (n4 has no isolation)"
for k in 0 1 2 3; do
    pid=$(col "web/api/$k" 5)
    kill -0 "$pid" 2>/dev/null || fail "web/api/$k: pid $pid is not running"
done
[ "$(wc -l <"$WORK/ran")" -eq 4 ] || fail "the command ran $(wc -l <"$WORK/ran") times, not 4"
grep -q "^n1 0 " "$WORK/ran" || fail "JACO_HOST/JACO_REPLICA not in the environment: $(cat "$WORK/ran")"
wait_for 20 "db/cache on n3 (not n4)" state_is db/cache/0 running
assert_eq "$(col db/cache/0 2)" n3 "host of db/cache/0"
# exec_failed at once; flaky exhausted after 3 attempts.
wait_for 20 "nope fails with exec_failed" state_is web/nope/0 "failed: exec_failed: exec /nonexistent/program: No such file or directory*"
wait_for 20 "flaky restart_exhausted" state_is web/flaky/0 "failed: restart_exhausted: exited with status 1 (3 failures in a row)*"
assert_eq "$(col web/flaky/0 3)" 3 "attempts of the exhausted replica"
grep -q 'web/flaky/0: restart_exhausted' <<<"$(jaco 1 audit --type replica.failed)" || fail "no replica.failed audit event"
h0=$(col web/api/0 2)
grep -q '^replica 0 up$' "$WORK/n${h0#n}/replicas/web.api.0.log" ||
    fail "the replica's output is not in its log file"

# ---- a replica killed is restarted ----
victim=$(col web/api/1 5)
vhost=$(col web/api/1 2)
kill -9 "$victim"
wait_for 20 "web/api/1 restarted" bash -c \
    "row() { timeout 10 '$JACO' --socket ${SOCK[1]} status | awk '\$1 == \"web/api/1\"'; };
     r=\$(row); [ \"\$(awk '{print \$3}' <<<\"\$r\")\" = 2 ] && [[ \"\$r\" == *running* ]]"
[ "$(col web/api/1 5)" != "$victim" ] || fail "the pid did not change"
assert_eq "$(col web/api/1 2)" "$vhost" "host of the restarted replica"
grep -q "replica web/api/1: started, pid .* (attempt 2)" "$WORK/log${vhost#n}" || fail "the restart is not logged"

# ---- a new revision resets the attempts ----
rm -f "$WORK/broken"
grep -q '^deployment web: revision 2$' <<<"$(jaco 1 apply -f "$WORK/web.yaml")" || fail "re-apply"
wait_for 20 "flaky runs at revision 2" state_is web/flaky/0 running
assert_eq "$(col web/flaky/0 3)" 1 "attempts after the new revision"
assert_eq "$(col web/flaky/0 4)" 2 "revision of web/flaky/0"
# -w returns once every replica settled: 1 since nope failed.
rc=0
timeout 30 "$JACO" --socket "${SOCK[1]}" status -w web >"$WORK/out" 2>&1 || rc=$?
assert_eq "$rc" 1 "exit code of status -w with a failed replica"
grep -q '6 replica(s): 5 running, 1 failed, 0 not settled' "$WORK/out" || fail "status -w: $(cat "$WORK/out")"
timeout 30 "$JACO" --socket "${SOCK[1]}" status -w --timeout 20s db >/dev/null || fail "status -w db"
grep -q '"name":"cache"' <<<"$(jaco 1 -o json status db)" || fail "status -o json"

# ---- cut off from the quorum: the replicas keep running ----
p1=""
for k in 0 1 2 3; do
    if [ "$(col web/api/$k 2)" = n1 ]; then p1=$(col web/api/$k 5); break; fi
done
kill -STOP "${PID[2]}" "${PID[3]}" "${PID[4]}"
sleep 4
kill -0 "$p1" || fail "a replica of n1 stopped while n1 was cut off"
jaco 1 status >/dev/null || fail "status on the cut-off node"
kill -CONT "${PID[2]}" "${PID[3]}" "${PID[4]}"
wait_for 30 "the cluster serves again" jaco 1 node label n1 back=yes

# ---- n3 stops: pinned db/main pending, unpinned api moves ----
p3=$(col db/main/0 5)
moved=""
for k in 0 1 2 3; do
    if [ "$(col web/api/$k 2)" = n3 ]; then moved=web/api/$k; break; fi
done
stop_node 3
kill -0 "$p3" 2>/dev/null && fail "n3's replica survived n3's jacod stopping"
wait_for 30 "db/main pending" state_is db/main/0 "pending: cannot satisfy host placement: n3 unreachable*"
# db/cache may use n4 only, which has no isolation.
wait_for 30 "db/cache pending" state_is db/cache/0 "pending: cannot satisfy host placement: n3 unreachable, n4 isolation unavailable*"
wait_for 30 "$moved moved off n3" bash -c \
    "timeout 10 '$JACO' --socket ${SOCK[1]} status | awk '\$1 == \"$moved\" && \$2 != \"n3\" && /running/' | grep -q ."
jaco 1 node remove --force n3 >/dev/null || fail "node remove --force n3"
wait_for 30 "db/main says n3 removed" state_is db/main/0 "pending: cannot satisfy host placement: n3 removed*"

# ---- delete stops the replicas; a stopping jacod stops its own ----
grep -q 'deployment web: deleted' <<<"$(jaco 1 delete web)" || fail "delete"
wait_for 20 "web's processes stopped" bash -c "! kill -0 $p1 2>/dev/null"
rc=0
jaco 1 status web 2>"$WORK/out" || rc=$?
assert_eq "$rc" 1 "status of a deleted deployment"
grep -q 'not_found' "$WORK/out" || fail "status of a deleted deployment: $(cat "$WORK/out")"
printf 'deployments:\n  tail:\n    services:\n      s:\n        replicas: 2\n        command: [sleep, "1000"]\n' >"$WORK/tail.yaml"
jaco 1 apply -f "$WORK/tail.yaml" >/dev/null || fail "apply tail"
timeout 30 "$JACO" --socket "${SOCK[1]}" status -w --timeout 20s tail >/dev/null || fail "tail does not run"
# A host restarted with a failing isolation self-test starts nothing of
# what was placed on it: the leader places it elsewhere.
on1=""
for k in 0 1; do [ "$(col tail/s/$k 2)" = n1 ] && on1=tail/s/$k; done
[ -n "$on1" ] || fail "no tail replica on n1: $(jaco 1 status tail)"
stop_node 1
echo "isolation-plugin = $WORK/noiso.so" >>"$WORK/n1.conf"
: >"$WORK/log1"
start_jacod 1
AT=2 wait_for 30 "$on1 leaves n1" bash -c \
    "timeout 10 '$JACO' --socket ${SOCK[2]} status | awk '\$1 == \"$on1\" && \$2 == \"n2\" && / running\$/' | grep -q ."
grep -q "replica $on1: started" "$WORK/log1" && fail "n1 started $on1 without isolation"
left=$(AT=2 jaco 2 status tail | awk '$1 ~ /^tail\// {print $5}')
[ "$(wc -w <<<"$left")" = 2 ] || fail "tail pids: $left"
for i in 1 2 4; do stop_node "$i"; done
for p in $left; do
    kill -0 "$p" 2>/dev/null && fail "replica pid $p outlived its jacod"
done
log "deployments: refusals with file:line, spread without the isolation-less host, restart, restart_exhausted and reset, exec_failed, replicas kept through a quorum loss, pinned pending (unreachable, removed), unpinned moved, delete, stop"
