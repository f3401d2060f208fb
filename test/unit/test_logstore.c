/* test_logstore.c: the durable raft log: round trips, group commit,
 * segments, truncation, reset, compaction, torn tails, damage and failing
 * disks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jr_internal.h"
#include "logstore.h"
#include "suites.h"
#include "testutil.h"

#define SEG_SIZE ((size_t)64 << 10)
#define VARY ((size_t)-1) /* entry lengths that vary with the index */
#define SEG_HDR 40        /* format constants, for the tests that damage */
#define REC_HDR 32        /* files on purpose */
#define ENTRY_HDR 16

/* ---- temporary directory and loop ---- */

static char tmpdir[64];
static uv_loop_t loop;
static struct jr__logstore *store;

/* ---- fault injection and log capture ---- */

static struct {
    uv_mutex_t mutex;
    const char *op;     /* operation to fail, NULL for none */
    const char *prefix; /* only on files starting with it; NULL: any */
    int err;
    int times;     /* failures left to inject; -1: forever */
    int seg_syncs; /* fdatasyncs of segment files */
    int hits;      /* failures injected */
    uv_cond_t cond;
    bool gate_armed; /* the next segment fdatasync waits for gate_open */
    bool gate_open;
} faults;

static int fault_hook(void *data, const char *op, const char *file)
{
    const char *base = strrchr(file, '/');
    int rv = 0;
    (void)data;
    base = base != NULL ? base + 1 : file;
    uv_mutex_lock(&faults.mutex);
    if (strcmp(op, "sync") == 0 && strncmp(base, "seg-", 4) == 0) {
        faults.seg_syncs++;
        if (faults.gate_armed) {
            faults.gate_armed = false; /* the test waits for this */
            uv_cond_broadcast(&faults.cond);
            while (!faults.gate_open) {
                uv_cond_wait(&faults.cond, &faults.mutex);
            }
        }
    }
    if (faults.op != NULL && strcmp(op, faults.op) == 0 &&
        (faults.prefix == NULL ||
         strncmp(base, faults.prefix, strlen(faults.prefix)) == 0) &&
        faults.times != 0) {
        if (faults.times > 0) {
            faults.times--;
        }
        faults.hits++;
        rv = faults.err;
    }
    uv_mutex_unlock(&faults.mutex);
    return rv;
}

static void fault_set(const char *op, const char *prefix, int err, int times)
{
    uv_mutex_lock(&faults.mutex);
    faults.op = op;
    faults.prefix = prefix;
    faults.err = err;
    faults.times = times;
    faults.hits = 0;
    uv_mutex_unlock(&faults.mutex);
}

static int fault_seg_syncs(void)
{
    int n;
    uv_mutex_lock(&faults.mutex);
    n = faults.seg_syncs;
    uv_mutex_unlock(&faults.mutex);
    return n;
}

static int n_warnings;
static char last_warning[512];

static void log_hook(void *data, int level, const char *msg)
{
    (void)data;
    if (level >= JR_LOG_WARN) {
        n_warnings++;
        snprintf(last_warning, sizeof last_warning, "%s", msg);
    }
}

/* ---- the expected log ---- */

struct model_entry {
    uint64_t term;
    unsigned short type;
    size_t len;
};

static struct {
    uint64_t start;
    size_t n;
    size_t cap;
    struct model_entry *e;
} model;

static uint64_t model_next(void)
{
    return model.start + model.n;
}

static void model_add(uint64_t first, const struct raft_entry *e, unsigned n)
{
    unsigned i;
    ck_assert_uint_eq(first, model_next());
    if (model.n + n > model.cap) {
        model.cap = (model.n + n) * 2;
        model.e = realloc(model.e, model.cap * sizeof *model.e);
        ck_assert_ptr_nonnull(model.e);
    }
    for (i = 0; i < n; i++) {
        model.e[model.n].term = e[i].term;
        model.e[model.n].type = e[i].type;
        model.e[model.n].len = e[i].buf.len;
        model.n++;
    }
}

static void model_truncate(uint64_t index)
{
    if (index <= model.start) {
        model.start = index;
        model.n = 0;
    } else if (index < model_next()) {
        model.n = index - model.start;
    }
}

static void model_reset(uint64_t start)
{
    model.start = start;
    model.n = 0;
}

static void model_drop_below(uint64_t start)
{
    size_t k = start - model.start;
    ck_assert_uint_ge(start, model.start);
    ck_assert_uint_le(k, model.n);
    memmove(model.e, model.e + k, (model.n - k) * sizeof *model.e);
    model.n -= k;
    model.start = start;
}

/* ---- fixture ---- */

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/jr-logstore-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    memset(&faults, 0, sizeof faults);
    ck_assert_int_eq(uv_mutex_init(&faults.mutex), 0);
    ck_assert_int_eq(uv_cond_init(&faults.cond), 0);
    n_warnings = 0;
    last_warning[0] = '\0';
    model.start = 1;
    model.n = 0;
    store = NULL;
}

static void close_cb(void *arg)
{
    *(int *)arg = 1;
}

static void store_close(void)
{
    int closed = 0;
    if (store == NULL) {
        return;
    }
    jr__logstore_close(store, close_cb, &closed);
    while (!closed) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    store = NULL;
}

static void teardown(void)
{
    store_close();
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    uv_cond_destroy(&faults.cond);
    uv_mutex_destroy(&faults.mutex);
    free(model.e);
    model.e = NULL;
    model.cap = 0;
    if (tmpdir[0] != '\0') {
        tu_rm_rf(tmpdir);
        tmpdir[0] = '\0';
    }
}

/* ---- helpers ---- */

static void cfg_init(struct jr__logstore_config *cfg, size_t segment_size)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dir = tmpdir;
    cfg->segment_size = segment_size;
    cfg->fault = fault_hook;
    cfg->log = log_hook;
}

/* Open a store on tmpdir and load it; on a load error the store is closed
 * again and the error returned. */
static int store_open(size_t segment_size,
                      uint64_t *start,
                      struct raft_entry **entries,
                      size_t *n,
                      char *errmsg)
{
    struct jr__logstore_config cfg;
    int rv;
    cfg_init(&cfg, segment_size);
    ck_assert_ptr_null(store);
    errmsg[0] = '\0';
    rv = jr__logstore_open(&loop, &cfg, &store, errmsg);
    ck_assert_msg(rv == 0, "open: %s", errmsg);
    rv = jr__logstore_load(store, start, entries, n, errmsg);
    if (rv != 0) {
        store_close();
    }
    return rv;
}

static size_t len_of(size_t len, uint64_t index)
{
    return len == VARY ? (size_t)(index * 37 % 301) : len;
}

static void fill(uint8_t *p, uint64_t index, uint64_t term, size_t len)
{
    size_t k;
    for (k = 0; k < len; k++) {
        p[k] = (uint8_t)(index * 7 + term * 13 + k);
    }
}

/* Load the log again in a new store and compare it with the model; the
 * store stays open. */
