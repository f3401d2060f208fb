/* fsm.c: canonical/raft's FSM interface on top of the embedder's jr_fsm:
 * per-command results routed to their submitters, and snapshots streamed
 * through writer and reader objects. */
#include <stdlib.h>
#include <string.h>

#include "jr_internal.h"

/* A snapshot is built in chunks of CHUNK_MIN bytes, doubling up to
 * CHUNK_SMALL_MAX, then of CHUNK_BIG. glibc raises its mmap threshold to
 * the size of each mmapped block freed, up to 32 MiB, after which blocks
 * of a MiB come from the heap and stay in it once freed: with 1 MiB chunks
 * a 100 MiB state's snapshot left 112 MiB of free heap behind it (the RSS
 * of a follower holding 1M keys of 100 bytes: 289 MiB, 177 after a
 * malloc_trim). Blocks over 32 MiB are always mmapped, and given back when
 * freed; their pages cost memory only once written. */
#define CHUNK_MIN ((size_t)64 << 10)
#define CHUNK_SMALL_MAX ((size_t)1 << 20)
#define CHUNK_BIG ((size_t)64 << 20)

struct jr_snapshot_writer {
    struct raft_buffer *bufs;
    unsigned n;
    unsigned cap;
    size_t last_size; /* bytes allocated for bufs[n - 1] */
    int error;
};

static size_t next_chunk_size(size_t last)
{
    if (last == 0) {
        return CHUNK_MIN;
    }
    return last < CHUNK_SMALL_MAX ? last * 2 : CHUNK_BIG;
}

struct jr_snapshot_reader {
    const char *data;
    size_t len;
    size_t pos;
};

int jr_snapshot_write(struct jr_snapshot_writer *w, const void *buf, size_t len)
{
    const char *p = buf;
    if (w->error != 0) {
        return w->error;
    }
    while (len > 0) {
        struct raft_buffer *last = w->n > 0 ? &w->bufs[w->n - 1] : NULL;
        size_t room, k;
        if (last == NULL || last->len == w->last_size) {
            size_t size = next_chunk_size(w->last_size);
            if (w->n == w->cap) {
                unsigned cap = w->cap == 0 ? 8 : w->cap * 2;
                struct raft_buffer *b = raft_realloc(w->bufs, cap * sizeof *b);
                if (b == NULL) {
                    return w->error = JR_ENOMEM;
                }
                w->bufs = b;
                w->cap = cap;
            }
            last = &w->bufs[w->n];
            last->base = raft_malloc(size);
            if (last->base == NULL) {
                return w->error = JR_ENOMEM;
            }
            last->len = 0;
            w->last_size = size;
            w->n++;
        }
        room = w->last_size - last->len;
        k = len < room ? len : room;
        memcpy((char *)last->base + last->len, p, k);
        last->len += k;
        p += k;
        len -= k;
    }
    return 0;
}

size_t jr_snapshot_read(struct jr_snapshot_reader *r, void *buf, size_t len)
{
    size_t k = r->len - r->pos;
    if (k > len) {
        k = len;
    }
    memcpy(buf, r->data + r->pos, k);
    r->pos += k;
    return k;
}

size_t jr_snapshot_remaining(const struct jr_snapshot_reader *r)
{
    return r->len - r->pos;
}

static void writer_free(struct jr_snapshot_writer *w)
{
    unsigned i;
    for (i = 0; i < w->n; i++) {
        raft_free(w->bufs[i].base);
    }
    raft_free(w->bufs);
}

static int fsm_apply(struct raft_fsm *fsm,
                     const struct raft_buffer *buf,
                     void **result)
{
    struct jr_node *n = fsm->data;
    /* raft updates last_applied after this returns. */
    uint64_t index = n->raft.last_applied + 1;
    void *res = NULL;
    size_t res_len = 0, len;
    bool internal = false;
    int rv = jr__entry_unwrap(buf->base, buf->len, &len, &internal);
    if (rv != 0) {
        /* Only our own envelopes enter the log; this is disk or memory
         * corruption, and every node sees the same bytes. */
        jr__errorf(n,
                   "entry %llu: malformed envelope of %zu bytes; not "
                   "applied",
                   (unsigned long long)index, buf->len);
        jr__applied(n, index, JR_ECORRUPT, NULL, 0);
        *result = NULL;
        return 0;
    }
    if (internal) {
        rv = jr__libstate_apply(n, buf->base, len, &res, &res_len);
        if (rv != 0) {
            jr__errorf(n, "entry %llu: malformed library command; not applied",
                       (unsigned long long)index);
        }
    } else {
        rv = n->fsm.apply(n->fsm.data, index, buf->base, len, &res, &res_len);
    }
    jr__applied(n, index, rv, res, res_len);
    /* Never report failure to raft: it would stop applying the log for
     * good. A failed command is a deterministic outcome like any other. */
    *result = NULL;
    return 0;
}

