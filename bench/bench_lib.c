/* bench_lib.c: one node of a 3-node libjacoraft cluster whose leader drives
 * a fixed write load through the public API (jr_apply, callback-driven, W
 * writes in flight) and prints its commit latency as JSON, in the format of
 * bench_raw.c, which does the same on bare canonical/raft. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jacoraft.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loadutil.h"

#define COMMAND_SIZE 100
#define MAX_MEMBERS 16

/* One write in flight. */
struct slot {
    struct jr_apply req;
    uint64_t submitted_ns;
};

static struct jr_node *node;
static uint64_t my_id;
static unsigned inflight = 1;        /* jr_apply calls kept in flight */
static uint64_t count = 10000;       /* writes to commit */
static uint64_t duration_ms = 0;     /* stop submitting after this; 0: off */
static uint64_t timeout_ms = 120000; /* give up if not done by then */
static unsigned char command[COMMAND_SIZE];
static bool verbose;     /* the library's debug lines on stderr */
static uint64_t slow_us; /* log each write slower than this (0: none) */
/* Writes done before the clock starts: the first ones after an election
 * wait for the followers to hear of the new leader. */
static uint64_t warmup = 100;

/* The FSM's state; apply, snapshot and restore run on the loop thread, and
 * main reads nothing of it. */
static uint64_t applied;
static unsigned snapshots;

/* The load's bookkeeping: touched only on the loop thread (the barrier and
 * apply callbacks) until `done` is set under `mutex`; main reads it after. */
static struct slot *slots;
static uint64_t *lat_ns; /* one latency per committed write */
static uint64_t submitted, completed, warmed, t_start_ns, t_end_ns,
    t_deadline_ns;
static struct jr_barrier start_barrier;
static bool loop_done; /* loop thread only: the load has ended */
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static bool done, failed; /* under mutex: what main waits for */
static char failure[512];

/* ---- the FSM: a counter of applied commands ---- */

static int fsm_apply(void *data,
                     uint64_t index,
                     const void *buf,
                     size_t len,
                     void **result,
                     size_t *result_len)
{
    (void)data;
    (void)index;
    (void)buf;
    (void)len;
    (void)result;
    (void)result_len;
    applied++;
    return 0;
}

static int fsm_snapshot(void *data, struct jr_snapshot_writer *w)
{
    (void)data;
    snapshots++;
    return jr_snapshot_write(w, &applied, sizeof applied);
}

static int fsm_restore(void *data, struct jr_snapshot_reader *r)
{
    (void)data;
    if (jr_snapshot_remaining(r) != sizeof applied) {
        return -1;
    }
    (void)jr_snapshot_read(r, &applied, sizeof applied);
    return 0;
}

/* ---- the load, driven by the leader, on the loop thread ---- */