static void reopen_verify(size_t segment_size)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct raft_entry *entries;
    uint64_t start;
    size_t n, i;
    int rv;
    store_close();
    rv = store_open(segment_size, &start, &entries, &n, errmsg);
    ck_assert_msg(rv == 0, "load: %s (%d)", errmsg, rv);
    ck_assert_uint_eq(start, model.start);
    ck_assert_uint_eq(n, model.n);
    for (i = 0; i < n; i++) {
        const struct raft_entry *e = &entries[i];
        const struct model_entry *m = &model.e[i];
        uint8_t *want = malloc(m->len + 1);
        ck_assert_ptr_nonnull(want);
        fill(want, start + i, m->term, m->len);
        ck_assert_uint_eq(e->term, m->term);
        ck_assert_uint_eq(e->type, m->type);
        ck_assert_uint_eq(e->buf.len, m->len);
        /* A buffer of its own: raft 0.15 scans its whole log for the
         * other entries of a batch before freeing one, so that shared
         * batches made log compaction quadratic (seconds on the loop). */
        ck_assert_ptr_null(e->batch);
        ck_assert(m->len == 0 || e->buf.base != NULL);
        ck_assert_msg(m->len == 0 || memcmp(e->buf.base, want, m->len) == 0,
                      "payload of index %" PRIu64 " differs", start + i);
        free(want);
    }
    ck_assert_uint_eq(jr__logstore_last_index(store),
                      model.n > 0 ? model_next() - 1 : 0);
    jr__logstore_entries_free(entries, n);
}

struct done {
    int calls;
    int status;
    int order;
    char errmsg[JR_ERRMSG_SIZE];
};

static int completions;

static void done_cb(void *arg, int status, const char *errmsg)
{
    struct done *d = arg;
    d->calls++;
    d->status = status;
    d->order = ++completions;
    snprintf(d->errmsg, sizeof d->errmsg, "%s", errmsg);
}

static void wait_done(struct done *d)
{
    while (d->calls == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
}

/* The entries of one append, kept alive until its callback. */
struct batch {
    uint64_t first;
    struct raft_entry *entries;
    unsigned n;
    struct done d;
};

static struct batch *batch_new(uint64_t first,
                               unsigned n,
                               size_t len,
                               uint64_t term)
{
    struct batch *b = calloc(1, sizeof *b);
    unsigned i;
    ck_assert_ptr_nonnull(b);
    b->first = first;
    b->n = n;
    b->entries = calloc(n, sizeof *b->entries);
    ck_assert_ptr_nonnull(b->entries);
    for (i = 0; i < n; i++) {
        struct raft_entry *e = &b->entries[i];
        e->term = term;
        e->type = RAFT_COMMAND;
        e->buf.len = len_of(len, first + i);
        if (e->buf.len > 0) {
            e->buf.base = malloc(e->buf.len);
            ck_assert_ptr_nonnull(e->buf.base);
            fill(e->buf.base, first + i, term, e->buf.len);
        }
    }
    return b;
}

static void batch_free(struct batch *b)
{
    unsigned i;
    for (i = 0; i < b->n; i++) {
        free(b->entries[i].buf.base);
    }
    free(b->entries);
    free(b);
}

static struct batch *submit(uint64_t first,
                            unsigned n,
                            size_t len,
                            uint64_t term)
{
    struct batch *b = batch_new(first, n, len, term);
    int rv = jr__logstore_append(store, first, b->entries, n, done_cb, &b->d);
    ck_assert_msg(rv == 0, "append at %" PRIu64 ": %d", first, rv);
    return b;
}

/* Wait for b; if it succeeded, add it to the model. Returns its status. */
static int finish(struct batch *b)
{
    int status;
    wait_done(&b->d);
    ck_assert_int_eq(b->d.calls, 1);
    status = b->d.status;
    if (status == 0) {
        model_add(b->first, b->entries, b->n);
    }
    batch_free(b);
    return status;
}

static void append_ok(unsigned n, size_t len, uint64_t term)
{
    struct batch *b = submit(model_next(), n, len, term);
    char msg[JR_ERRMSG_SIZE];
    int status;
    wait_done(&b->d);
    snprintf(msg, sizeof msg, "%s", b->d.errmsg);
    status = finish(b);
    ck_assert_msg(status == 0, "append: %s", msg);
}

static int truncate_wait(uint64_t index, char *errmsg)
{
    struct done d = {0};
    ck_assert_int_eq(jr__logstore_truncate(store, index, done_cb, &d), 0);
    wait_done(&d);
    ck_assert_int_eq(d.calls, 1);
    if (errmsg != NULL) {
        snprintf(errmsg, JR_ERRMSG_SIZE, "%s", d.errmsg);
    }
    if (d.status == 0) {
        model_truncate(index);
    }
    return d.status;
}

static int reset_wait(uint64_t start, char *errmsg)
{
    struct done d = {0};
    ck_assert_int_eq(jr__logstore_reset(store, start, done_cb, &d), 0);
    wait_done(&d);
    ck_assert_int_eq(d.calls, 1);
    if (errmsg != NULL) {
        snprintf(errmsg, JR_ERRMSG_SIZE, "%s", d.errmsg);
    }
    if (d.status == 0) {
        model_reset(start);
    }
    return d.status;
}

/* Wait until the writer has done everything submitted so far: a truncation
 * at the next index changes nothing. */
static void barrier(void)
{
    ck_assert_int_eq(truncate_wait(model_next(), NULL), 0);
}

static void seg_path(char *path, size_t size, uint64_t first)
{
    snprintf(path, size, "%s/seg-%020" PRIu64, tmpdir, first);
}

/* The first indexes of the segment files, sorted. */
static unsigned seg_firsts(uint64_t *out, unsigned max)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    unsigned n = 0, i, j;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "seg-", 4) == 0 && n < max) {
            out[n++] = strtoull(e->d_name + 4, NULL, 10);
        }
    }
    closedir(d);
    for (i = 1; i < n; i++) {
        for (j = i; j > 0 && out[j - 1] > out[j]; j--) {
            uint64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    }
    return n;
}

static bool file_exists(const char *name)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return stat(path, &st) == 0;
}

static uint8_t *file_read(const char *path, size_t *len)
{
    struct stat st;
    uint8_t *buf;
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    buf = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

static void file_write(const char *path, const uint8_t *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, buf, len, 0), (ssize_t)len);
    ck_assert_int_eq(close(fd), 0);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Offsets of the records of a segment image; *end is after the last. */
static unsigned record_offsets(const uint8_t *p,
                               size_t len,
                               size_t *offs,
                               unsigned max,
                               size_t *end)
{
    size_t off = SEG_HDR;
    unsigned n = 0;
    while (off + REC_HDR <= len && le32(p + off) == 0x4352524Au) {
        uint64_t count = le32(p + off + 16);
        uint64_t payload = le32(p + off + 24);
        ck_assert_uint_lt(n, max);
        offs[n++] = off;
        off += (REC_HDR + count * ENTRY_HDR + payload + 7) & ~(size_t)7;
    }
    *end = off;
    return n;
}

/* Where the bytes of the record at off end, before its zero padding. */
static size_t record_data_end(const uint8_t *p, size_t off)
{
    return off + REC_HDR + le32(p + off + 16) * ENTRY_HDR + le32(p + off + 24);
}

