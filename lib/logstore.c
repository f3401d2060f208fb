/* logstore.c: the durable raft log behind logstore.h: preallocated segment
 * files of checksummed records, written by a thread of its own that
 * coalesces every queued append into one write and one fdatasync. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "jr_internal.h"
#include "logstore.h"

/*
 * On-disk format, every integer little-endian.
 *
 * A segment file "seg-<first index, 20 digits>" starts with a 40-byte
 * header:
 *   0  magic "JRLOGSG1"         8
 *   8  format version (1)       u32
 *  12  reserved (0)             u32
 *  16  first index              u64   (must match the file name)
 *  24  epoch                    u64   (bumped by every reset)
 *  32  CRC32 of bytes 0..31     u32
 *  36  reserved (0)             u32
 * then records, each 8-byte aligned, then zeros up to the preallocated size.
 *
 * A record is one write of the writer thread: the entries of every append
 * it coalesced that fit in the segment.
 *   0  magic "JRRC"             u32
 *   4  CRC32 of bytes 8..end    u32   (header, entry headers, payloads and
 *                                      padding: a torn write never passes)
 *   8  first index              u64
 *  16  number of entries        u32
 *  20  reserved (0)             u32
 *  24  total payload length     u64
 *  32  per entry, 16 bytes: term u64, length u32, type u8, 3 zero bytes
 *      then the payloads back to back, then zeros up to 8-byte alignment.
 *
 * A record of no entries is a truncation marker: the entries from its first
 * index on, written before it in the same segment, are deleted. Truncation
 * appends one instead of overwriting acknowledged data in place, so that a
 * torn write of it can only leave the old log.
 *
 * Segments of an epoch lower than the highest found are leftovers of a
 * reset interrupted after its new segment was in place, and are ignored
 * (and removed) on load. Files "open-<n>" are preallocated segments not yet
 * named, "reset.tmp" a reset not yet committed: both are removed on load.
 */

#define SEG_MAGIC "JRLOGSG1"
#define SEG_VERSION 1
#define SEG_HDR 40
#define REC_MAGIC 0x4352524Au /* "JRRC" */
#define REC_HDR 32
#define ENTRY_HDR 16
#define MIN_SEGMENT_SIZE ((size_t)64 << 10)
#define NAME_SIZE 32
#define PATH_SIZE 4096
#define SEG_PREFIX "seg-"
#define OPEN_PREFIX "open-"
#define RESET_FILE "reset.tmp"
#define DAMAGED                                                     \
    "the log of this node is damaged: wipe the data directory and " \
    "rejoin the node"

static const uint8_t zeros[64 << 10];
#define PREP_STEP ((uint64_t)256 << 10)

enum req_type {
    REQ_APPEND = 1,
    REQ_TRUNCATE,
    REQ_RESET,
    REQ_COMPACT,
    REQ_CLOSE,
};

struct req {
    queue link; /* in pending, a batch of the writer, or done */
    enum req_type type;
    uint64_t index; /* first index, truncation point, start or compaction */
    jr__logstore_cb cb;
    void *arg;
    uint64_t gen; /* loop-side generation when submitted */
    int status;
    char errmsg[JR_ERRMSG_SIZE];
    uint64_t next_index;  /* writer's next index once this was done */
    uint64_t start_index; /* writer's first index once this was done */
    unsigned n;
    struct raft_entry entries[]; /* copy of the array; buffers borrowed */
};

/* A segment file as the writer knows it. */
struct seg {
    uint64_t first;
    uint64_t last; /* first - 1 when it holds no entry */
    uint64_t end;  /* offset after its last record */
    uint64_t size; /* bytes allocated */
};

struct jr__logstore {
    /* Configuration: set by open, then read-only. */
    uv_loop_t *loop;
    char *dir;
    uint64_t segment_size;
    int (*fault)(void *data, const char *op, const char *file);
    void *fault_data;
    void (*log)(void *data, int level, const char *msg);
    void *log_data;

    /* Loop thread only. */
    uv_poll_t poll; /* on efd: the writer has finished requests */
    bool loaded;
    bool closing;
    bool hold_loop;      /* the hold mode last set, so that an unchanged one
                            costs no lock on every append */
    bool corked;         /* jr__logstore_cork: do not wake the writer yet */
    bool kick_pending;   /* queued while corked: wake it at uncork */
    uint64_t loop_next;  /* index the next append must start at */
    uint64_t gen;        /* bumped whenever loop_next is set back */
    uint64_t last_index; /* durable last index, as last reported */
    void (*close_cb)(void *arg);
    void *close_arg;
    struct req close_req; /* so that close cannot fail */

    /* Between the two threads, under mutex. */
    uv_mutex_t mutex;
    uv_cond_t cond;
    queue pending;  /* submitted, not yet taken by the writer */
    queue done;     /* finished, not yet delivered on the loop */
    int efd;        /* eventfd the writer signals when done was empty */
    bool abort;     /* open failed after the writer started */
    bool hold;      /* a full or failing disk holds requests (see hold_wait) */
    int held_err;   /* the error a held write waits out; 0 when writing */
    bool closing_w; /* close submitted: holding stops */
    uv_thread_t thread;

    /* Writer thread only (load sets them up before the first request). */
    struct seg *segs; /* by index; the last one is written to */
    unsigned n_segs;
    unsigned cap_segs;
    int fd;             /* of segs[n_segs - 1], or -1 */
    uint64_t dirty_end; /* bytes after its end up to here may be non-zero */
    bool dir_dirty;     /* a rename or unlink awaits the directory fsync */
    int prep_fd;        /* the next segment, preallocated, or -1 */
    uint64_t prep_size;
    uint64_t prep_zeroed; /* bytes of it zeroed so far */
    bool prep_synced;     /* all zeroed and fdatasync'd: ready to use */
    uint64_t prep_serial; /* its name is "open-<prep_serial>" */
    uint64_t next_index;
    uint64_t start_index;
    uint64_t epoch;
    int fail_status; /* of the last failure, for the requests chained on it */
    char fail_msg[JR_ERRMSG_SIZE];
    char werr[JR_ERRMSG_SIZE]; /* "file: call: reason" of the last failure */
    uint8_t *buf;              /* encoding buffer */
    size_t buf_cap;
};

/* ---- encoding helpers ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint64_t pad8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static uint32_t checksum(const uint8_t *p, size_t len)
{
    return (uint32_t)crc32_z(0, p, len);
}

static void segment_header(uint8_t *p, uint64_t first, uint64_t epoch)
{
    memset(p, 0, SEG_HDR);
    memcpy(p, SEG_MAGIC, 8);
    put32(p + 8, SEG_VERSION);
    put64(p + 16, first);
    put64(p + 24, epoch);
    put32(p + 32, checksum(p, 32));
}

/* Name of the segment starting at first; NAME_SIZE always suffices. */
static void seg_name(char *name, uint64_t first)
{
    int n = snprintf(name, NAME_SIZE, SEG_PREFIX "%020" PRIu64, first);
    assert(n > 0 && n < NAME_SIZE);
    (void)n;
}

static void open_name(char *name, uint64_t serial)
{
    int n = snprintf(name, NAME_SIZE, OPEN_PREFIX "%" PRIu64, serial);
    assert(n > 0 && n < NAME_SIZE);
    (void)n;
}

/* open checked that the directory leaves room for any of our names. */
static void path_of(const struct jr__logstore *s, const char *name, char *path)
{
    int n = snprintf(path, PATH_SIZE, "%s/%s", s->dir, name);
    assert(n > 0 && n < PATH_SIZE);
    (void)n;
}

