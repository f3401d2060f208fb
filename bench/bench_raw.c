/* bench_raw.c: one node of a 3-node bare canonical/raft cluster whose
 * leader drives a fixed write load and prints its commit latency as JSON. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <raft.h>
#include <raft/uv.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "loadutil.h"

/* 100 bytes of payload rounded up to a multiple of 8: raft 0.15's segment
 * loader miscounts entries of other sizes (see lib/apply.c). */
#define ENTRY_SIZE 104
#define MAX_MEMBERS 16

/* One raft_apply call in flight: `batch` entries submitted together. */
struct slot {
    struct raft_apply req;
    uint64_t submitted_ns;
};

static uv_loop_t loop;
static struct raft_uv_transport transport;
static struct raft_io io;
static struct raft raft;
static struct raft_fsm fsm;
static uv_timer_t poll_timer;
static uv_signal_t sigterm_handle, sigint_handle;

static raft_id my_id;
static unsigned inflight = 1;        /* raft_apply calls kept in flight */
static unsigned batch = 1;           /* entries per raft_apply call */
static uint64_t count = 10000;       /* entries to commit */
static uint64_t duration_ms = 0;     /* stop submitting after this; 0: off */
static uint64_t timeout_ms = 120000; /* give up if not done by then */

static uint64_t applied;   /* entries applied by the FSM */
static unsigned snapshots; /* snapshots taken by this node */
static bool driving, closing, saw_other_leader;
static uint64_t finished_ns; /* when the driver reported; 0: not yet */
static int exit_code;
static struct slot *slots;
static uint64_t *lat_ns; /* one latency per committed entry */
static uint64_t submitted, completed, t_start_ns, t_deadline_ns, t_boot_ns;
static struct raft_barrier barrier;

/* ---- the FSM: a counter of applied entries ---- */

static int fsm_apply(struct raft_fsm *f,
                     const struct raft_buffer *buf,
                     void **result)
{
    (void)f;
    (void)buf;
    applied++;
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *f,
                        struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
    (void)f;
    /* Version 1 FSM: raft frees the array and the buffer with raft_free. */
    *bufs = raft_malloc(sizeof **bufs);
    if (*bufs == NULL) {
        return RAFT_NOMEM;
    }
    (*bufs)[0].len = sizeof applied;
    (*bufs)[0].base = raft_malloc(sizeof applied);
    if ((*bufs)[0].base == NULL) {
        raft_free(*bufs);
        return RAFT_NOMEM;
    }
    memcpy((*bufs)[0].base, &applied, sizeof applied);
    *n_bufs = 1;
    snapshots++;
    return 0;
}

static int fsm_restore(struct raft_fsm *f, struct raft_buffer *buf)
{
    (void)f;
    if (buf->len != sizeof applied) {
        return RAFT_MALFORMED;
    }
    memcpy(&applied, buf->base, sizeof applied);
    raft_free(buf->base); /* the FSM owns it on success */
    return 0;
}

/* ---- shutdown ---- */

static void handle_closed_cb(uv_handle_t *h)
{
    (void)h;
}

static void raft_closed_cb(struct raft *r)
{
    (void)r;
    raft_uv_close(&io);
    raft_uv_tcp_close(&transport);
    uv_close((uv_handle_t *)&poll_timer, handle_closed_cb);
    uv_close((uv_handle_t *)&sigterm_handle, handle_closed_cb);
    uv_close((uv_handle_t *)&sigint_handle, handle_closed_cb);
}

static void shutdown_node(int code)
{
    if (closing) {
        return;
    }
    closing = true;
    exit_code = code;
    uv_timer_stop(&poll_timer);
    raft_close(&raft, raft_closed_cb);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    shutdown_node(exit_code);
}

/* ---- the load, driven by the leader ---- */

static void report(void)
{
    uint64_t n = completed, elapsed = now_ns() - t_start_ns;
    double secs = (double)elapsed / 1e9;
    uint64_t p50 = 0, p99 = 0, max = 0;
    if (n > 0) {
        qsort(lat_ns, n, sizeof *lat_ns, cmp_u64);
        p50 = lat_ns[n / 2];
        p99 = lat_ns[n * 99 / 100];
        max = lat_ns[n - 1];
    }
    printf("{\"inflight\":%u,\"batch\":%u,\"entries\":%" PRIu64
           ",\"seconds\":%.3f,\"per_second\":%.0f,\"p50_us\":%.0f,"
           "\"p99_us\":%.0f,\"max_us\":%.0f,\"snapshots\":%u}\n",
           inflight, batch, n, secs, (double)n / secs, p50 / 1e3, p99 / 1e3,
           max / 1e3, snapshots);
    fflush(stdout);
}

