/* counter.c: a replicated counter, the smallest complete libjacoraft
 * program (one node: open, bootstrap, start, write, read, stop, close). */
#include <errno.h>
#include <inttypes.h>
#include <jacoraft.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole state. apply changes it on the node's loop thread and main
 * reads it on its own thread, hence the atomic. */
static _Atomic int64_t counter;

/* Commands, results and snapshots are decimal text, so that nodes of
 * any byte order agree on them. */
static int parse_int64(const void *buf, size_t len, int64_t *out)
{
    char text[24], *end;
    long long v;

    if (len == 0 || len >= sizeof text) {
        return -1;
    }
    memcpy(text, buf, len);
    text[len] = '\0';
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

/* A command is the amount to add; the result is the new value. */
static int counter_apply(void *data,
                         uint64_t index,
                         const void *buf,
                         size_t len,
                         void **result,
                         size_t *result_len)
{
    _Atomic int64_t *c = data;
    int64_t delta, value = atomic_load(c);
    char *text;

    (void)index;
    /* Refusing a command must be deterministic too: every node
     * refuses it, and the submitter gets JR_EAPPLY. */
    if (parse_int64(buf, len, &delta) != 0 ||
        (delta > 0 && value > INT64_MAX - delta) ||
        (delta < 0 && value < INT64_MIN - delta)) {
        return 1;
    }
    value += delta;
    atomic_store(c, value);
    /* The library takes the result, hands it to the submitter, and
     * frees it. */
    text = jr_malloc(24);
    if (text != NULL) {
        *result_len = (size_t)snprintf(text, 24, "%" PRId64, value);
        *result = text;
    }
    return 0;
}

static int counter_snapshot(void *data, struct jr_snapshot_writer *w)
{
    char text[24];
    int len = snprintf(text, sizeof text, "%" PRId64,
                       atomic_load((_Atomic int64_t *)data));

    return jr_snapshot_write(w, text, (size_t)len);
}

static int counter_restore(void *data, struct jr_snapshot_reader *r)
{
    char text[24];
    size_t len = jr_snapshot_remaining(r);
    int64_t value;

    if (len > sizeof text || jr_snapshot_read(r, text, len) != len ||
        parse_int64(text, len, &value) != 0) {
        return 1;
    }
    atomic_store((_Atomic int64_t *)data, value);
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const adds[] = {"5", "-2", "40"};
    struct jr_fsm fsm = {&counter, counter_apply, counter_snapshot,
                         counter_restore};
    struct jr_config cfg;
    struct jr_member self;
    struct jr_node *node;
    struct jr_status *st;
    struct jr_error err;
    size_t i;
    int rv;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: counter DATA_DIR [HOST:PORT]\n");
        return 2;
    }
    jr_config_init(&cfg);
    cfg.id = 1;
    cfg.address = argc > 2 ? argv[2] : "127.0.0.1:7001";
    cfg.data_dir = argv[1];
    cfg.log_level = JR_LOG_WARN;
    cfg.fsm = &fsm;
    if (jr_node_open(&cfg, &node, &err) != 0) {
        goto err;
    }
    /* A cluster of one voter. On later runs the directory already
     * holds it, and bootstrapping with the same list changes nothing. */
    self.id = cfg.id;
    self.address = cfg.address;
    if (jr_node_bootstrap(node, &self, 1, &err) != 0 ||
        jr_node_start(node, &err) != 0) {
        goto err_node;
    }

    for (i = 0; i < sizeof adds / sizeof adds[0]; i++) {
        void *result = NULL;
        size_t result_len = 0;

        if (jr_apply_sync(node, adds[i], strlen(adds[i]), 0, &result,
                          &result_len, &err) != 0) {
            goto err_node;
        }
        printf("add %s: counter is %.*s\n", adds[i], (int)result_len,
               result != NULL ? (const char *)result : "");
        jr_free(result);
    }

    /* A linearizable read: a barrier, then the local state. */
    if (jr_barrier_sync(node, 0, &err) != 0) {
        goto err_node;
    }
    printf("read: counter is %" PRId64 "\n", atomic_load(&counter));

    rv = jr_node_status(node, &st);
    if (rv != 0) {
        err.code = rv;
        snprintf(err.message, sizeof err.message, "status: %s",
                 jr_strerror(rv));
        goto err_node;
    }
    printf("node %" PRIu64 ": %s, term %" PRIu64 ", applied %" PRIu64
           ", cluster %s\n",
           st->id, jr_state_name(st->state), st->term, st->applied_index,
           st->cluster_id);
    jr_status_free(st);

    /* Graceful: a leader of several voters hands leadership over
     * first. Then close unlocks the directory and frees the node. */
    rv = jr_node_stop(node);
    jr_node_close(node);
    return rv == 0 ? 0 : 1;

err_node:
    jr_node_close(node);
err:
    fprintf(stderr, "counter: %s (%s)\n", err.message, jr_err_slug(err.code));
    return 1;
}