/* Parse "seg-<20 digits>". */
static bool parse_seg_name(const char *name, uint64_t *first)
{
    const char *d = name + strlen(SEG_PREFIX);
    uint64_t v = 0;
    int i;
    if (strncmp(name, SEG_PREFIX, strlen(SEG_PREFIX)) != 0 || strlen(d) != 20) {
        return false;
    }
    for (i = 0; i < 20; i++) {
        if (d[i] < '0' || d[i] > '9' || v > (UINT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(d[i] - '0');
    }
    if (v == 0) {
        return false;
    }
    *first = v;
    return true;
}

static bool is_leftover_name(const char *name)
{
    const char *d = name + strlen(OPEN_PREFIX);
    if (strcmp(name, RESET_FILE) == 0) {
        return true;
    }
    if (strncmp(name, OPEN_PREFIX, strlen(OPEN_PREFIX)) != 0 || *d == '\0') {
        return false;
    }
    for (; *d != '\0'; d++) {
        if (*d < '0' || *d > '9') {
            return false;
        }
    }
    return true;
}

/* JR_* code of an errno from a file operation. */
static int code_of(int e)
{
    switch (e) {
        case ENOSPC:
        case EDQUOT: return JR_ENOSPACE;
        case ENOMEM: return JR_ENOMEM;
        default: return JR_EIO;
    }
}

/* ---- system calls of the writer, with the fault hook ---- */

static int io_fail(struct jr__logstore *s,
                   const char *file,
                   const char *call,
                   int e)
{
    jr__errf(s->werr, "%s: %s: %s", file, call, strerror(e));
    return code_of(e);
}

static int fault(struct jr__logstore *s, const char *op, const char *file)
{
    return s->fault != NULL ? s->fault(s->fault_data, op, file) : 0;
}

static int write_at(struct jr__logstore *s,
                    int fd,
                    const char *file,
                    const void *buf,
                    uint64_t len,
                    uint64_t off)
{
    const uint8_t *p = buf;
    int e = fault(s, "write", file);
    if (e != 0) {
        return io_fail(s, file, "write", e);
    }
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return io_fail(s, file, "write", errno);
        }
        if (n == 0) {
            return io_fail(s, file, "write", ENOSPC);
        }
        p += n;
        len -= (uint64_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int zero_range(struct jr__logstore *s,
                      int fd,
                      const char *file,
                      uint64_t from,
                      uint64_t to)
{
    while (from < to) {
        uint64_t n = to - from < sizeof zeros ? to - from : sizeof zeros;
        int rv = write_at(s, fd, file, zeros, n, from);
        if (rv != 0) {
            return rv;
        }
        from += n;
    }
    return 0;
}

static int file_sync(struct jr__logstore *s, int fd, const char *file)
{
    int e = fault(s, "sync", file);
    if (e == 0 && fdatasync(fd) != 0) {
        e = errno;
    }
    return e != 0 ? io_fail(s, file, "fdatasync", e) : 0;
}

static int allocate(struct jr__logstore *s,
                    int fd,
                    const char *file,
                    uint64_t size)
{
    int e = fault(s, "allocate", file);
    if (e == 0) {
        /* posix_fallocate returns the error instead of setting errno. */
        e = posix_fallocate(fd, 0, (off_t)size);
    }
    return e != 0 ? io_fail(s, file, "allocate", e) : 0;
}

static int rename_file(struct jr__logstore *s, const char *from, const char *to)
{
    char pfrom[PATH_SIZE], pto[PATH_SIZE];
    int e = fault(s, "rename", to);
    path_of(s, from, pfrom);
    path_of(s, to, pto);
    if (e == 0 && rename(pfrom, pto) != 0) {
        e = errno;
    }
    return e != 0 ? io_fail(s, to, "rename", e) : 0;
}

/* Make renames, creations and unlinks durable. */
static int dir_sync(struct jr__logstore *s)
{
    int e = fault(s, "sync", s->dir);
    if (e != 0) {
        return io_fail(s, s->dir, "fsync", e);
    }
    e = jr__fsync_dir(s->dir);
    if (e != 0) {
        return io_fail(s, s->dir, "fsync", e);
    }
    s->dir_dirty = false;
    return 0;
}

/* Close a descriptor whose data is already synced (or abandoned): a failing
 * close cannot lose anything that was acknowledged. */
static void close_synced(int fd)
{
    (void)close(fd);
}

static int unlink_file(struct jr__logstore *s, const char *name)
{
    char path[PATH_SIZE];
    path_of(s, name, path);
    if (unlink(path) != 0 && errno != ENOENT) {
        return io_fail(s, name, "unlink", errno);
    }
    s->dir_dirty = true;
    return 0;
}

/* ---- the writer: segments ---- */

static int segs_reserve(struct jr__logstore *s, unsigned n)
{
    struct seg *segs;
    unsigned cap = s->cap_segs > 0 ? s->cap_segs : 8;
    if (n <= s->cap_segs) {
        return 0;
    }
    while (cap < n) {
        cap *= 2;
    }
    segs = realloc(s->segs, cap * sizeof *segs);
    if (segs == NULL) {
        jr__errf(s->werr, "%s: out of memory", s->dir);
        return JR_ENOMEM;
    }
    s->segs = segs;
    s->cap_segs = cap;
    return 0;
}

static struct seg *seg_last(struct jr__logstore *s)
{
    assert(s->n_segs > 0);
    return &s->segs[s->n_segs - 1];
}

/* Open the last segment for writing again (after a truncation removed the
 * one that was open). */
static int reopen_last(struct jr__logstore *s)
{
    char name[NAME_SIZE], path[PATH_SIZE];
    struct seg *seg = seg_last(s);
    if (s->fd >= 0) {
        return 0;
    }
    seg_name(name, seg->first);
    path_of(s, name, path);
    s->fd = open(path, O_RDWR | O_CLOEXEC);
    if (s->fd < 0) {
        return io_fail(s, name, "open", errno);
    }
    /* A segment that was not the last holds zeros after its records. */
    s->dirty_end = seg->end;
    return 0;
}

/* Create a file of size bytes, allocated and written with zeros, so that
 * later writes into it change no metadata and fdatasync only flushes data. */
static int create_file(struct jr__logstore *s,
                       const char *name,
                       uint64_t size,
                       int *out)
{
    char path[PATH_SIZE];
    int fd, rv;
    path_of(s, name, path);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return io_fail(s, name, "create", errno);
    }
    if ((rv = allocate(s, fd, name, size)) != 0 ||
        (rv = zero_range(s, fd, name, 0, size)) != 0 ||
        (rv = file_sync(s, fd, name)) != 0) {
        close_synced(fd);
        (void)unlink(path); /* best effort: load removes leftovers */
        return rv;
    }
    *out = fd;
    return 0;
}

static void prep_discard(struct jr__logstore *s)
{
    char name[NAME_SIZE], path[PATH_SIZE];
    close_synced(s->prep_fd);
    s->prep_fd = -1;
    s->prep_synced = false;
    open_name(name, s->prep_serial);
    path_of(s, name, path);
    (void)unlink(path); /* best effort: load removes leftovers */
}

/* One step of making the next segment: create and allocate it, or zero
 * PREP_STEP more bytes of it (their writeback started at once, so the final
 * fdatasync has little left to flush), or fdatasync it once all is zeroed.
 * Zeroing a whole segment in one go held up the appends queued behind it
 * for 5-13 ms; in steps, an append waits for one step at most. */
static int prepare_step(struct jr__logstore *s, uint64_t size)
{
    char name[NAME_SIZE], path[PATH_SIZE];
    uint64_t to;
    int fd, rv;
    if (s->prep_fd < 0) {
        s->prep_serial++;
        open_name(name, s->prep_serial);
        path_of(s, name, path);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            return io_fail(s, name, "create", errno);
        }
        s->prep_fd = fd;
        s->prep_size = size;
        s->prep_zeroed = 0;
        s->prep_synced = false;
        if ((rv = allocate(s, fd, name, size)) != 0) {
            prep_discard(s);
        }
        return rv;
    }
    open_name(name, s->prep_serial);
    if (s->prep_zeroed < s->prep_size) {
        to = s->prep_size - s->prep_zeroed < PREP_STEP
                 ? s->prep_size
                 : s->prep_zeroed + PREP_STEP;
        rv = zero_range(s, s->prep_fd, name, s->prep_zeroed, to);
        if (rv != 0) {
            prep_discard(s);
            return rv;
        }
        (void)sync_file_range(s->prep_fd, (off_t)s->prep_zeroed,
                              (off_t)(to - s->prep_zeroed),
                              SYNC_FILE_RANGE_WRITE);
        s->prep_zeroed = to;
        return 0;
    }
    if ((rv = file_sync(s, s->prep_fd, name)) != 0) {
        prep_discard(s);
        return rv;
    }
    s->prep_synced = true;
    return 0;
}

/* Make the next segment ready now (a roll needs it). */
static int prepare(struct jr__logstore *s, uint64_t size)
{
    int rv;
    do {
        rv = prepare_step(s, size);
    } while (rv == 0 && !s->prep_synced);
    return rv;
}

/* Between batches, while no append waits: have the next segment ready
 * before the current one fills. A failure is not reported here; the roll
 * that needs the segment tries again and fails the append that needed it. */
static void prepare_ahead(struct jr__logstore *s)
{
    bool busy = false;
    while (s->n_segs > 0 && !s->prep_synced && !busy) {
        if (prepare_step(s, s->segment_size) != 0) {
            return;
        }
        uv_mutex_lock(&s->mutex);
        busy = !QUEUE_IS_EMPTY(&s->pending) || s->abort;
        uv_mutex_unlock(&s->mutex);
    }
}

/* Grow the last segment to size. */
static int grow(struct jr__logstore *s, uint64_t size)
{
    char name[NAME_SIZE];
    struct seg *seg = seg_last(s);
    int rv;
    seg_name(name, seg->first);
    if ((rv = allocate(s, s->fd, name, size)) != 0) {
        return rv;
    }
    seg->size = size;
    return 0;
}

/* Zero what a failed write or a torn tail left after the last record, before
 * the segment stops being the last: only the last may hold a torn tail. */
static int leave_clean(struct jr__logstore *s)
{
    char name[NAME_SIZE];
    struct seg *seg = seg_last(s);
    int rv;
    if (s->dirty_end <= seg->end) {
        return 0;
    }
    seg_name(name, seg->first);
    if ((rv = zero_range(s, s->fd, name, seg->end, s->dirty_end)) != 0 ||
        (rv = file_sync(s, s->fd, name)) != 0) {
        return rv;
    }
    s->dirty_end = seg->end;
    return 0;
}

/* Start a new segment at next_index with room for need bytes of records. */
static int roll(struct jr__logstore *s, uint64_t need)
{
    char name[NAME_SIZE], prep[NAME_SIZE];
    uint8_t hdr[SEG_HDR];
    uint64_t size = s->segment_size;
    struct seg *seg;
    int rv;

    if (SEG_HDR + need > size) {
        size = SEG_HDR + need;
    }
    if (s->n_segs > 0 && (rv = leave_clean(s)) != 0) {
        return rv;
    }
    if ((rv = segs_reserve(s, s->n_segs + 1)) != 0) {
        return rv;
    }
    if (!s->prep_synced && (rv = prepare(s, size)) != 0) {
        return rv;
    }
    open_name(prep, s->prep_serial);
    if (s->prep_size < size) {
        if ((rv = allocate(s, s->prep_fd, prep, size)) != 0) {
            return rv;
        }
        s->prep_size = size;
    }
    segment_header(hdr, s->next_index, s->epoch);
    if ((rv = write_at(s, s->prep_fd, prep, hdr, SEG_HDR, 0)) != 0 ||
        (rv = file_sync(s, s->prep_fd, prep)) != 0) {
        return rv;
    }
    seg_name(name, s->next_index);
    if ((rv = rename_file(s, prep, name)) != 0) {
        return rv;
    }
    /* The segment now exists under its name: adopt it even if the directory
     * fsync fails, and retry that fsync before anything in it is
     * acknowledged. */
    if (s->fd >= 0) {
        close_synced(s->fd);
    }
    seg = &s->segs[s->n_segs++];
    seg->first = s->next_index;
    seg->last = s->next_index - 1;
    seg->end = SEG_HDR;
    seg->size = s->prep_size;
    s->fd = s->prep_fd;
    s->prep_fd = -1;
    s->prep_synced = false;
    s->dirty_end = SEG_HDR;
    s->dir_dirty = true;
    return dir_sync(s);
}

/* Make sure the last segment has need bytes free after its end. */
static int make_room(struct jr__logstore *s, uint64_t need)
{
    struct seg *seg;
    int rv;
    if (s->n_segs == 0) {
        return roll(s, need);
    }
    if ((rv = reopen_last(s)) != 0) {
        return rv;
    }
    seg = seg_last(s);
    if (seg->end + need <= seg->size) {
        return 0;
    }
    /* An empty segment grows rather than be left behind empty. */
    if (seg->last < seg->first) {
        return grow(s, seg->end + need);
    }
    return roll(s, need);
}

static int buf_reserve(struct jr__logstore *s, uint64_t len)
{
    uint8_t *buf;
    size_t cap = s->buf_cap > 0 ? s->buf_cap : 4096;
    if (len <= s->buf_cap) {
        return 0;
    }
    if (len > SIZE_MAX / 2) {
        jr__errf(s->werr, "%s: record of %" PRIu64 " bytes", s->dir, len);
        return JR_ENOMEM;
    }
    while (cap < len) {
        cap *= 2;
    }
    buf = realloc(s->buf, cap);
    if (buf == NULL) {
        jr__errf(s->werr, "%s: out of memory", s->dir);
        return JR_ENOMEM;
    }
    s->buf = buf;
    s->buf_cap = cap;
    return 0;
}

/* Write len bytes of s->buf (a record, then zeros over anything a failed
 * write left) at the end of the last segment, and fdatasync. On failure the
 * end does not move: the next write goes to the same place. */
static int record_write(struct jr__logstore *s, uint64_t len, uint64_t wlen)
{
    char name[NAME_SIZE];
    struct seg *seg = seg_last(s);
    int rv;
    seg_name(name, seg->first);
    if (s->dir_dirty && (rv = dir_sync(s)) != 0) {
        return rv;
    }
    if ((rv = write_at(s, s->fd, name, s->buf, wlen, seg->end)) != 0 ||
        (rv = file_sync(s, s->fd, name)) != 0) {
        char why[JR_ERRMSG_SIZE];
        if (seg->end + wlen > s->dirty_end) {
            s->dirty_end = seg->end + wlen;
        }
        /* Best effort: take back what reached the page cache, so that a
         * load does not show what was never acknowledged. The next write
         * or roll zeroes the range durably in any case. */
        memcpy(why, s->werr, sizeof why);
        (void)zero_range(s, s->fd, name, seg->end, seg->end + wlen);
        memcpy(s->werr, why, sizeof why);
        return rv;
    }
    seg->end += len;
    s->dirty_end = seg->end;
    return 0;
}

/* Bytes a write of len bytes of record covers, zeros after it included. */
static uint64_t write_len(struct jr__logstore *s, uint64_t len)
{
    uint64_t end = seg_last(s)->end;
    return s->dirty_end > end + len ? s->dirty_end - end : len;
}

static void record_header(uint8_t *p,
                          uint64_t first,
                          uint32_t n,
                          uint64_t payload)
{
    put32(p, REC_MAGIC);
    put32(p + 4, 0);
    put64(p + 8, first);
    put32(p + 16, n);
    put32(p + 20, 0);
    put64(p + 24, payload);
}

static uint64_t req_body(const struct req *r)
{
    uint64_t body = (uint64_t)r->n * ENTRY_HDR;
    unsigned i;
    for (i = 0; i < r->n; i++) {
        body += r->entries[i].buf.len;
    }
    return body;
}

/* Encode the appends [from, to) (consecutive indexes, count entries, body
 * bytes of entry headers and payloads) as one record and write it. */
static int chunk_write(struct jr__logstore *s,
                       queue *from,
                       queue *to,
                       uint64_t count,
                       uint64_t body)
{
    uint64_t len = pad8(REC_HDR + body), wlen = write_len(s, len);
    uint8_t *eh, *data;
    queue *q;
    int rv;

    if ((rv = buf_reserve(s, wlen)) != 0) {
        return rv;
    }
    record_header(s->buf, s->next_index, (uint32_t)count,
                  body - count * ENTRY_HDR);
    eh = s->buf + REC_HDR;
    data = eh + count * ENTRY_HDR;
    for (q = from; q != to; q = QUEUE_NEXT(q)) {
        struct req *r = QUEUE_DATA(q, struct req, link);
        unsigned i;
        for (i = 0; i < r->n; i++) {
            const struct raft_entry *e = &r->entries[i];
            put64(eh, e->term);
            put32(eh + 8, (uint32_t)e->buf.len);
            eh[12] = (uint8_t)e->type;
            eh[13] = eh[14] = eh[15] = 0;
            eh += ENTRY_HDR;
            if (e->buf.len > 0) {
                memcpy(data, e->buf.base, e->buf.len);
                data += e->buf.len;
            }
        }
    }
    memset(data, 0, (size_t)(s->buf + wlen - data));
    put32(s->buf + 4, checksum(s->buf + 8, len - 8));
    if ((rv = record_write(s, len, wlen)) != 0) {
        return rv;
    }
    seg_last(s)->last += count;
    s->next_index += count;
    return 0;
}

static void note_failure(struct jr__logstore *s, struct req *r)
{
    s->fail_status = r->status;
    memcpy(s->fail_msg, r->errmsg, sizeof s->fail_msg);
}

/* An append that does not follow the log: submitted before an earlier
 * request failed, it was chained on entries that are not there. */
static void fail_chained(struct jr__logstore *s, struct req *r)
{
    r->status = s->fail_status != 0 ? s->fail_status : JR_EIO;
    jr__errf(r->errmsg,
             "append of index %" PRIu64 ": the log ends at index %" PRIu64
             " after an earlier failure: %s",
             r->index, s->next_index - 1,
             s->fail_status != 0 ? s->fail_msg : "unknown");
}

static void store_log(struct jr__logstore *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define HOLD_RETRY_MS 1000
#define HOLD_LOG_EVERY_S 30

/* After a write failed with err: true when the request should be tried again
 * (after waiting HOLD_RETRY_MS) rather than fail. That is so in hold mode
 * (a follower's store: raft 0.15 keeps a follower's entries in memory when
 * their write fails and never writes them again, so failing would leave the
 * node unable to catch up until restarted) for a full disk or an I/O error,
 * until the store closes or hold mode is switched off. */
static bool hold_wait(struct jr__logstore *s, int err, unsigned *tries)
{
    uint64_t deadline;
    bool hold;
    if (err != JR_ENOSPACE && err != JR_EIO) {
        return false;
    }
    uv_mutex_lock(&s->mutex);
    hold = s->hold && !s->closing_w && !s->abort;
    uv_mutex_unlock(&s->mutex);
    if (!hold) {
        return false;
    }
    if (*tries % (HOLD_LOG_EVERY_S * 1000 / HOLD_RETRY_MS) == 0) {
        store_log(s, JR_LOG_WARN,
                  "log %s: %s; this follower holds the leader's entries and "
                  "tries again every %d ms (it lags until the disk has room "
                  "or works again; nothing is lost)",
                  s->dir, s->werr, HOLD_RETRY_MS);
    }
    (*tries)++;
    deadline = uv_hrtime() + (uint64_t)HOLD_RETRY_MS * 1000000u;
    uv_mutex_lock(&s->mutex);
    s->held_err = err;
    while (s->hold && !s->closing_w && !s->abort) {
        uint64_t now = uv_hrtime();
        if (now >= deadline ||
            uv_cond_timedwait(&s->cond, &s->mutex, deadline - now) != 0) {
            break;
        }
    }
    uv_mutex_unlock(&s->mutex);
    return true;
}

/* Group commit: the appends of run, in order, go out as one record per
 * segment they span, each written with one pwrite and one fdatasync. */
static void appends_run(struct jr__logstore *s, queue *run)
{
    queue *q = QUEUE_HEAD(run);
    while (q != run) {
        struct req *r = QUEUE_DATA(q, struct req, link);
        uint64_t body, count, next;
        queue *end = QUEUE_NEXT(q);
        unsigned tries = 0;
        int rv;

        if (r->index != s->next_index) {
            fail_chained(s, r);
            q = end;
            continue;
        }
    again:
        end = QUEUE_NEXT(q);
        body = req_body(r);
        count = r->n;
        rv = make_room(s, pad8(REC_HDR + body));
        if (rv == 0) {
            struct seg *seg = seg_last(s);
            next = r->index + r->n;
            while (end != run) {
                struct req *r2 = QUEUE_DATA(end, struct req, link);
                uint64_t b2 = body + req_body(r2);
                if (r2->index != next || count + r2->n > UINT32_MAX ||
                    seg->end + pad8(REC_HDR + b2) > seg->size) {
                    break;
                }
                body = b2;
                count += r2->n;
                next += r2->n;
                end = QUEUE_NEXT(end);
            }
            rv = chunk_write(s, q, end, count, body);
        }
        if (rv != 0 && hold_wait(s, rv, &tries)) {
            goto again;
        }
        if (rv == 0 && tries > 0) {
            uv_mutex_lock(&s->mutex);
            s->held_err = 0; /* written after all: the disk is back */
            uv_mutex_unlock(&s->mutex);
        }
        for (; q != end; q = QUEUE_NEXT(q)) {
            r = QUEUE_DATA(q, struct req, link);
            r->status = rv;
            if (rv != 0) {
                jr__errf(r->errmsg, "append to %s", s->werr);
                note_failure(s, r);
            }
        }
    }
}

/* Write a truncation marker: entries from index on are gone. */
static int marker_write(struct jr__logstore *s, uint64_t index)
{
    struct seg *seg = seg_last(s);
    uint64_t wlen;
    int rv;
    assert(index > seg->first && index <= seg->last);
    if (seg->end + REC_HDR > seg->size && (rv = grow(s, seg->end + REC_HDR))) {
        return rv;
    }
    wlen = write_len(s, REC_HDR);
    if ((rv = buf_reserve(s, wlen)) != 0) {
        return rv;
    }
    memset(s->buf, 0, (size_t)wlen);
    record_header(s->buf, index, 0, 0);
    put32(s->buf + 4, checksum(s->buf + 8, REC_HDR - 8));
    if ((rv = record_write(s, REC_HDR, wlen)) != 0) {
        return rv;
    }
    seg->last = index - 1;
    s->next_index = index;
    return 0;
}

/* Replace the whole log by an empty one starting at start. The new segment,
 * of a higher epoch, is written under a temporary name and renamed into
 * place: that rename is the commit point, after which the older segments
 * are ignored by load whether or not they were removed yet. */
static int reset_to(struct jr__logstore *s, uint64_t start)
{
    char name[NAME_SIZE], old[NAME_SIZE], path[PATH_SIZE];
    uint8_t hdr[SEG_HDR];
    uint64_t epoch = s->epoch + 1;
    unsigned i;
    int fd, rv;

    if ((rv = segs_reserve(s, 1)) != 0) {
        return rv;
    }
    if ((rv = create_file(s, RESET_FILE, s->segment_size, &fd)) != 0) {
        return rv;
    }
    segment_header(hdr, start, epoch);
    seg_name(name, start);
    if ((rv = write_at(s, fd, RESET_FILE, hdr, SEG_HDR, 0)) != 0 ||
        (rv = file_sync(s, fd, RESET_FILE)) != 0 ||
        (rv = rename_file(s, RESET_FILE, name)) != 0) {
        close_synced(fd);
        path_of(s, RESET_FILE, path);
        (void)unlink(path); /* best effort: load removes it */
        return rv;
    }
    if (s->fd >= 0) {
        close_synced(s->fd);
    }
    for (i = 0; i < s->n_segs; i++) {
        if (s->segs[i].first != start) {
            seg_name(old, s->segs[i].first);
            /* A failure leaves a segment of an older epoch, which load
             * ignores and removes. */
            (void)unlink_file(s, old);
        }
    }
    s->segs[0].first = start;
    s->segs[0].last = start - 1;
    s->segs[0].end = SEG_HDR;
    s->segs[0].size = s->segment_size;
    s->n_segs = 1;
    s->fd = fd;
    s->dirty_end = SEG_HDR;
    s->next_index = start;
    s->start_index = start;
    s->epoch = epoch;
    s->dir_dirty = true;
    return dir_sync(s);
}

/* Delete the entries from index on: first whole segments, newest first, so
 * that a crash in between leaves a prefix of the old log (never a gap);
 * then a truncation marker in the segment that holds index - 1. */
static int truncate_to(struct jr__logstore *s, uint64_t index)
{
    char name[NAME_SIZE];
    uint64_t dirty_end = s->dirty_end;
    bool removed = false;
    int rv = 0;

    if (index >= s->next_index) {
        return 0;
    }
    if (s->n_segs == 0 || index <= s->segs[0].first) {
        return reset_to(s, index);
    }
    while (seg_last(s)->first >= index) {
        seg_name(name, seg_last(s)->first);
        if (s->fd >= 0) {
            close_synced(s->fd);
            s->fd = -1;
        }
        if ((rv = unlink_file(s, name)) != 0) {
            break;
        }
        s->n_segs--;
        removed = true;
    }
    s->next_index = seg_last(s)->last + 1;
    if (rv == 0 && s->dir_dirty) {
        rv = dir_sync(s);
    }
    if (s->fd < 0) {
        int rv2 = reopen_last(s);
        if (rv2 == 0 && !removed) {
            s->dirty_end = dirty_end; /* still the same segment */
        }
        if (rv == 0) {
            rv = rv2;
        }
    }
    if (rv == 0 && index <= seg_last(s)->last) {
        rv = marker_write(s, index);
    }
    return rv;
}

/* Remove the oldest segments whose entries are all below index, never the
 * last one, oldest first so that the log stays contiguous. */
static int compact_to(struct jr__logstore *s, uint64_t index)
{
    char name[NAME_SIZE];
    unsigned k = 0;
    int rv = 0;
    while (k + 1 < s->n_segs && s->segs[k].last < index) {
        seg_name(name, s->segs[k].first);
        if ((rv = unlink_file(s, name)) != 0) {
            break;
        }
        k++;
    }
    if (k > 0) {
        memmove(s->segs, s->segs + k, (s->n_segs - k) * sizeof *s->segs);
        s->n_segs -= k;
        s->start_index = s->segs[0].first;
    }
    if (rv == 0 && s->dir_dirty) {
        rv = dir_sync(s);
    }
    return rv;
}

static void writer_close(struct jr__logstore *s)
{
    if (s->fd >= 0) {
        close_synced(s->fd);
        s->fd = -1;
    }
    if (s->prep_fd >= 0) {
        prep_discard(s);
    }
}

static void one_run(struct jr__logstore *s, struct req *r)
{
    unsigned tries = 0;
    int rv = 0;
    switch (r->type) {
        case REQ_TRUNCATE:
            while ((rv = truncate_to(s, r->index)) != 0 &&
                   hold_wait(s, rv, &tries)) {
            }
            if (rv != 0) {
                jr__errf(r->errmsg, "truncate from index %" PRIu64 ": %s",
                         r->index, s->werr);
            }
            break;
        case REQ_RESET:
            while ((rv = reset_to(s, r->index)) != 0 &&
                   hold_wait(s, rv, &tries)) {
            }
            if (rv != 0) {
                jr__errf(r->errmsg, "reset to index %" PRIu64 ": %s", r->index,
                         s->werr);
            }
            break;
        case REQ_COMPACT:
            if ((rv = compact_to(s, r->index)) != 0) {
                jr__errf(r->errmsg, "compact below index %" PRIu64 ": %s",
                         r->index, s->werr);
            }
            break;
        case REQ_CLOSE: writer_close(s); break;
        case REQ_APPEND: assert(false); break;
    }
    r->status = rv;
    if (rv != 0 && r->type != REQ_COMPACT) {
        note_failure(s, r);
    }
}

/* Hand finished requests to the loop thread. After the close request is
 * posted the writer touches nothing of the store. */
static void post(struct jr__logstore *s, queue *batch)
{
    queue *q;
    bool wake;
    QUEUE_FOREACH (q, batch) {
        struct req *r = QUEUE_DATA(q, struct req, link);
        r->next_index = s->next_index;
        r->start_index = s->start_index;
    }
    uv_mutex_lock(&s->mutex);
    wake = QUEUE_IS_EMPTY(&s->done);
    QUEUE_MOVE_ALL(batch, &s->done);
    uv_mutex_unlock(&s->mutex);
    /* Not uv_async_send: the loop thread, once woken, would spin until this
     * thread is back from the write() that woke it, and on a VM waking a
     * CPU that sleeps costs the waker an interprocessor interrupt (10-20 us
     * measured) that the loop would then wait out. Fails only on a bad fd
     * or an overflowing counter, neither possible here. */
    if (wake) {
        uint64_t one = 1;
        ssize_t n;
        do {
            n = write(s->efd, &one, sizeof one);
        } while (n < 0 && errno == EINTR);
        assert(n == (ssize_t)sizeof one);
    }
}

/* Run the requests of work in order; true once the store is closed. */
static bool process(struct jr__logstore *s, queue *work)
{
    queue batch;
    while (!QUEUE_IS_EMPTY(work)) {
        queue *q = QUEUE_HEAD(work);
        struct req *r = QUEUE_DATA(q, struct req, link);
        bool closed = r->type == REQ_CLOSE;
        QUEUE_INIT(&batch);
        if (r->type == REQ_APPEND) {
            while (!QUEUE_IS_EMPTY(work)) {
                q = QUEUE_HEAD(work);
                r = QUEUE_DATA(q, struct req, link);
                if (r->type != REQ_APPEND) {
                    break;
                }
                QUEUE_REMOVE(q);
                QUEUE_PUSH(&batch, q);
            }
            appends_run(s, &batch);
        } else {
            QUEUE_REMOVE(q);
            QUEUE_PUSH(&batch, q);
            one_run(s, r);
        }
        post(s, &batch);
        if (closed) {
            return true; /* nothing can be submitted after close */
        }
    }
    return false;
}

static void writer_main(void *arg)
{
    struct jr__logstore *s = arg;
    queue work;
    bool closed = false;
    while (!closed) {
        uv_mutex_lock(&s->mutex);
        while (QUEUE_IS_EMPTY(&s->pending) && !s->abort) {
            uv_cond_wait(&s->cond, &s->mutex);
        }
        if (s->abort) {
            uv_mutex_unlock(&s->mutex);
            return;
        }
        /* Everything queued so far: one write for all its appends. */
        QUEUE_INIT(&work);
        QUEUE_MOVE_ALL(&s->pending, &work);
        uv_mutex_unlock(&s->mutex);
        closed = process(s, &work);
        if (!closed) {
            prepare_ahead(s);
        }
        /* Do not keep the memory of an exceptionally big batch. */
        if (s->buf_cap > s->segment_size) {
            free(s->buf);
            s->buf = NULL;
            s->buf_cap = 0;
        }
    }
}

/* ---- the loop thread ---- */

static void store_log(struct jr__logstore *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void store_log(struct jr__logstore *s, int level, const char *fmt, ...)
{
    char msg[JR_ERRMSG_SIZE + 128];
    va_list ap;
    if (s->log == NULL) {
        return;
    }
    va_start(ap, fmt);
    /* A truncated log line is still worth having. */
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->log(s->log_data, level, msg);
}

static void store_free(struct jr__logstore *s)
{
    uv_cond_destroy(&s->cond);
    uv_mutex_destroy(&s->mutex);
    free(s->segs);
    free(s->buf);
    free(s->dir);
    free(s);
}

static void poll_closed(uv_handle_t *h)
{
    struct jr__logstore *s = h->data;
    (void)close(s->efd);
    if (s->close_cb != NULL) {
        s->close_cb(s->close_arg);
    }
    store_free(s);
}

static void deliver(struct jr__logstore *s, struct req *r)
{
    s->last_index = r->next_index > r->start_index ? r->next_index - 1 : 0;
    if (r->status != 0 && r->type == REQ_COMPACT) {
        store_log(s, JR_LOG_WARN, "log %s: %s", s->dir, r->errmsg);
    } else if (r->status != 0 && r->gen == s->gen) {
        /* The first failure since loop_next was last set: everything
         * submitted after it was chained on it and fails too. Start again
         * from what the writer has. */
        s->loop_next = r->next_index;
        s->gen++;
    }
    if (r->cb != NULL) {
        r->cb(r->arg, r->status, r->errmsg);
    }
    free(r);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct jr__logstore *s = h->data;
    bool closed = false;
    uint64_t count;
    queue list;
    int rv;
    (void)status; /* the done queue is what counts, read it in any case */
    (void)events;
    /* Reset the counter before taking the queue: a request posted after the
     * read is either taken below or wakes us again. */
    (void)read(s->efd, &count, sizeof count);
    QUEUE_INIT(&list);
    uv_mutex_lock(&s->mutex);
    QUEUE_MOVE_ALL(&s->done, &list);
    uv_mutex_unlock(&s->mutex);
    while (!QUEUE_IS_EMPTY(&list)) {
        queue *q = QUEUE_HEAD(&list);
        struct req *r = QUEUE_DATA(q, struct req, link);
        QUEUE_REMOVE(q);
        if (r->type == REQ_CLOSE) {
            closed = true;
        } else {
            deliver(s, r);
        }
    }
    if (closed) {
        /* The writer returns right after posting the close. */
        rv = uv_thread_join(&s->thread);
        assert(rv == 0);
        (void)rv;
        uv_close((uv_handle_t *)&s->poll, poll_closed);
    }
}

/* Wake the writer, after unlocking: woken under the lock, it would find the
 * mutex still held and sleep again. */
static void kick(struct jr__logstore *s)
{
    uv_cond_signal(&s->cond);
}

static void submit(struct jr__logstore *s, struct req *r)
{
    r->gen = s->gen;
    uv_mutex_lock(&s->mutex);
    QUEUE_PUSH(&s->pending, &r->link);
    uv_mutex_unlock(&s->mutex);
    if (s->corked) {
        s->kick_pending = true;
    } else {
        kick(s);
    }
}

void jr__logstore_cork(struct jr__logstore *s, bool cork)
{
    s->corked = cork;
    if (!cork && s->kick_pending) {
        s->kick_pending = false;
        kick(s);
    }
}

static struct req *req_new(enum req_type type,
                           uint64_t index,
                           unsigned n,
                           jr__logstore_cb cb,
                           void *arg)
{
    struct req *r = calloc(1, sizeof *r + n * sizeof r->entries[0]);
    if (r != NULL) {
        r->type = type;
        r->index = index;
        r->n = n;
        r->cb = cb;
        r->arg = arg;
    }
    return r;
}

/* Stop a writer that has taken no request yet and wait for it. */
static void writer_abort(struct jr__logstore *s)
{
    uv_mutex_lock(&s->mutex);
    s->abort = true;
    uv_cond_signal(&s->cond);
    uv_mutex_unlock(&s->mutex);
    (void)uv_thread_join(&s->thread);
}

int jr__logstore_open(uv_loop_t *loop,
                      const struct jr__logstore_config *cfg,
                      struct jr__logstore **out,
                      char *errmsg)
{
    struct jr__logstore *s;
    int rv;

    if (loop == NULL || cfg == NULL || cfg->dir == NULL || out == NULL) {
        jr__errf(errmsg, "open log store: missing loop or directory");
        return JR_EINVAL;
    }
    if (cfg->segment_size < MIN_SEGMENT_SIZE) {
        jr__errf(errmsg, "open log store %s: segment size %zu is below 64 KiB",
                 cfg->dir, cfg->segment_size);
        return JR_EINVAL;
    }
    if (strlen(cfg->dir) + 1 + NAME_SIZE >= PATH_SIZE) {
        jr__errf(errmsg, "open log store: directory path too long");
        return JR_EINVAL;
    }
    if ((s = calloc(1, sizeof *s)) == NULL) {
        rv = JR_ENOMEM;
        goto err;
    }
    if ((s->dir = jr__strdup(cfg->dir)) == NULL) {
        rv = JR_ENOMEM;
        goto err_store;
    }
    s->loop = loop;
    s->segment_size = cfg->segment_size;
    s->fault = cfg->fault;
    s->fault_data = cfg->fault_data;
    s->log = cfg->log;
    s->log_data = cfg->log_data;
    s->loop_next = 1;
    s->fd = -1;
    s->prep_fd = -1;
    s->next_index = 1;
    s->start_index = 1;
    s->close_req.type = REQ_CLOSE;
    QUEUE_INIT(&s->pending);
    QUEUE_INIT(&s->done);
    if ((rv = uv_mutex_init(&s->mutex)) != 0) {
        rv = jr__err_from_uv(rv);
        goto err_dir;
    }
    if ((rv = uv_cond_init(&s->cond)) != 0) {
        rv = jr__err_from_uv(rv);
        goto err_mutex;
    }
    if ((s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        rv = jr__err_from_errno(errno);
        goto err_cond;
    }
    if ((rv = uv_thread_create(&s->thread, writer_main, s)) != 0) {
        rv = jr__err_from_uv(rv);
        goto err_efd;
    }
    /* Last, as the handle cannot be freed before the loop has closed it. */
    if ((rv = uv_poll_init(loop, &s->poll, s->efd)) != 0) {
        rv = jr__err_from_uv(rv);
        goto err_thread;
    }
    s->poll.data = s;
    if ((rv = uv_poll_start(&s->poll, UV_READABLE, poll_cb)) != 0) {
        writer_abort(s);
        uv_close((uv_handle_t *)&s->poll, poll_closed); /* frees s */
        rv = jr__err_from_uv(rv);
        jr__errf(errmsg, "open log store %s: %s", cfg->dir, jr_strerror(rv));
        return rv;
    }
    *out = s;
    return 0;

err_thread:
    writer_abort(s);
err_efd:
    (void)close(s->efd);
err_cond:
    uv_cond_destroy(&s->cond);
err_mutex:
    uv_mutex_destroy(&s->mutex);
err_dir:
    free(s->dir);
err_store:
    free(s);
err:
    jr__errf(errmsg, "open log store %s: %s", cfg->dir, jr_strerror(rv));
    return rv;
}

/* ---- load ---- */

/* Entries loaded so far: entries[i] has index start + i. */
struct loaded {
    struct raft_entry *entries; /* raft_malloc'd, as raft_io's load wants */
    size_t n;
    size_t cap;
    uint64_t start;
};

/* Drop entries[keep..] and their buffers. */
static void loaded_drop(struct loaded *l, size_t keep)
{
    while (l->n > keep) {
        raft_free(l->entries[--l->n].buf.base);
    }
}

static int loaded_reserve(struct loaded *l, size_t more)
{
    struct raft_entry *e;
    size_t cap = l->cap > 0 ? l->cap : 64;
    if (l->n + more <= l->cap) {
        return 0;
    }
    while (cap < l->n + more) {
        cap *= 2;
    }
    e = raft_realloc(l->entries, cap * sizeof *e);
    if (e == NULL) {
        return JR_ENOMEM;
    }
    l->entries = e;
    l->cap = cap;
    return 0;
}

/* The files of the directory. */
struct listing {
    uint64_t *firsts; /* segments, sorted */
    unsigned n;
    char (*leftovers)[NAME_SIZE];
    unsigned n_leftovers;
};

static void listing_free(struct listing *ls)
{
    free(ls->firsts);
    free(ls->leftovers);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int list_dir(struct jr__logstore *s, struct listing *ls, char *errmsg)
{
    unsigned cap = 0, cap_left = 0;
    struct dirent *d;
    DIR *dir = opendir(s->dir);
    int rv = 0;
    if (dir == NULL) {
        jr__errf(errmsg, "load log: open %s: %s", s->dir, strerror(errno));
        return code_of(errno);
    }
    for (;;) {
        uint64_t first;
        errno = 0;
        if ((d = readdir(dir)) == NULL) {
            if (errno != 0) {
                jr__errf(errmsg, "load log: read %s: %s", s->dir,
                         strerror(errno));
                rv = code_of(errno);
            }
            break;
        }
        if (parse_seg_name(d->d_name, &first)) {
            if (ls->n == cap) {
                uint64_t *f;
                cap = cap > 0 ? cap * 2 : 16;
                if ((f = realloc(ls->firsts, cap * sizeof *f)) == NULL) {
                    rv = JR_ENOMEM;
                    break;
                }
                ls->firsts = f;
            }
            ls->firsts[ls->n++] = first;
        } else if (is_leftover_name(d->d_name) &&
                   strlen(d->d_name) < NAME_SIZE) {
            if (ls->n_leftovers == cap_left) {
                char(*l)[NAME_SIZE];
                cap_left = cap_left > 0 ? cap_left * 2 : 4;
                l = realloc(ls->leftovers, cap_left * sizeof *l);
                if (l == NULL) {
                    rv = JR_ENOMEM;
                    break;
                }
                ls->leftovers = l;
            }
            memcpy(ls->leftovers[ls->n_leftovers++], d->d_name,
                   strlen(d->d_name) + 1);
        }
    }
    if (rv == JR_ENOMEM) {
        jr__errf(errmsg, "load log %s: out of memory", s->dir);
    }
    if (closedir(dir) != 0 && rv == 0) {
        jr__errf(errmsg, "load log: close %s: %s", s->dir, strerror(errno));
        rv = JR_EIO;
    }
    if (rv == 0 && ls->n > 1) {
        qsort(ls->firsts, ls->n, sizeof *ls->firsts, cmp_u64);
    }
    return rv;
}

/* Read a whole file. */
static int read_file(const char *path,
                     const char *name,
                     uint8_t **out,
                     size_t *len,
                     char *errmsg)
{
    struct stat st;
    uint8_t *buf;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        jr__errf(errmsg, "load log: open %s: %s", path, strerror(errno));
        return code_of(errno);
    }
    if (fstat(fd, &st) != 0) {
        jr__errf(errmsg, "load log: stat %s: %s", path, strerror(errno));
        close_synced(fd);
        return JR_EIO;
    }
    if ((buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1)) == NULL) {
        jr__errf(errmsg, "load log %s: out of memory", name);
        close_synced(fd);
        return JR_ENOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            jr__errf(errmsg, "load log: read %s: %s", path,
                     n < 0 ? strerror(errno) : "file shrank");
            free(buf);
            close_synced(fd);
            return JR_EIO;
        }
        got += (size_t)n;
    }
    close_synced(fd); /* read-only */
    *out = buf;
    *len = got;
    return 0;
}

/* Check a segment header; returns its epoch through *epoch. */
static int check_header(const uint8_t *p,
                        size_t len,
                        uint64_t first,
                        const char *path,
                        uint64_t *epoch,
                        char *errmsg)
{
    const char *why = NULL;
    if (len < SEG_HDR) {
        why = "file shorter than its header";
    } else if (memcmp(p, SEG_MAGIC, 8) != 0) {
        why = "not a log segment (bad magic)";
    } else if (get32(p + 32) != checksum(p, 32)) {
        why = "bad header checksum";
    } else if (get32(p + 8) != SEG_VERSION) {
        why = "unknown format version";
    } else if (get32(p + 12) != 0 || get32(p + 36) != 0) {
        why = "bad header (reserved bytes set)";
    } else if (get64(p + 16) != first) {
        why = "first index differs from the file name";
    }
    if (why != NULL) {
        jr__errf(errmsg, "%s: %s at offset 0 (index %" PRIu64 "): %s", path,
                 why, first, DAMAGED);
        return JR_ECORRUPT;
    }
    *epoch = get64(p + 24);
    return 0;
}

/* Size of a well-formed record with a good checksum at off, or 0. */
static uint64_t record_at(const uint8_t *p, size_t len, size_t off)
{
    uint64_t avail, n, payload, total;
    if (off > len || len - off < REC_HDR || get32(p + off) != REC_MAGIC ||
        get32(p + off + 20) != 0) {
        return 0;
    }
    avail = len - off - REC_HDR;
    n = get32(p + off + 16);
    payload = get64(p + off + 24);
    if (n > avail / ENTRY_HDR || payload > avail - n * ENTRY_HDR) {
        return 0;
    }
    total = pad8(REC_HDR + n * ENTRY_HDR + payload);
    if (total > len - off ||
        checksum(p + off + 8, total - 8) != get32(p + off + 4)) {
        return 0;
    }
    return total;
}

/* Turn the good record at off into entries (one batch). */
static int record_load(struct loaded *l,
                       const uint8_t *rec,
                       const char *path,
                       size_t off,
                       char *errmsg)
{
    uint32_t n = get32(rec + 16), i;
    uint64_t payload = get64(rec + 24), sum = 0, index = get64(rec + 8);
    const uint8_t *eh = rec + REC_HDR, *data = eh + (size_t)n * ENTRY_HDR;
    for (i = 0; i < n; i++) {
        const uint8_t *h = eh + (size_t)i * ENTRY_HDR;
        if (h[12] == 0 || h[13] != 0 || h[14] != 0 || h[15] != 0) {
            break;
        }
        sum += get32(h + 8);
    }
    if (i < n || sum != payload) {
        jr__errf(errmsg,
                 "%s: malformed record at offset %zu (index %" PRIu64 "): %s",
                 path, off, index, DAMAGED);
        return JR_ECORRUPT;
    }
    if (loaded_reserve(l, n) != 0) {
        jr__errf(errmsg, "load log %s: out of memory", path);
        return JR_ENOMEM;
    }
    /* A buffer per entry, not one per record as written: raft 0.15 frees
     * an entry of a batch only after scanning its whole in-memory log for
     * the batch's other entries, so that compacting a log of one-entry
     * records (1 writer in flight) costs the square of its length: seconds
     * on the loop for tens of thousands of entries. */
    sum = 0;
    for (i = 0; i < n; i++) {
        const uint8_t *h = eh + (size_t)i * ENTRY_HDR;
        struct raft_entry *e = &l->entries[l->n];
        e->term = get64(h);
        e->type = h[12];
        e->buf.len = get32(h + 8);
        e->buf.base = NULL;
        e->batch = NULL;
        if (e->buf.len > 0) {
            if ((e->buf.base = raft_malloc(e->buf.len)) == NULL) {
                jr__errf(errmsg, "load log %s: out of memory", path);
                return JR_ENOMEM;
            }
            memcpy(e->buf.base, data + sum, e->buf.len);
        }
        l->n++;
        sum += e->buf.len;
    }
    return 0;
}

/* Read the records of one segment (seg->first set, the header checked)
 * into l. Sets seg->last and seg->end, and *dirty_end to the end of a torn
 * tail (seg->end when there is none). */
static int segment_load(struct jr__logstore *s,
                        struct loaded *l,
                        const char *path,
                        const uint8_t *p,
                        size_t len,
                        bool is_last,
                        struct seg *seg,
                        uint64_t *dirty_end,
                        char *errmsg)
{
    size_t off = SEG_HDR, q, nonzero;
    uint64_t total;
    int rv;

    seg->last = seg->first - 1;
    if (len < SEG_HDR) {
        jr__errf(errmsg, "%s: file shorter than its header (offset 0): %s",
                 path, DAMAGED);
        return JR_ECORRUPT;
    }
    while ((total = record_at(p, len, off)) != 0) {
        uint64_t first = get64(p + off + 8);
        if (get32(p + off + 16) == 0) {
            if (first <= seg->first || first > seg->last) {
                jr__errf(errmsg,
                         "%s: truncation marker to index %" PRIu64
                         " out of range at offset %zu (index %" PRIu64 "): %s",
                         path, first, off, seg->last + 1, DAMAGED);
                return JR_ECORRUPT;
            }
            loaded_drop(l, (size_t)(first - l->start));
            seg->last = first - 1;
        } else {
            if (first != seg->last + 1) {
                jr__errf(errmsg,
                         "%s: record of index %" PRIu64
                         " at offset %zu where index %" PRIu64
                         " was expected: %s",
                         path, first, off, seg->last + 1, DAMAGED);
                return JR_ECORRUPT;
            }
            if ((rv = record_load(l, p + off, path, off, errmsg)) != 0) {
                return rv;
            }
            seg->last += get32(p + off + 16);
        }
        off += (size_t)total;
    }
    seg->end = off;

    /* What follows is the unused, zeroed end of the segment, or a write cut
     * by a crash. A good record further on means that the bad one at off
     * was written and acknowledged before it: that is damage. */
    for (q = off + 8; q + REC_HDR <= len; q += 8) {
        if (record_at(p, len, q) != 0) {
            jr__errf(errmsg,
                     "%s: bad record at offset %zu (index %" PRIu64
                     ") followed by good ones: %s",
                     path, off, seg->last + 1, DAMAGED);
            return JR_ECORRUPT;
        }
    }
    for (nonzero = len; nonzero > off && p[nonzero - 1] == 0; nonzero--) {
    }
    *dirty_end = nonzero;
    if (nonzero == off) {
        return 0;
    }
    if (!is_last) {
        jr__errf(errmsg,
                 "%s: bad record at offset %zu (index %" PRIu64
                 ") in a segment that is not the last: %s",
                 path, off, seg->last + 1, DAMAGED);
        return JR_ECORRUPT;
    }
    store_log(s, JR_LOG_WARN,
              "%s: torn write at offset %zu (index %" PRIu64
              "): dropping %zu bytes that were never acknowledged",
              path, off, seg->last + 1, nonzero - off);
    return 0;
}

void jr__logstore_entries_free(struct raft_entry *entries, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        raft_free(entries[i].buf.base);
    }
    raft_free(entries);
}

int jr__logstore_load(struct jr__logstore *s,
                      uint64_t *start_index,
                      struct raft_entry **entries,
                      size_t *n_entries,
                      char *errmsg)
{
    struct listing ls = {0};
    struct loaded l = {0};
    struct seg *segs = NULL;
    uint64_t *epochs = NULL, epoch = 0, dirty_end = 0;
    char name[NAME_SIZE], path[PATH_SIZE];
    unsigned i, n = 0;
    int fd = -1, rv;

    if (s->loaded || s->closing) {
        jr__errf(errmsg, "load log %s: already loaded", s->dir);
        return JR_EINVAL;
    }
    if ((rv = list_dir(s, &ls, errmsg)) != 0) {
        goto err;
    }
    if (ls.n > 0 && ((epochs = calloc(ls.n, sizeof *epochs)) == NULL ||
                     (segs = calloc(ls.n, sizeof *segs)) == NULL)) {
        jr__errf(errmsg, "load log %s: out of memory", s->dir);
        rv = JR_ENOMEM;
        goto err_listing;
    }

    /* Headers first: the highest epoch is the live log. */
    for (i = 0; i < ls.n; i++) {
        uint8_t hdr[SEG_HDR];
        ssize_t got;
        seg_name(name, ls.firsts[i]);
        path_of(s, name, path);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            jr__errf(errmsg, "load log: open %s: %s", path, strerror(errno));
            rv = code_of(errno);
            goto err_listing;
        }
        got = pread(fd, hdr, sizeof hdr, 0);
        if (got < 0) {
            jr__errf(errmsg, "load log: read %s: %s", path, strerror(errno));
            close_synced(fd);
            rv = JR_EIO;
            goto err_listing;
        }
        close_synced(fd); /* read-only */
        rv = check_header(hdr, (size_t)got, ls.firsts[i], path, &epochs[i],
                          errmsg);
        if (rv != 0) {
            goto err_listing;
        }
        if (epochs[i] > epoch) {
            epoch = epochs[i];
        }
    }

    l.start = 0;
    for (i = 0; i < ls.n; i++) {
        struct seg *seg;
        uint8_t *buf;
        size_t len;
        bool is_last = true;
        unsigned j;
        if (epochs[i] != epoch) {
            continue; /* left by an interrupted reset */
        }
        for (j = i + 1; j < ls.n; j++) {
            if (epochs[j] == epoch) {
                is_last = false;
            }
        }
        seg_name(name, ls.firsts[i]);
        path_of(s, name, path);
        seg = &segs[n];
        seg->first = ls.firsts[i];
        if (n == 0) {
            l.start = seg->first;
        } else if (seg->first != segs[n - 1].last + 1) {
            jr__errf(errmsg,
                     "%s: starts at index %" PRIu64
                     " but the previous "
                     "segment ends at index %" PRIu64 " (offset 0): %s",
                     path, seg->first, segs[n - 1].last, DAMAGED);
            rv = JR_ECORRUPT;
            goto err_entries;
        }
        if ((rv = read_file(path, name, &buf, &len, errmsg)) != 0) {
            goto err_entries;
        }
        rv = segment_load(s, &l, path, buf, len, is_last, seg, &dirty_end,
                          errmsg);
        free(buf);
        if (rv != 0) {
            goto err_entries;
        }
        seg->size = len;
        n++;
    }

    /* Finish what a crash interrupted: older epochs and leftovers. */
    for (i = 0; i < ls.n; i++) {
        if (epochs[i] != epoch) {
            seg_name(name, ls.firsts[i]);
            if ((rv = unlink_file(s, name)) != 0) {
                goto err_werr;
            }
        }
    }
    for (i = 0; i < ls.n_leftovers; i++) {
        if ((rv = unlink_file(s, ls.leftovers[i])) != 0) {
            goto err_werr;
        }
    }
    if (s->dir_dirty && (rv = dir_sync(s)) != 0) {
        goto err_werr;
    }
    if (n > 0) {
        seg_name(name, segs[n - 1].first);
        path_of(s, name, path);
        if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
            rv = io_fail(s, name, "open", errno);
            goto err_werr;
        }
    }

    /* Hand the state to the writer: the mutex taken by the first submission
     * orders these stores before its reads. */
    s->segs = segs;
    s->n_segs = n;
    s->cap_segs = ls.n;
    s->fd = fd;
    s->dirty_end = n > 0 ? dirty_end : 0;
    s->epoch = epoch;
    s->start_index = n > 0 ? segs[0].first : 1;
    s->next_index = n > 0 ? segs[n - 1].last + 1 : 1;
    s->loop_next = s->next_index;
    s->last_index = s->next_index > s->start_index ? s->next_index - 1 : 0;
    s->loaded = true;
    free(epochs);
    listing_free(&ls);

    *start_index = s->start_index;
    *entries = l.entries;
    *n_entries = l.n;
    return 0;