static void finish(bool ok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void finish(bool ok, const char *fmt, ...)
{
    loop_done = true;
    pthread_mutex_lock(&mutex);
    if (!done) {
        done = true;
        failed = !ok;
        t_end_ns = now_ns();
        if (fmt != NULL) {
            va_list ap;
            va_start(ap, fmt);
            (void)vsnprintf(failure, sizeof failure, fmt, ap);
            va_end(ap);
        }
    }
    pthread_mutex_unlock(&mutex);
}

static void apply_cb(struct jr_apply *req,
                     int status,
                     const void *result,
                     size_t result_len);

/* One line per slow write, stamped like the library's log lines so the two
 * can be read side by side (--slow-us, to find what a stall coincides
 * with). */
static void log_slow(uint64_t nth, uint64_t lat)
{
    struct timespec ts;
    struct tm tm;
    char when[16];
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    (void)localtime_r(&ts.tv_sec, &tm);
    (void)strftime(when, sizeof when, "%H:%M:%S", &tm);
    fprintf(stderr,
            "%s.%03ld bench_lib: write %" PRIu64 " took %" PRIu64 " us\n", when,
            ts.tv_nsec / 1000000, nth, lat / 1000);
}

static int submit(struct slot *s)
{
    int rv;
    s->req.data = s;
    s->submitted_ns = now_ns();
    rv = jr_apply(node, &s->req, command, sizeof command, apply_cb);
    if (rv == 0) {
        submitted++;
    }
    return rv;
}

static bool may_submit(void)
{
    return submitted < count + warmup &&
           (t_deadline_ns == 0 || now_ns() < t_deadline_ns);
}

static void apply_cb(struct jr_apply *req,
                     int status,
                     const void *result,
                     size_t result_len)
{
    struct slot *s = req->data;
    uint64_t lat = now_ns() - s->submitted_ns;
    (void)result;
    (void)result_len;
    if (loop_done) {
        return;
    }
    if (status != 0) {
        finish(false, "apply: %s: %s", jr_err_name(status), req->errmsg);
        return;
    }
    if (warmed < warmup) {
        if (++warmed == warmup) {
            t_start_ns = now_ns();
        }
    } else {
        lat_ns[completed++] = lat;
    }
    if (slow_us > 0 && lat > slow_us * 1000u && warmed == warmup) {
        log_slow(completed, lat);
    }
    if (may_submit()) {
        int rv = submit(s);
        if (rv != 0) {
            finish(false, "jr_apply: %s", jr_strerror(rv));
        }
        return;
    }
    if (completed + warmed == submitted) {
        finish(true, NULL);
    }
}

/* The leader's term is committed and applied here: start the clock. */
static void barrier_cb(struct jr_barrier *req, int status)
{
    unsigned i;
    if (status != 0) {
        finish(false, "barrier: %s: %s", jr_err_name(status), req->errmsg);
        return;
    }
    t_start_ns = now_ns();
    if (duration_ms > 0) {
        t_deadline_ns = t_start_ns + duration_ms * 1000000u;
    }
    for (i = 0; i < inflight && may_submit(); i++) {
        int rv = submit(&slots[i]);
        if (rv != 0) {
            finish(false, "jr_apply: %s", jr_strerror(rv));
            return;
        }
    }
}

/* On main, once done. */
static void report(void)
{
    uint64_t n = completed;
    double secs = (double)(t_end_ns - t_start_ns) / 1e9;
    uint64_t p50 = 0, p99 = 0, max = 0, loop_max_us = 0;
    struct jr_status *st;
    if (jr_node_status(node, &st) == 0) {
        loop_max_us = st->loop_busy_max_us;
        jr_status_free(st);
    }
    if (n > 0) {
        qsort(lat_ns, n, sizeof *lat_ns, cmp_u64);
        p50 = lat_ns[n / 2];
        p99 = lat_ns[n * 99 / 100];
        max = lat_ns[n - 1];
    }
    printf("{\"inflight\":%u,\"batch\":1,\"entries\":%" PRIu64
           ",\"seconds\":%.3f,\"per_second\":%.0f,\"p50_us\":%.0f,"
           "\"p99_us\":%.0f,\"max_us\":%.0f,\"snapshots\":%u,"
           "\"warmup\":%" PRIu64 ",\"loop_busy_max_us\":%" PRIu64 "}\n",
           inflight, n, secs, secs > 0 ? (double)n / secs : 0.0, p50 / 1e3,
           p99 / 1e3, max / 1e3, snapshots, warmup, loop_max_us);
    fflush(stdout);
}

/* ---- command line ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_lib --id N --address HOST:PORT --dir DIR "
            "--cluster 1=HOST:PORT,2=...,3=...\n"
            "                 --secret-file FILE (the cluster secret, 64 hex "
            "digits)\n"
            "                 [--inflight W] [--count N] [--duration-ms MS]\n"
            "                 [--snapshot-threshold N (0: off; default: the "
            "library's)] [--timeout-ms MS]\n"
            "                 [--verbose (the library's debug log)]\n"
            "                 [--slow-us US (log each write slower than US)]\n"
            "                 [--warmup N (writes before the clock starts; "
            "default 100)]\n");
    exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s)
{
    char *end;
    unsigned long long v;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s) {
        fprintf(stderr, "bench_lib: %s: bad number '%s'\n", opt, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},
        {"address", required_argument, NULL, 'a'},
        {"dir", required_argument, NULL, 'd'},
        {"secret-file", required_argument, NULL, 'S'},
        {"cluster", required_argument, NULL, 'c'},
        {"inflight", required_argument, NULL, 'w'},
        {"count", required_argument, NULL, 'n'},
        {"duration-ms", required_argument, NULL, 'D'},
        {"snapshot-threshold", required_argument, NULL, 's'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {"verbose", no_argument, NULL, 'v'},
        {"slow-us", required_argument, NULL, 'U'},
        {"warmup", required_argument, NULL, 'W'},
        {NULL, 0, NULL, 0},
    };
    static const struct jr_fsm fsm = {
        .apply = fsm_apply,
        .snapshot = fsm_snapshot,
        .restore = fsm_restore,
    };
    const char *address = NULL, *dir = NULL, *secret_file = NULL;
    unsigned char secret[JR_SECRET_SIZE];
    char *cluster = NULL, *save = NULL, *tok;
    long long threshold = -1; /* -1: the library's default */
    struct jr_member members[MAX_MEMBERS];
    unsigned n_members = 0;
    struct jr_config cfg;
    struct jr_error err;
    sigset_t sigs;
    struct timespec poll_interval = {0, 5 * 1000000};
    uint64_t t_boot_ns;
    bool driving = false, saw_other_leader = false, stop = false;
    int opt, rv, code = 0;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
            case 'i': my_id = parse_u64("--id", optarg); break;
            case 'a': address = optarg; break;
            case 'd': dir = optarg; break;
            case 'S': secret_file = optarg; break;
            case 'c': cluster = optarg; break;
            case 'w':
                inflight = (unsigned)parse_u64("--inflight", optarg);
                break;
            case 'n': count = parse_u64("--count", optarg); break;
            case 'D': duration_ms = parse_u64("--duration-ms", optarg); break;
            case 's':
                threshold =
                    (long long)parse_u64("--snapshot-threshold", optarg);
                if (threshold == 0) {
                    threshold = 1ll << 30;
                }
                break;
            case 'T': timeout_ms = parse_u64("--timeout-ms", optarg); break;
            case 'v': verbose = true; break;
            case 'U': slow_us = parse_u64("--slow-us", optarg); break;
            case 'W': warmup = parse_u64("--warmup", optarg); break;
            default: usage();
        }
    }
    if (optind != argc || my_id == 0 || address == NULL || dir == NULL ||
        cluster == NULL || secret_file == NULL || inflight == 0 || count == 0 ||
        threshold > (long long)UINT32_MAX) {
        usage();
    }
    for (tok = strtok_r(cluster, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL || n_members == MAX_MEMBERS) {
            usage();
        }
        *eq = '\0';
        members[n_members].id = parse_u64("--cluster", tok);
        members[n_members].address = eq + 1;
        n_members++;
    }
    slots = calloc(inflight, sizeof *slots);
    lat_ns = malloc(sizeof *lat_ns * count);
    if (slots == NULL || lat_ns == NULL) {
        return 1;
    }
    memset(command, 'x', sizeof command);

    /* SIGTERM and SIGINT are taken by main with sigtimedwait; blocking them
     * before the node starts keeps them off the loop thread. A peer that
     * exits must not kill us with SIGPIPE. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    jr_config_init(&cfg);
    cfg.id = my_id;
    cfg.address = address;
    cfg.data_dir = dir;
    /* Warnings and errors only, unless --verbose: then everything, e.g.
     * "snapshot at index N" for each snapshot (run.sh counts them). */
    cfg.log_level = verbose ? JR_LOG_DEBUG : JR_LOG_WARN;
    cfg.fsm = &fsm;
    if (threshold > 0) {
        cfg.snapshot_threshold = (unsigned)threshold;
    }
    if ((rv = jr_node_open(&cfg, &node, &err)) != 0 ||
        (rv = jr_secret_read_file(secret_file, secret, &err)) != 0 ||
        (rv = jr_node_set_secret(node, secret, sizeof secret, &err)) != 0 ||
        (rv = jr_node_bootstrap(node, members, n_members, &err)) != 0 ||
        (rv = jr_node_start(node, &err)) != 0) {
        fprintf(stderr, "bench_lib[%llu]: %s\n", (unsigned long long)my_id,
                err.message);
        jr_node_close(node);
        return 1;
    }

    /* Every 5 ms: become the driver on first leadership; a node that has
     * already followed another leader never drives (when the driver exits,
     * the others must not start a second run), and stops asking for the
     * status, which is a round trip to its loop thread. */
    t_boot_ns = now_ns();
    while (!stop) {
        bool finished;
        if (sigtimedwait(&sigs, NULL, &poll_interval) > 0) {
            break;
        }
        if (now_ns() - t_boot_ns > timeout_ms * 1000000u) {
            fprintf(stderr, "bench_lib[%llu]: timed out\n",
                    (unsigned long long)my_id);
            code = driving ? 1 : 0;
            break;
        }
        pthread_mutex_lock(&mutex);
        finished = done;
        pthread_mutex_unlock(&mutex);
        if (finished) {
            if (failed) {
                fprintf(stderr, "bench_lib[%llu]: %s\n",
                        (unsigned long long)my_id, failure);
                code = 1;
            } else {
                report();
            }
            break;
        }
        if (!driving && !saw_other_leader) {
            struct jr_status *st;
            if (jr_node_status(node, &st) != 0) {
                continue;
            }
            if (st->leader_id != 0 && st->leader_id != my_id) {
                saw_other_leader = true;
            }
            if (st->state == JR_STATE_LEADER && !saw_other_leader) {
                driving = true;
                /* Start the load on the loop thread once the leader's
                 * term is committed. */
                rv = jr_barrier(node, &start_barrier, barrier_cb);
                if (rv != 0) {
                    fprintf(stderr, "bench_lib[%llu]: jr_barrier: %s\n",
                            (unsigned long long)my_id, jr_strerror(rv));
                    code = 1;
                    stop = true;
                }
            }
            jr_status_free(st);
        }
    }
    /* Stops the loop (writes still pending fail with JR_ECANCELED), joins
     * its thread and frees the node. */
    jr_node_close(node);
    free(slots);
    free(lat_ns);
    return code;
}