static void apply_cb(struct raft_apply *req, int status, void *result);

/* Submit one raft_apply of `batch` fresh entries on slot s. */
static int submit(struct slot *s)
{
    struct raft_buffer bufs[1024];
    unsigned i;
    int rv;
    for (i = 0; i < batch; i++) {
        bufs[i].len = ENTRY_SIZE;
        bufs[i].base = raft_malloc(ENTRY_SIZE);
        if (bufs[i].base == NULL) {
            while (i-- > 0) {
                raft_free(bufs[i].base);
            }
            return RAFT_NOMEM;
        }
        memset(bufs[i].base, 'x', ENTRY_SIZE);
    }
    s->req.data = s;
    s->submitted_ns = now_ns();
    rv = raft_apply(&raft, &s->req, bufs, batch, apply_cb);
    if (rv != 0) {
        for (i = 0; i < batch; i++) {
            raft_free(bufs[i].base);
        }
        return rv;
    }
    submitted += batch;
    return 0;
}

static bool may_submit(void)
{
    return submitted < count &&
           (t_deadline_ns == 0 || now_ns() < t_deadline_ns);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct slot *s = req->data;
    uint64_t lat = now_ns() - s->submitted_ns;
    unsigned i;
    (void)result;
    if (closing) {
        return;
    }
    if (status != 0) {
        fprintf(stderr, "bench_raw[%llu]: apply: %s\n",
                (unsigned long long)my_id, raft_strerror(status));
        shutdown_node(1);
        return;
    }
    for (i = 0; i < batch; i++) {
        lat_ns[completed++] = lat;
    }
    if (may_submit()) {
        int rv = submit(s);
        if (rv != 0) {
            fprintf(stderr, "bench_raw[%llu]: raft_apply: %s\n",
                    (unsigned long long)my_id, raft_strerror(rv));
            shutdown_node(1);
        }
        return;
    }
    if (completed == submitted) {
        /* Close a little later: raft 0.15 can abort in uv_poll_stop when it
         * is closed with a disk write in flight (canonical/raft#224), and
         * the leader's own append or a snapshot may still be running. */
        report();
        finished_ns = now_ns();
    }
}

/* The first entry of the leader's term is committed: start the clock. */
static void barrier_cb(struct raft_barrier *req, int status)
{
    unsigned i;
    (void)req;
    if (closing) {
        return;
    }
    if (status != 0) {
        fprintf(stderr, "bench_raw[%llu]: barrier: %s\n",
                (unsigned long long)my_id, raft_strerror(status));
        shutdown_node(1);
        return;
    }
    t_start_ns = now_ns();
    if (duration_ms > 0) {
        t_deadline_ns = t_start_ns + duration_ms * 1000000u;
    }
    for (i = 0; i < inflight && may_submit(); i++) {
        int rv = submit(&slots[i]);
        if (rv != 0) {
            fprintf(stderr, "bench_raw[%llu]: raft_apply: %s\n",
                    (unsigned long long)my_id, raft_strerror(rv));
            shutdown_node(1);
            return;
        }
    }
}

/* Every 5 ms: become the driver on first leadership; a node that has
 * already followed another leader never drives (when the driver exits, the
 * others must not start a second run). */
static void poll_cb(uv_timer_t *t)
{
    raft_id leader_id;
    const char *leader_address;
    (void)t;
    if (closing) {
        return;
    }
    if (now_ns() - t_boot_ns > timeout_ms * 1000000u) {
        fprintf(stderr, "bench_raw[%llu]: timed out\n",
                (unsigned long long)my_id);
        shutdown_node(driving ? 1 : 0);
        return;
    }
    if (finished_ns != 0 && now_ns() - finished_ns > 300 * 1000000u) {
        shutdown_node(0);
        return;
    }
    if (driving) {
        return;
    }
    raft_leader(&raft, &leader_id, &leader_address);
    if (leader_id != 0 && leader_id != my_id) {
        saw_other_leader = true;
    }
    if (raft_state(&raft) == RAFT_LEADER && !saw_other_leader) {
        int rv;
        driving = true;
        rv = raft_barrier(&raft, &barrier, barrier_cb);
        if (rv != 0) {
            fprintf(stderr, "bench_raw[%llu]: raft_barrier: %s\n",
                    (unsigned long long)my_id, raft_strerror(rv));
            shutdown_node(1);
        }
    }
}