err_werr:
    jr__errf(errmsg, "load log: %s", s->werr);
err_entries:
    loaded_drop(&l, 0);
    raft_free(l.entries);
err_listing:
    free(segs);
    free(epochs);
    listing_free(&ls);
err:
    return rv;
}

uint64_t jr__logstore_last_index(const struct jr__logstore *s)
{
    return s->last_index;
}

uint64_t jr__logstore_next_index(const struct jr__logstore *s)
{
    return s->loop_next;
}

int jr__logstore_append(struct jr__logstore *s,
                        uint64_t first_index,
                        const struct raft_entry entries[],
                        unsigned n,
                        jr__logstore_cb cb,
                        void *arg)
{
    struct req *r;
    unsigned i;
    if (s->closing) {
        return JR_ECANCELED;
    }
    if (!s->loaded || entries == NULL || n == 0 || cb == NULL ||
        first_index != s->loop_next) {
        return JR_EINVAL;
    }
    for (i = 0; i < n; i++) {
        const struct raft_entry *e = &entries[i];
        if (e->type == 0 || e->type > UINT8_MAX || e->buf.len > UINT32_MAX ||
            (e->buf.len > 0 && e->buf.base == NULL)) {
            return JR_EINVAL;
        }
    }
    if ((r = req_new(REQ_APPEND, first_index, n, cb, arg)) == NULL) {
        return JR_ENOMEM;
    }
    memcpy(r->entries, entries, n * sizeof *entries);
    s->loop_next += n;
    submit(s, r);
    return 0;
}