int jr__snapshot_capture(struct jr_node *n, struct jr_snapshot_writer **out)
{
    struct jr_snapshot_writer *w = calloc(1, sizeof *w);
    int rv;
    *out = w;
    if (w == NULL) {
        return JR_ENOMEM;
    }
    rv = jr__libstate_snapshot(n, w);
    if (rv == 0) {
        rv = n->fsm.snapshot(n->fsm.data, w);
    }
    if (rv == 0 && w->error != 0) {
        rv = w->error;
    }
    if (rv == 0 && w->n == 0) {
        /* raft needs at least one buffer. */
        w->bufs = raft_malloc(sizeof *w->bufs);
        if (w->bufs == NULL) {
            rv = JR_ENOMEM;
        } else {
            w->bufs[0].base = raft_malloc(1);
            w->bufs[0].len = 0;
            w->n = 1;
            w->cap = 1;
            if (w->bufs[0].base == NULL) {
                rv = JR_ENOMEM;
            }
        }
    }
    return rv;
}

unsigned jr__snapshot_buffers(const struct jr_snapshot_writer *w,
                              const struct raft_buffer **bufs)
{
    *bufs = w->bufs;
    return w->n;
}

void jr__snapshot_writer_free(struct jr_snapshot_writer *w)
{
    if (w != NULL) {
        writer_free(w);
        free(w);
    }
}

static int fsm_snapshot(struct raft_fsm *fsm,
                        struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
    struct jr_node *n = fsm->data;
    struct jr_snapshot_writer *w;
    int rv = jr__snapshot_capture(n, &w);
    if (rv != 0) {
        jr__errorf(n,
                   "snapshot at index %llu failed: state machine "
                   "returned %d; will retry",
                   (unsigned long long)n->raft.last_applied, rv);
        jr__snapshot_writer_free(w);
        return rv == JR_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
    }
    /* raft takes the buffers and their array. */
    *bufs = w->bufs;
    *n_bufs = w->n;
    free(w);
    jr__debugf(n, "snapshot at index %llu: %u chunk(s)",
               (unsigned long long)n->raft.last_applied, *n_bufs);
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct jr_node *n = fsm->data;
    struct jr_snapshot_reader r = {buf->base, buf->len, 0};
    uint64_t started = uv_hrtime();
    size_t skip;
    int rv = jr__libstate_restore(n, buf->base, buf->len, &skip);
    if (rv != 0) {
        jr__errorf(n,
                   "restore of a %zu-byte snapshot failed: its library "
                   "section is corrupt",
                   buf->len);
        return RAFT_CORRUPT;
    }
    r.pos = skip;
    rv = n->fsm.restore(n->fsm.data, &r);
    if (rv != 0) {
        jr__errorf(n,
                   "restore of a %zu-byte snapshot failed: state machine "
                   "returned %d",
                   buf->len, rv);
        return RAFT_CORRUPT;
    }
    jr__infof(n, "restored a %zu-byte snapshot in %llu ms", buf->len,
              (unsigned long long)((uv_hrtime() - started) / 1000000));
    jr__sync_sentinel_clear(n);
    /* On success the buffer is ours (the FSM's) to free. */
    raft_free(buf->base);
    return 0;
}

int jr__fsm_init(struct jr_node *n)
{
    memset(&n->raft_fsm, 0, sizeof n->raft_fsm);
    n->raft_fsm.version = 1;
    n->raft_fsm.data = n;
    n->raft_fsm.apply = fsm_apply;
    n->raft_fsm.snapshot = fsm_snapshot;
    n->raft_fsm.restore = fsm_restore;
    return 0;
}