/* Remove every segment file but seg-1. */
static void keep_only_first_segment(void)
{
    uint64_t firsts[64];
    char path[128];
    unsigned n = seg_firsts(firsts, 64), i;
    for (i = 0; i < n; i++) {
        if (firsts[i] != 1) {
            seg_path(path, sizeof path, firsts[i]);
            ck_assert_int_eq(unlink(path), 0);
        }
    }
}

/* ---- round trips ---- */

START_TEST(empty_directory_loads_as_an_empty_log_from_index_1)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct raft_entry *entries = NULL;
    uint64_t start = 0;
    size_t n = 99;
    ck_assert_int_eq(store_open(SEG_SIZE, &start, &entries, &n, errmsg), 0);
    ck_assert_uint_eq(start, 1);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(jr__logstore_last_index(store), 0);
    raft_free(entries);
}
END_TEST

START_TEST(corked_appends_complete_in_order_once_uncorked)
{
    struct batch *b[3];
    uint64_t next;
    unsigned i;
    reopen_verify(SEG_SIZE);
    append_ok(1, 100, 1);
    jr__logstore_cork(store, true);
    next = model_next();
    for (i = 0; i < 3; i++) {
        b[i] = submit(next, 1 + i, 100, 1);
        next += 1 + i;
    }
    /* Corked, the writer is not woken (if it is awake anyway, preparing
     * the next segment, it may take them): the uncork must wake it. */
    jr__logstore_cork(store, false);
    for (i = 0; i < 3; i++) {
        wait_done(&b[i]->d);
    }
    for (i = 0; i < 3; i++) {
        ck_assert_int_lt(b[i]->d.order, i < 2 ? b[i + 1]->d.order : INT_MAX);
        ck_assert_int_eq(finish(b[i]), 0);
    }
    /* Uncorked with nothing queued, and appends after it, cost no wait. */
    jr__logstore_cork(store, true);
    jr__logstore_cork(store, false);
    append_ok(2, 100, 1);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(one_entry_round_trips)
{
    reopen_verify(SEG_SIZE);
    append_ok(1, 100, 1);
    ck_assert_uint_eq(jr__logstore_last_index(store), 1);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(many_entries_in_one_append_round_trip)
{
    reopen_verify(SEG_SIZE);
    append_ok(500, 17, 3);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(many_appends_round_trip_in_order)
{
    unsigned i;
    reopen_verify(SEG_SIZE);
    for (i = 0; i < 200; i++) {
        append_ok(1 + i % 3, VARY, 1 + i / 50);
    }
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(entries_larger_than_a_segment_round_trip)
{
    reopen_verify(SEG_SIZE);
    append_ok(1, 10, 1);
    append_ok(1, 200 << 10, 1);
    append_ok(3, 100 << 10, 2);
    append_ok(2, 10, 2);
    append_ok(1, 1 << 20, 2);
    reopen_verify(SEG_SIZE);
    append_ok(4, 50, 2);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(zero_length_entries_round_trip)
{
    reopen_verify(SEG_SIZE);
    append_ok(1, 0, 1);
    append_ok(7, 0, 1);
    append_ok(2, 5, 1);
    append_ok(3, 0, 2);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(lengths_not_multiple_of_8_round_trip)
{
    size_t len;
    reopen_verify(SEG_SIZE);
    for (len = 0; len < 34; len++) {
        append_ok(1 + (unsigned)len % 3, len, 1);
    }
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(terms_and_types_are_preserved)
{
    struct batch *b;
    reopen_verify(SEG_SIZE);
    b = batch_new(1, 3, 8, 5);
    b->entries[1].type = RAFT_BARRIER;
    b->entries[2].type = RAFT_CHANGE;
    b->entries[2].term = 6;
    fill(b->entries[2].buf.base, 3, 6, 8);
    ck_assert_int_eq(
        jr__logstore_append(store, 1, b->entries, 3, done_cb, &b->d), 0);
    ck_assert_int_eq(finish(b), 0);
    reopen_verify(SEG_SIZE);
}
END_TEST

/* Loaded entries of one record do not share its buffer: raft 0.15 frees
 * an entry of a batch only after scanning its whole log for the batch's
 * others (quadratic compaction; a restarted node's loop stalled seconds). */
START_TEST(loaded_entries_get_a_buffer_each)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct raft_entry *entries;
    uint64_t start;
    size_t n, i;
    reopen_verify(SEG_SIZE);
    append_ok(4, 10, 1);
    append_ok(2, 10, 1);
    store_close();
    ck_assert_int_eq(store_open(SEG_SIZE, &start, &entries, &n, errmsg), 0);
    ck_assert_uint_eq(n, 6);
    for (i = 0; i < n; i++) {
        ck_assert_ptr_null(entries[i].batch);
        ck_assert_ptr_nonnull(entries[i].buf.base);
        ck_assert_uint_eq(entries[i].buf.len, 10);
    }
    ck_assert_ptr_ne(entries[1].buf.base, (uint8_t *)entries[0].buf.base + 10);
    jr__logstore_entries_free(entries, n);
}
END_TEST

/* ---- callbacks and group commit ---- */

START_TEST(callbacks_run_once_in_submission_order_never_inline)
{
    struct batch *b[50];
    unsigned i;
    reopen_verify(SEG_SIZE);
    completions = 0;
    for (i = 0; i < 50; i++) {
        b[i] = submit(model_next() + i, 1, 30, 1);
        ck_assert_int_eq(b[i]->d.calls, 0);
    }
    for (i = 0; i < 50; i++) {
        wait_done(&b[i]->d);
        ck_assert_int_eq(b[i]->d.order, (int)i + 1);
        ck_assert_int_eq(finish(b[i]), 0);
    }
    /* Nothing runs twice. */
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(completions, 50);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(group_commit_coalesces_1000_appends_into_few_fdatasyncs)
{
    struct batch **b = calloc(1000, sizeof *b);
    int syncs;
    unsigned i;
    ck_assert_ptr_nonnull(b);
    model.start = 1;
    reopen_verify(1 << 20);
    append_ok(1, 100, 1); /* the segment exists */
    barrier();
    syncs = fault_seg_syncs();
    /* The first append's fdatasync waits until all are submitted, as if
     * the disk were slow: the 999 others queue up behind it. They are
     * submitted once the writer is in that fdatasync: earlier, a writer
     * still busy preparing the next segment could take all 1000 at once. */
    uv_mutex_lock(&faults.mutex);
    faults.gate_armed = true;
    faults.gate_open = false;
    uv_mutex_unlock(&faults.mutex);
    b[0] = submit(2, 1, 100, 1);
    uv_mutex_lock(&faults.mutex);
    while (faults.gate_armed) {
        uv_cond_wait(&faults.cond, &faults.mutex);
    }
    uv_mutex_unlock(&faults.mutex);
    for (i = 1; i < 1000; i++) {
        b[i] = submit(2 + i, 1, 100, 1);
    }
    uv_mutex_lock(&faults.mutex);
    faults.gate_open = true;
    uv_cond_broadcast(&faults.cond);
    uv_mutex_unlock(&faults.mutex);
    for (i = 0; i < 1000; i++) {
        ck_assert_int_eq(finish(b[i]), 0);
    }
    syncs = fault_seg_syncs() - syncs;
    ck_assert_msg(syncs >= 2 && syncs <= 3, "1000 appends took %d fdatasyncs",
                  syncs);
    free(b);
    reopen_verify(1 << 20);
}
END_TEST

START_TEST(close_with_requests_queued_runs_their_callbacks_first)
{
    struct batch *b[100];
    int closed = 0;
    unsigned i;
    reopen_verify(SEG_SIZE);
    completions = 0;
    for (i = 0; i < 100; i++) {
        b[i] = submit(1 + i, 1, 700, 1);
    }
    jr__logstore_close(store, close_cb, &closed);
    store = NULL;
    while (!closed) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    for (i = 0; i < 100; i++) {
        ck_assert_int_eq(b[i]->d.calls, 1);
        ck_assert_int_eq(b[i]->d.order, (int)i + 1);
        ck_assert_int_eq(finish(b[i]), 0);
    }
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(invalid_requests_fail_at_once_and_never_call_back)
{
    struct jr__logstore_config cfg;
    struct jr__logstore *s;
    struct batch *b = batch_new(1, 1, 10, 1);
    char errmsg[JR_ERRMSG_SIZE];
    struct raft_entry *entries;
    uint64_t start;
    size_t n;
    int closed = 0;

    cfg_init(&cfg, 4096);
    ck_assert_int_eq(jr__logstore_open(&loop, &cfg, &s, errmsg), JR_EINVAL);
    ck_assert_ptr_nonnull(strstr(errmsg, "64 KiB"));

    cfg_init(&cfg, SEG_SIZE);
    ck_assert_int_eq(jr__logstore_open(&loop, &cfg, &store, errmsg), 0);
    /* Before load. */
    ck_assert_int_eq(
        jr__logstore_append(store, 1, b->entries, 1, done_cb, &b->d),
        JR_EINVAL);
    ck_assert_int_eq(jr__logstore_load(store, &start, &entries, &n, errmsg), 0);
    raft_free(entries);
    ck_assert_int_eq(jr__logstore_load(store, &start, &entries, &n, errmsg),
                     JR_EINVAL);
    ck_assert_int_eq(
        jr__logstore_append(store, 2, b->entries, 1, done_cb, &b->d),
        JR_EINVAL);
    ck_assert_int_eq(
        jr__logstore_append(store, 1, b->entries, 0, done_cb, &b->d),
        JR_EINVAL);
    b->entries[0].type = 0;
    ck_assert_int_eq(
        jr__logstore_append(store, 1, b->entries, 1, done_cb, &b->d),
        JR_EINVAL);
    b->entries[0].type = RAFT_COMMAND;
    ck_assert_int_eq(jr__logstore_truncate(store, 0, NULL, NULL), JR_EINVAL);
    ck_assert_int_eq(jr__logstore_truncate(store, 3, NULL, NULL), JR_EINVAL);
    ck_assert_int_eq(jr__logstore_reset(store, 0, NULL, NULL), JR_EINVAL);
    jr__logstore_close(store, close_cb, &closed);
    ck_assert_int_eq(
        jr__logstore_append(store, 1, b->entries, 1, done_cb, &b->d),
        JR_ECANCELED);
    ck_assert_int_eq(jr__logstore_truncate(store, 1, NULL, NULL), JR_ECANCELED);
    while (!closed) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    store = NULL;
    ck_assert_int_eq(b->d.calls, 0);
    batch_free(b);
}
END_TEST

START_TEST(last_index_follows_what_is_durable)
{
    reopen_verify(SEG_SIZE);
    ck_assert_uint_eq(jr__logstore_last_index(store), 0);
    append_ok(3, 10, 1);
    ck_assert_uint_eq(jr__logstore_last_index(store), 3);
    ck_assert_int_eq(truncate_wait(2, NULL), 0);
    ck_assert_uint_eq(jr__logstore_last_index(store), 1);
    ck_assert_int_eq(reset_wait(10, NULL), 0);
    ck_assert_uint_eq(jr__logstore_last_index(store), 0);
    append_ok(1, 10, 2);
    ck_assert_uint_eq(jr__logstore_last_index(store), 10);
    reopen_verify(SEG_SIZE);
}
END_TEST

/* ---- segments ---- */

START_TEST(appends_roll_over_segments_and_load_back)
{
    uint64_t firsts[64];
    unsigned i, n;
    reopen_verify(SEG_SIZE);
    for (i = 0; i < 120; i++) {
        append_ok(1 + i % 4, 1000 + i, 1);
    }
    n = seg_firsts(firsts, 64);
    ck_assert_uint_ge(n, 4);
    ck_assert_uint_eq(firsts[0], 1);
    reopen_verify(SEG_SIZE);
    append_ok(3, 5000, 2);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(segments_are_preallocated_and_the_next_one_prepared)
{
    char path[128];
    struct stat st;
    reopen_verify(SEG_SIZE);
    append_ok(1, 10, 1);
    barrier(); /* the writer prepares the next segment between batches */
    seg_path(path, sizeof path, 1);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)SEG_SIZE);
    ck_assert_int_ge((off_t)st.st_blocks * 512, (off_t)SEG_SIZE);
    ck_assert(file_exists("open-2"));
    store_close();
    ck_assert(!file_exists("open-2")); /* closing removes it */
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(leftover_files_are_removed_on_load)
{
    char path[128];
    reopen_verify(SEG_SIZE);
    append_ok(2, 10, 1);
    store_close();
    snprintf(path, sizeof path, "%s/open-7", tmpdir);
    file_write(path, (const uint8_t *)"junk", 4);
    snprintf(path, sizeof path, "%s/reset.tmp", tmpdir);
    file_write(path, (const uint8_t *)"junk", 4);
    snprintf(path, sizeof path, "%s/unrelated", tmpdir);
    file_write(path, (const uint8_t *)"keep", 4);
    reopen_verify(SEG_SIZE);
    ck_assert(!file_exists("open-7"));
    ck_assert(!file_exists("reset.tmp"));
    ck_assert(file_exists("unrelated"));
}
END_TEST

/* ---- truncate ---- */

START_TEST(truncate_in_the_middle_of_a_batch)
{
    reopen_verify(SEG_SIZE);
    append_ok(10, 40, 1);
    append_ok(10, 40, 1);
    ck_assert_int_eq(truncate_wait(5, NULL), 0);
    reopen_verify(SEG_SIZE);
    append_ok(4, 33, 2);
    reopen_verify(SEG_SIZE);
    ck_assert_int_eq(truncate_wait(7, NULL), 0);
    ck_assert_int_eq(truncate_wait(6, NULL), 0);
    reopen_verify(SEG_SIZE);
    append_ok(1, 21, 3);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(truncate_at_a_segment_boundary_removes_later_segments)
{
    uint64_t firsts[64];
    unsigned n, i;
    reopen_verify(SEG_SIZE);
    for (i = 0; i < 80; i++) {
        append_ok(2, 1500, 1);
    }
    n = seg_firsts(firsts, 64);
    ck_assert_uint_ge(n, 4);
    ck_assert_int_eq(truncate_wait(firsts[2], NULL), 0);
    n = seg_firsts(firsts, 64);
    ck_assert_uint_eq(n, 2);
    reopen_verify(SEG_SIZE);
    append_ok(3, 100, 2);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(truncate_inside_an_earlier_segment)
{
    uint64_t firsts[64];
    unsigned n, i;
    reopen_verify(SEG_SIZE);
    for (i = 0; i < 80; i++) {
        append_ok(2, 1500, 1);
    }
    n = seg_firsts(firsts, 64);
    ck_assert_uint_ge(n, 4);
    ck_assert_int_eq(truncate_wait(firsts[1] + 3, NULL), 0);
    ck_assert_uint_eq(seg_firsts(firsts, 64), 2);
    reopen_verify(SEG_SIZE);
    for (i = 0; i < 60; i++) {
        append_ok(2, 1500, 2);
    }
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(truncate_of_everything_then_append_from_the_start)
{
    uint64_t firsts[64];
    unsigned i;
    reopen_verify(SEG_SIZE);
    for (i = 0; i < 50; i++) {
        append_ok(2, 1500, 1);
    }
    ck_assert_int_eq(truncate_wait(1, NULL), 0);
    ck_assert_uint_eq(seg_firsts(firsts, 64), 1);
    reopen_verify(SEG_SIZE);
    append_ok(5, 10, 2);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(truncate_is_ordered_between_appends)
{
    struct batch *a, *c;
    struct done t = {0};
    reopen_verify(SEG_SIZE);
    completions = 0;
    a = submit(1, 5, 20, 1);
    ck_assert_int_eq(jr__logstore_truncate(store, 3, done_cb, &t), 0);
    c = submit(3, 2, 20, 2);
    ck_assert_int_eq(finish(a), 0);
    wait_done(&t);
    ck_assert_int_eq(t.status, 0);
    model_truncate(3);
    ck_assert_int_eq(finish(c), 0);
    ck_assert_int_eq(t.order, 2);
    reopen_verify(SEG_SIZE);
}
END_TEST

/* Random appends, truncations, compactions, resets and reloads against the
 * model. */
static uint64_t rng;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

START_TEST(random_operations_match_the_model)
{
    const unsigned seed = 20240611;
    uint64_t firsts[256], term = 1;
    unsigned step;
    rng = seed;
    reopen_verify(SEG_SIZE);
    for (step = 0; step < 400; step++) {
        unsigned op = rnd(100);
        if (op < 55) {
            struct batch *b[4];
            unsigned k, nb = 1 + rnd(4);
            uint64_t next = model_next();
            for (k = 0; k < nb; k++) {
                unsigned n = 1 + rnd(8);
                b[k] =
                    submit(next, n, rnd(4) == 0 ? 1 + rnd(6000) : VARY, term);
                next += n;
            }
            for (k = 0; k < nb; k++) {
                ck_assert_msg(finish(b[k]) == 0, "seed %u step %u", seed, step);
            }
        } else if (op < 72) {
            uint64_t index = model.start + rnd((unsigned)model.n + 1);
            ck_assert_msg(truncate_wait(index, NULL) == 0, "seed %u step %u",
                          seed, step);
            term++;
        } else if (op < 85) {
            reopen_verify(SEG_SIZE);
        } else if (op < 95) {
            unsigned n;
            jr__logstore_compact(store,
                                 model.start + rnd((unsigned)model.n + 2));
            barrier();
            n = seg_firsts(firsts, 256);
            if (n > 0 && model.n > 0) {
                model_drop_below(firsts[0]);
            }
        } else if (op < 97) {
            ck_assert_int_eq(reset_wait(model_next() + rnd(100), NULL), 0);
            term++;
        }
    }
    reopen_verify(SEG_SIZE);
}
END_TEST

/* ---- reset and compact ---- */

START_TEST(reset_discards_the_log_and_starts_at_the_given_index)
{
    uint64_t firsts[64];
    unsigned i;
    reopen_verify(SEG_SIZE);
    for (i = 0; i < 50; i++) {
        append_ok(2, 1500, 1);
    }
    ck_assert_int_eq(reset_wait(1000, NULL), 0);
    ck_assert_uint_eq(seg_firsts(firsts, 64), 1);
    ck_assert_uint_eq(firsts[0], 1000);
    reopen_verify(SEG_SIZE);
    append_ok(3, 10, 5);
    reopen_verify(SEG_SIZE);
    /* To an index below the old one, too. */
    ck_assert_int_eq(reset_wait(7, NULL), 0);
    reopen_verify(SEG_SIZE);
    append_ok(1, 10, 6);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(segments_older_than_a_committed_reset_are_ignored_and_removed)
{
    char path[128];
    uint8_t *old;
    size_t len;
    reopen_verify(SEG_SIZE);
    append_ok(10, 30, 1);
    barrier();
    seg_path(path, sizeof path, 1);
    old = file_read(path, &len);
    ck_assert_int_eq(reset_wait(5, NULL), 0);
    append_ok(3, 30, 2);
    store_close();
    /* A crash after the reset's rename, before the old segment went. */
    file_write(path, old, len);
    free(old);
    reopen_verify(SEG_SIZE);
    ck_assert(!file_exists("seg-00000000000000000001"));
}
END_TEST

START_TEST(reset_failing_at_rename_keeps_the_old_log)
{
    char errmsg[JR_ERRMSG_SIZE];
    reopen_verify(SEG_SIZE);
    append_ok(10, 30, 1);
    fault_set("rename", NULL, EIO, 1);
    ck_assert_int_eq(reset_wait(100, errmsg), JR_EIO);
    ck_assert_ptr_nonnull(strstr(errmsg, "rename"));
    ck_assert(!file_exists("reset.tmp"));
    /* The store goes on where it was. */
    append_ok(1, 30, 1);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(compact_removes_old_segments_but_never_the_last)
{
    uint64_t firsts[64], before[64];
    unsigned n, i;
    reopen_verify(SEG_SIZE);
    for (i = 0; i < 100; i++) {
        append_ok(2, 1500, 1);
    }
    n = seg_firsts(before, 64);
    ck_assert_uint_ge(n, 5);
    /* Entries below before[2] only live in the first two segments. */
    jr__logstore_compact(store, before[2] + 1);
    barrier();
    ck_assert_uint_eq(seg_firsts(firsts, 64), n - 2);
    ck_assert_uint_eq(firsts[0], before[2]);
    model_drop_below(before[2]);
    reopen_verify(SEG_SIZE);
    jr__logstore_compact(store, UINT64_MAX);
    barrier();
    ck_assert_uint_eq(seg_firsts(firsts, 64), 1);
    ck_assert_uint_eq(firsts[0], before[n - 1]);
    model_drop_below(before[n - 1]);
    reopen_verify(SEG_SIZE);
    append_ok(3, 10, 1);
    reopen_verify(SEG_SIZE);
}
END_TEST

/* ---- torn tails ---- */

/* Three records in seg-1: 5 entries in the first two, 3 in the last. */
static uint8_t *three_records(size_t *len, size_t *last_off, size_t *end)
{
    char path[128];
    size_t offs[8];
    uint8_t *img;
    reopen_verify(SEG_SIZE);
    append_ok(3, 50, 1);
    append_ok(2, 77, 1);
    append_ok(3, 41, 2);
    store_close();
    seg_path(path, sizeof path, 1);
    img = file_read(path, len);
    ck_assert_uint_eq(record_offsets(img, *len, offs, 8, end), 3);
    *last_off = offs[2];
    model_truncate(6); /* what survives losing the last record */
    return img;
}

enum cut_kind { CUT_ZEROS, CUT_GARBAGE, CUT_FILE };

static void torn_at_every_offset(enum cut_kind kind)
{
    char path[128];
    uint8_t *img, *copy;
    size_t len, last_off, end, cut;
    seg_path(path, sizeof path, 1);
    img = three_records(&len, &last_off, &end);
    copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    if (kind == CUT_ZEROS) {
        /* Zeros over the zero padding would change nothing. */
        end = record_data_end(img, last_off);
    }
    for (cut = last_off; cut < end; cut++) {
        char off_text[32];
        keep_only_first_segment(); /* an append below may have rolled */
        memcpy(copy, img, len);
        memset(copy + cut, kind == CUT_GARBAGE ? 0xA5 : 0, end - cut);
        file_write(path, copy, kind == CUT_FILE ? cut : len);
        n_warnings = 0;
        model_truncate(6);
        reopen_verify(SEG_SIZE);
        if (kind == CUT_GARBAGE || cut > last_off) {
            /* Something non-zero was dropped, and said so. */
            ck_assert_int_eq(n_warnings, 1);
            snprintf(off_text, sizeof off_text, "offset %zu", last_off);
            ck_assert_ptr_nonnull(strstr(last_warning, off_text));
            ck_assert_ptr_nonnull(
                strstr(last_warning, "seg-00000000000000000001"));
        } else {
            ck_assert_int_eq(n_warnings, 0); /* a clean end */
        }
        /* The next append goes where the torn record was. */
        append_ok(2, 9, 3);
        n_warnings = 0;
        reopen_verify(SEG_SIZE);
        ck_assert_msg(n_warnings == 0, "cut at %zu: %s", cut, last_warning);
        store_close();
    }
    free(copy);
    free(img);
}

START_TEST(torn_tail_of_zeros_at_every_offset_drops_only_the_last_record)
{
    torn_at_every_offset(CUT_ZEROS);
}
END_TEST

START_TEST(torn_tail_of_garbage_at_every_offset_drops_only_the_last_record)
{
    torn_at_every_offset(CUT_GARBAGE);
}
END_TEST

START_TEST(file_cut_at_every_offset_drops_only_the_last_record)
{
    torn_at_every_offset(CUT_FILE);
}
END_TEST

/* ---- damage ---- */

START_TEST(bit_flip_anywhere_in_a_middle_record_is_ecorrupt)
{
    char path[128], errmsg[JR_ERRMSG_SIZE], off_text[32];
    size_t offs[8], len, end, o;
    uint8_t *img;
    struct raft_entry *entries;
    uint64_t start;
    size_t n;
    reopen_verify(SEG_SIZE);
    append_ok(3, 50, 1);
    append_ok(2, 77, 1); /* header, 2 entry headers, odd payload, padding */
    append_ok(3, 41, 2);
    store_close();
    seg_path(path, sizeof path, 1);
    img = file_read(path, &len);
    ck_assert_uint_eq(record_offsets(img, len, offs, 8, &end), 3);
    snprintf(off_text, sizeof off_text, "offset %zu", offs[1]);
    for (o = offs[1]; o < offs[2]; o++) {
        img[o] ^= (uint8_t)(1u << (o % 8));
        file_write(path, img, len);
        ck_assert_int_eq(store_open(SEG_SIZE, &start, &entries, &n, errmsg),
                         JR_ECORRUPT);
        ck_assert_msg(strstr(errmsg, path) != NULL &&
                          strstr(errmsg, off_text) != NULL &&
                          strstr(errmsg, "wipe the data directory") != NULL,
                      "flip at %zu: %s", o, errmsg);
        img[o] ^= (uint8_t)(1u << (o % 8));
    }
    file_write(path, img, len);
    free(img);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(damage_at_the_end_of_a_segment_that_is_not_the_last_is_ecorrupt)
{
    char path[128], errmsg[JR_ERRMSG_SIZE], off_text[32];
    size_t offs[64], len, end;
    uint64_t firsts[64], start;
    struct raft_entry *entries;
    size_t n;
    unsigned nrec, i;
    uint8_t *img;
    reopen_verify(SEG_SIZE);
    for (i = 0; i < 60; i++) {
        append_ok(1, 3000, 1);
    }
    ck_assert_uint_ge(seg_firsts(firsts, 64), 2);
    store_close();
    seg_path(path, sizeof path, firsts[0]);
    img = file_read(path, &len);
    nrec = record_offsets(img, len, offs, 64, &end);
    ck_assert_uint_ge(nrec, 2);
    snprintf(off_text, sizeof off_text, "offset %zu", offs[nrec - 1]);

    /* A flipped bit in its last record. */
    img[end - 20] ^= 0x10;
    file_write(path, img, len);
    ck_assert_int_eq(store_open(SEG_SIZE, &start, &entries, &n, errmsg),
                     JR_ECORRUPT);
    ck_assert_msg(strstr(errmsg, path) && strstr(errmsg, off_text), "%s",
                  errmsg);
    img[end - 20] ^= 0x10;

    /* Its last record cut, as a torn write would: not possible there. */
    memset(img + end - 20, 0, 20);
    file_write(path, img, len);
    ck_assert_int_eq(store_open(SEG_SIZE, &start, &entries, &n, errmsg),
                     JR_ECORRUPT);
    ck_assert_msg(strstr(errmsg, off_text) && strstr(errmsg, "not the last"),
                  "%s", errmsg);
    free(img);
}
END_TEST

START_TEST(bad_segment_header_is_ecorrupt)
{
    char path[128], errmsg[JR_ERRMSG_SIZE];
    uint64_t start;
    struct raft_entry *entries;
    size_t n, len, o;
    uint8_t *img;
    reopen_verify(SEG_SIZE);
    append_ok(3, 10, 1);
    store_close();
    seg_path(path, sizeof path, 1);
    img = file_read(path, &len);
    for (o = 0; o < 40; o++) {
        img[o] ^= 0x04;
        file_write(path, img, len);
        ck_assert_int_eq(store_open(SEG_SIZE, &start, &entries, &n, errmsg),
                         JR_ECORRUPT);
        ck_assert_msg(strstr(errmsg, path) && strstr(errmsg, "offset 0"), "%s",
                      errmsg);
        img[o] ^= 0x04;
    }
    file_write(path, img, 10);
    ck_assert_int_eq(store_open(SEG_SIZE, &start, &entries, &n, errmsg),
                     JR_ECORRUPT);
    free(img);
}
END_TEST

START_TEST(missing_middle_segment_is_ecorrupt)
{
    char path[128], errmsg[JR_ERRMSG_SIZE];
    uint64_t firsts[64], start;
    struct raft_entry *entries;
    size_t n;
    unsigned i;
    reopen_verify(SEG_SIZE);
    for (i = 0; i < 60; i++) {
        append_ok(1, 3000, 1);
    }
    ck_assert_uint_ge(seg_firsts(firsts, 64), 3);
    store_close();
    seg_path(path, sizeof path, firsts[1]);
    ck_assert_int_eq(unlink(path), 0);
    seg_path(path, sizeof path, firsts[2]);
    ck_assert_int_eq(store_open(SEG_SIZE, &start, &entries, &n, errmsg),
                     JR_ECORRUPT);
    ck_assert_msg(strstr(errmsg, path) != NULL, "%s", errmsg);
}
END_TEST

/* ---- failing disks ---- */

static void fails_then_recovers(const char *op, int err, int code)
{
    char strerr[64];
    struct batch *b;
    int status;
    reopen_verify(SEG_SIZE);
    append_ok(3, 100, 1);
    fault_set(op, "seg-", err, 1);
    b = submit(4, 2, 300, 1);
    wait_done(&b->d);
    ck_assert_int_eq(b->d.status, code);
    snprintf(strerr, sizeof strerr, "%s", strerror(err));
    ck_assert_msg(strstr(b->d.errmsg, "append to seg-00000000000000000001") &&
                      strstr(b->d.errmsg, strerr),
                  "%s", b->d.errmsg);
    ck_assert_int_eq(finish(b), code);
    ck_assert_uint_eq(jr__logstore_last_index(store), 3);
    /* Nothing of it is visible; then the store goes on. */
    reopen_verify(SEG_SIZE);
    fault_set(op, "seg-", err, 1);
    b = submit(4, 2, 300, 1);
    status = finish(b);
    ck_assert_int_eq(status, code);
    /* Shorter than what failed: what the failure left must not show. */
    append_ok(1, 20, 1);
    append_ok(2, 20, 1);
    reopen_verify(SEG_SIZE);
}

START_TEST(write_enospc_fails_the_append_and_the_store_goes_on)
{
    fails_then_recovers("write", ENOSPC, JR_ENOSPACE);
}
END_TEST

START_TEST(write_eio_fails_the_append_and_the_store_goes_on)
{
    fails_then_recovers("write", EIO, JR_EIO);
}
END_TEST

START_TEST(sync_eio_fails_the_append_and_the_store_goes_on)
{
    fails_then_recovers("sync", EIO, JR_EIO);
}
END_TEST

START_TEST(sync_enospc_fails_the_append_and_the_store_goes_on)
{
    fails_then_recovers("sync", ENOSPC, JR_ENOSPACE);
}
END_TEST

/* Hold mode (a follower's store): a write that fails for lack of space is
 * tried again until it succeeds, with the appends behind it kept in order,
 * and one warning says so. */
START_TEST(hold_mode_retries_a_full_disk_until_the_write_succeeds)
{
    struct batch *b1, *b2;
    int hits;
    reopen_verify(SEG_SIZE);
    append_ok(3, 100, 1);
    n_warnings = 0;
    jr__logstore_hold(store, true);
    fault_set("write", "seg-", ENOSPC, 1);
    b1 = submit(4, 2, 300, 1);
    b2 = submit(6, 1, 50, 1);
    ck_assert_int_eq(finish(b1), 0);
    ck_assert_int_eq(finish(b2), 0);
    uv_mutex_lock(&faults.mutex);
    hits = faults.hits;
    uv_mutex_unlock(&faults.mutex);
    ck_assert_int_eq(hits, 1);
    ck_assert_int_eq(n_warnings, 1);
    ck_assert_msg(strstr(last_warning, "No space left on device") &&
                      strstr(last_warning, "tries again"),
                  "%s", last_warning);
    ck_assert_uint_eq(jr__logstore_last_index(store), 6);
    reopen_verify(SEG_SIZE);
}
END_TEST

/* A held write gives up when the store closes, and when hold mode ends (the
 * node became leader: its clients must hear of the full disk). */
START_TEST(hold_mode_gives_up_at_close_and_when_switched_off)
{
    struct batch *b;
    reopen_verify(SEG_SIZE);
    append_ok(3, 100, 1);
    jr__logstore_hold(store, true);
    fault_set("write", "seg-", ENOSPC, -1);
    b = submit(4, 2, 300, 1);
    /* Let it fail at least once, then switch hold mode off. */
    while (true) {
        int hits;
        uv_mutex_lock(&faults.mutex);
        hits = faults.hits;
        uv_mutex_unlock(&faults.mutex);
        if (hits > 0) {
            break;
        }
        uv_sleep(1);
    }
    jr__logstore_hold(store, false);
    ck_assert_int_eq(finish(b), JR_ENOSPACE);
    jr__logstore_hold(store, true);
    b = submit(4, 2, 300, 1);
    store_close(); /* must not hang */
    ck_assert_int_eq(finish(b), JR_ENOSPACE);
    fault_set(NULL, NULL, 0, 0);
    reopen_verify(SEG_SIZE);
    ck_assert_uint_eq(jr__logstore_last_index(store), 3);
}
END_TEST

START_TEST(a_failure_fails_the_appends_coalesced_or_chained_with_it)
{
    struct batch *b[20];
    unsigned i;
    reopen_verify(SEG_SIZE);
    append_ok(2, 10, 1);
    fault_set("sync", "seg-", EIO, 1);
    for (i = 0; i < 20; i++) {
        b[i] = submit(3 + 2 * i, 2, 10, 1);
    }
    for (i = 0; i < 20; i++) {
        wait_done(&b[i]->d);
        ck_assert_msg(b[i]->d.status == JR_EIO, "append %u: %s", i,
                      b[i]->d.errmsg);
        ck_assert_int_eq(finish(b[i]), JR_EIO);
    }
    /* The next append starts where the log ends. */
    append_ok(4, 10, 1);
    reopen_verify(SEG_SIZE);
}
END_TEST

/* A retry submitted from the failure's own callback is not undone by the
 * failures of the appends that were chained on the failed one. */
static struct batch *retry;
static void retry_cb(void *arg, int status, const char *errmsg)
{
    done_cb(arg, status, errmsg);
    if (status != 0 && retry == NULL) {
        retry = submit(model_next(), 2, 10, 1);
    }
}

START_TEST(a_retry_from_the_failure_callback_is_kept)
{
    struct batch *b[5];
    unsigned i;
    reopen_verify(SEG_SIZE);
    append_ok(2, 10, 1);
    fault_set("write", "seg-", EIO, 1);
    retry = NULL;
    for (i = 0; i < 5; i++) {
        b[i] = batch_new(3 + i, 1, 10, 1);
        ck_assert_int_eq(jr__logstore_append(store, 3 + i, b[i]->entries, 1,
                                             retry_cb, &b[i]->d),
                         0);
    }
    for (i = 0; i < 5; i++) {
        ck_assert_int_eq(finish(b[i]), JR_EIO);
    }
    ck_assert_ptr_nonnull(retry);
    ck_assert_int_eq(finish(retry), 0);
    append_ok(1, 10, 1);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(allocate_enospc_fails_the_roll_and_the_store_goes_on)
{
    struct batch *b;
    int status = 0;
    unsigned i;
    reopen_verify(SEG_SIZE);
    append_ok(1, 10, 1);
    barrier(); /* the next segment is prepared */
    fault_set("allocate", NULL, ENOSPC, -1);
    /* Too big for the prepared segment: it has to grow. */
    b = submit(2, 1, 100 << 10, 1);
    wait_done(&b->d);
    ck_assert_msg(strstr(b->d.errmsg, "allocate") &&
                      strstr(b->d.errmsg, "No space left on device"),
                  "%s", b->d.errmsg);
    ck_assert_int_eq(finish(b), JR_ENOSPACE);
    /* The prepared segment takes one roll, the next roll fails. */
    for (i = 0; i < 40 && status == 0; i++) {
        b = submit(model_next(), 1, 4000, 1);
        status = finish(b);
    }
    ck_assert_int_eq(status, JR_ENOSPACE);
    ck_assert_uint_gt(model.n, 16);
    fault_set(NULL, NULL, 0, 0);
    append_ok(1, 4000, 1);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(rename_failure_fails_the_roll_and_the_store_goes_on)
{
    struct batch *b;
    reopen_verify(SEG_SIZE);
    fault_set("rename", NULL, EIO, 1);
    b = submit(1, 1, 10, 1);
    wait_done(&b->d);
    ck_assert_msg(strstr(b->d.errmsg, "rename"), "%s", b->d.errmsg);
    ck_assert_int_eq(finish(b), JR_EIO);
    append_ok(1, 10, 1);
    reopen_verify(SEG_SIZE);
}
END_TEST

START_TEST(failing_marker_write_leaves_a_prefix_of_the_old_log)
{
    char errmsg[JR_ERRMSG_SIZE];
    reopen_verify(SEG_SIZE);
    append_ok(10, 30, 1);
    fault_set("write", "seg-", EIO, 1);
    ck_assert_int_eq(truncate_wait(4, errmsg), JR_EIO);
    ck_assert_ptr_nonnull(strstr(errmsg, "truncate"));
    reopen_verify(SEG_SIZE); /* untouched */
    ck_assert_int_eq(truncate_wait(4, NULL), 0);
    reopen_verify(SEG_SIZE);
}
END_TEST

Suite *logstore_suite(void)
{
    Suite *s = suite_create("logstore");
    TCase *tc;

    tc = tcase_create("round_trip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, empty_directory_loads_as_an_empty_log_from_index_1);
    tcase_add_test(tc, one_entry_round_trips);
    tcase_add_test(tc, corked_appends_complete_in_order_once_uncorked);
    tcase_add_test(tc, many_entries_in_one_append_round_trip);
    tcase_add_test(tc, many_appends_round_trip_in_order);
    tcase_add_test(tc, entries_larger_than_a_segment_round_trip);
    tcase_add_test(tc, zero_length_entries_round_trip);
    tcase_add_test(tc, lengths_not_multiple_of_8_round_trip);
    tcase_add_test(tc, terms_and_types_are_preserved);
    tcase_add_test(tc, loaded_entries_get_a_buffer_each);
    suite_add_tcase(s, tc);

    tc = tcase_create("callbacks");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, callbacks_run_once_in_submission_order_never_inline);
    tcase_add_test(tc, group_commit_coalesces_1000_appends_into_few_fdatasyncs);
    tcase_add_test(tc, close_with_requests_queued_runs_their_callbacks_first);
    tcase_add_test(tc, invalid_requests_fail_at_once_and_never_call_back);
    tcase_add_test(tc, last_index_follows_what_is_durable);
    suite_add_tcase(s, tc);

    tc = tcase_create("segments");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, appends_roll_over_segments_and_load_back);
    tcase_add_test(tc, segments_are_preallocated_and_the_next_one_prepared);
    tcase_add_test(tc, leftover_files_are_removed_on_load);
    suite_add_tcase(s, tc);

    tc = tcase_create("truncate");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, truncate_in_the_middle_of_a_batch);
    tcase_add_test(tc, truncate_at_a_segment_boundary_removes_later_segments);
    tcase_add_test(tc, truncate_inside_an_earlier_segment);
    tcase_add_test(tc, truncate_of_everything_then_append_from_the_start);
    tcase_add_test(tc, truncate_is_ordered_between_appends);
    tcase_add_test(tc, random_operations_match_the_model);
    suite_add_tcase(s, tc);

    tc = tcase_create("reset_compact");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, reset_discards_the_log_and_starts_at_the_given_index);
    tcase_add_test(
        tc, segments_older_than_a_committed_reset_are_ignored_and_removed);
    tcase_add_test(tc, reset_failing_at_rename_keeps_the_old_log);
    tcase_add_test(tc, compact_removes_old_segments_but_never_the_last);
    suite_add_tcase(s, tc);

    tc = tcase_create("torn_tail");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(
        tc, torn_tail_of_zeros_at_every_offset_drops_only_the_last_record);
    tcase_add_test(
        tc, torn_tail_of_garbage_at_every_offset_drops_only_the_last_record);
    tcase_add_test(tc, file_cut_at_every_offset_drops_only_the_last_record);
    suite_add_tcase(s, tc);

    tc = tcase_create("damage");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, bit_flip_anywhere_in_a_middle_record_is_ecorrupt);
    tcase_add_test(
        tc, damage_at_the_end_of_a_segment_that_is_not_the_last_is_ecorrupt);
    tcase_add_test(tc, bad_segment_header_is_ecorrupt);
    tcase_add_test(tc, missing_middle_segment_is_ecorrupt);
    suite_add_tcase(s, tc);

    tc = tcase_create("failing_disk");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, write_enospc_fails_the_append_and_the_store_goes_on);
    tcase_add_test(tc, hold_mode_retries_a_full_disk_until_the_write_succeeds);
    tcase_add_test(tc, hold_mode_gives_up_at_close_and_when_switched_off);
    tcase_add_test(tc, write_eio_fails_the_append_and_the_store_goes_on);
    tcase_add_test(tc, sync_eio_fails_the_append_and_the_store_goes_on);
    tcase_add_test(tc, sync_enospc_fails_the_append_and_the_store_goes_on);
    tcase_add_test(tc,
                   a_failure_fails_the_appends_coalesced_or_chained_with_it);
    tcase_add_test(tc, a_retry_from_the_failure_callback_is_kept);
    tcase_add_test(tc, allocate_enospc_fails_the_roll_and_the_store_goes_on);
    tcase_add_test(tc, rename_failure_fails_the_roll_and_the_store_goes_on);
    tcase_add_test(tc, failing_marker_write_leaves_a_prefix_of_the_old_log);
    suite_add_tcase(s, tc);

    return s;
}