int jr__logstore_truncate(struct jr__logstore *s,
                          uint64_t index,
                          jr__logstore_cb cb,
                          void *arg)
{
    struct req *r;
    if (s->closing) {
        return JR_ECANCELED;
    }
    if (!s->loaded || index == 0 || index > s->loop_next) {
        return JR_EINVAL;
    }
    if ((r = req_new(REQ_TRUNCATE, index, 0, cb, arg)) == NULL) {
        return JR_ENOMEM;
    }
    s->gen++;
    s->loop_next = index;
    submit(s, r);
    return 0;
}

int jr__logstore_reset(struct jr__logstore *s,
                       uint64_t start_index,
                       jr__logstore_cb cb,
                       void *arg)
{
    struct req *r;
    if (s->closing) {
        return JR_ECANCELED;
    }
    if (!s->loaded || start_index == 0) {
        return JR_EINVAL;
    }
    if ((r = req_new(REQ_RESET, start_index, 0, cb, arg)) == NULL) {
        return JR_ENOMEM;
    }
    s->gen++;
    s->loop_next = start_index;
    submit(s, r);
    return 0;
}

void jr__logstore_compact(struct jr__logstore *s, uint64_t index)
{
    struct req *r;
    if (s->closing || !s->loaded) {
        return;
    }
    if ((r = req_new(REQ_COMPACT, index, 0, NULL, NULL)) == NULL) {
        store_log(s, JR_LOG_WARN,
                  "log %s: compact below index %" PRIu64 ": out of memory",
                  s->dir, index);
        return;
    }
    submit(s, r);
}

int jr__logstore_held_error(struct jr__logstore *s)
{
    int err;
    uv_mutex_lock(&s->mutex);
    err = s->held_err;
    uv_mutex_unlock(&s->mutex);
    return err;
}

void jr__logstore_hold(struct jr__logstore *s, bool hold)
{
    if (hold == s->hold_loop) {
        return;
    }
    s->hold_loop = hold;
    uv_mutex_lock(&s->mutex);
    if (s->hold != hold) {
        s->hold = hold;
        uv_cond_signal(&s->cond);
    }
    uv_mutex_unlock(&s->mutex);
}

void jr__logstore_close(struct jr__logstore *s, void (*cb)(void *), void *arg)
{
    assert(!s->closing);
    s->closing = true;
    s->close_cb = cb;
    s->close_arg = arg;
    uv_mutex_lock(&s->mutex);
    s->closing_w = true; /* a held request gives up */
    uv_mutex_unlock(&s->mutex);
    submit(s, &s->close_req);
}