/* ---- command line ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_raw --id N --address HOST:PORT --dir DIR "
            "--cluster 1=HOST:PORT,2=...,3=...\n"
            "                 [--inflight W] [--batch B] [--count N] "
            "[--duration-ms MS]\n"
            "                 [--snapshot-threshold N (0: off)] "
            "[--timeout-ms MS]\n");
    exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s)
{
    char *end;
    unsigned long long v;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s) {
        fprintf(stderr, "bench_raw: %s: bad number '%s'\n", opt, s);
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
        {"cluster", required_argument, NULL, 'c'},
        {"inflight", required_argument, NULL, 'w'},
        {"batch", required_argument, NULL, 'b'},
        {"count", required_argument, NULL, 'n'},
        {"duration-ms", required_argument, NULL, 'D'},
        {"snapshot-threshold", required_argument, NULL, 's'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    const char *address = NULL, *dir = NULL;
    char *cluster = NULL, *save = NULL, *tok;
    unsigned threshold = 1024; /* raft 0.15's default */
    struct raft_configuration conf;
    unsigned n_members = 0;
    int opt, rv;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
            case 'i': my_id = parse_u64("--id", optarg); break;
            case 'a': address = optarg; break;
            case 'd': dir = optarg; break;
            case 'c': cluster = optarg; break;
            case 'w':
                inflight = (unsigned)parse_u64("--inflight", optarg);
                break;
            case 'b': batch = (unsigned)parse_u64("--batch", optarg); break;
            case 'n': count = parse_u64("--count", optarg); break;
            case 'D': duration_ms = parse_u64("--duration-ms", optarg); break;
            case 's':
                threshold = (unsigned)parse_u64("--snapshot-threshold", optarg);
                if (threshold == 0) {
                    threshold = UINT_MAX;
                }
                break;
            case 'T': timeout_ms = parse_u64("--timeout-ms", optarg); break;
            default: usage();
        }
    }
    if (optind != argc || my_id == 0 || address == NULL || dir == NULL ||
        cluster == NULL || inflight == 0 || batch == 0 || batch > 1024 ||
        count == 0) {
        usage();
    }
    /* Whole raft_apply calls only. */
    count = (count + batch - 1) / batch * batch;
    slots = calloc(inflight, sizeof *slots);
    lat_ns = malloc(sizeof *lat_ns * count);
    if (slots == NULL || lat_ns == NULL) {
        return 1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_raw: mkdir %s: %s\n", dir, strerror(errno));
        return 1;
    }

    uv_loop_init(&loop);
    if ((rv = raft_uv_tcp_init(&transport, &loop)) != 0 ||
        (rv = raft_uv_init(&io, &loop, dir, &transport)) != 0) {
        fprintf(stderr, "bench_raw: init: %s\n", raft_strerror(rv));
        return 1;
    }
    fsm.version = 1;
    fsm.apply = fsm_apply;
    fsm.snapshot = fsm_snapshot;
    fsm.restore = fsm_restore;
    if ((rv = raft_init(&raft, &io, &fsm, my_id, address)) != 0) {
        fprintf(stderr, "bench_raw: raft_init: %s\n", raft_errmsg(&raft));
        return 1;
    }
    raft_set_pre_vote(&raft, true);
    raft_set_snapshot_threshold(&raft, threshold);

    /* Every member bootstraps the same configuration; a directory that
     * already holds state keeps it (RAFT_CANTBOOTSTRAP). */
    raft_configuration_init(&conf);
    for (tok = strtok_r(cluster, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL || n_members == MAX_MEMBERS) {
            usage();
        }
        *eq = '\0';
        rv = raft_configuration_add(&conf, parse_u64("--cluster", tok), eq + 1,
                                    RAFT_VOTER);
        if (rv != 0) {
            fprintf(stderr, "bench_raw: --cluster: %s\n", raft_strerror(rv));
            return 2;
        }
        n_members++;
    }
    rv = raft_bootstrap(&raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
        fprintf(stderr, "bench_raw: bootstrap: %s\n", raft_errmsg(&raft));
        return 1;
    }
    if ((rv = raft_start(&raft)) != 0) {
        fprintf(stderr, "bench_raw: start: %s\n", raft_errmsg(&raft));
        return 1;
    }

    t_boot_ns = now_ns();
    uv_timer_init(&loop, &poll_timer);
    uv_timer_start(&poll_timer, poll_cb, 5, 5);
    uv_signal_init(&loop, &sigterm_handle);
    uv_signal_init(&loop, &sigint_handle);
    uv_signal_start(&sigterm_handle, on_signal, SIGTERM);
    uv_signal_start(&sigint_handle, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN); /* a peer that exits must not kill us */
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(slots);
    free(lat_ns);
    return exit_code;
}
