/* test_snapstore.c: snapshot files: round trips, retention, choice of the
 * newest, and rejection of truncated, bit-flipped and hostile files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "jr_internal.h"
#include "snapstore.h"
#include "suites.h"
#include "testutil.h"

/* The header layout of snapstore.c, for the tests that forge headers. */
#define HDR_FIXED 48
#define HDR_LEN_OFF 12
#define HDR_DATA_LEN_OFF 40
#define HDR_CRC 4

/* Seed of every pseudo-random state; failing checks print it. */
#define SEED 0x5eed5eedULL

#define MIB (1024u * 1024u)

static char tmpdir[64];
static bool mounted;

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/jr-snapstore-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    mounted = false;
}

static void remove_tmpdir(void)
{
    if (mounted) {
        if (umount(tmpdir) != 0) {
            fprintf(stderr, "umount %s: %s\n", tmpdir, strerror(errno));
        }
        mounted = false;
    }
    if (tmpdir[0] != '\0') {
        tu_rm_rf(tmpdir);
        tmpdir[0] = '\0';
    }
}

/* xorshift64*: the same bytes for the same seed. */
static void fill_random(void *buf, size_t len, uint64_t seed)
{
    uint8_t *p = buf;
    uint64_t x = seed | 1;
    size_t i;
    for (i = 0; i < len; i++) {
        if (i % 8 == 0) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
        }
        p[i] = (uint8_t)((x * 0x2545F4914F6CDD1DULL) >> (8 * (i % 8)));
    }
}

/* Text-like records that lz4 compresses well. */
static void fill_compressible(void *buf, size_t len)
{
    char *p = buf;
    size_t off = 0;
    unsigned k = 0;
    while (off < len) {
        char rec[64];
        int n = snprintf(rec, sizeof rec, "key-%08u=value-%u;", k, k % 97);
        size_t m = (size_t)n < len - off ? (size_t)n : len - off;
        memcpy(p + off, rec, m);
        off += m;
        k++;
    }
}

static void conf3(struct raft_configuration *c)
{
    raft_configuration_init(c);
    ck_assert_int_eq(raft_configuration_add(c, 1, "10.0.0.1:7001", RAFT_VOTER),
                     0);
    ck_assert_int_eq(raft_configuration_add(c, 2, "10.0.0.2:7001", RAFT_VOTER),
                     0);
    ck_assert_int_eq(
        raft_configuration_add(c, 300, "node-three.example:7001", RAFT_SPARE),
        0);
}

static void info_init(struct jr__snapshot_info *info,
                      uint64_t term,
                      uint64_t index)
{
    memset(info, 0, sizeof *info);
    info->term = term;
    info->index = index;
    info->conf_index = index > 1 ? index - 1 : 1;
    conf3(&info->conf);
}

/* Put a snapshot of bufs; returns the code, errmsg filled. */
static int put(uint64_t term,
               uint64_t index,
               const struct raft_buffer *bufs,
               unsigned n,
               unsigned keep,
               char *errmsg)
{
    struct jr__snapshot_info info;
    int rv;
    info_init(&info, term, index);
    errmsg[0] = '\0';
    rv = jr__snapstore_put(tmpdir, &info, bufs, n, keep, errmsg);
    raft_configuration_close(&info.conf);
    return rv;
}

static void put_ok(uint64_t term,
                   uint64_t index,
                   const struct raft_buffer *bufs,
                   unsigned n,
                   unsigned keep)
{
    char errmsg[JR_ERRMSG_SIZE];
    int rv = put(term, index, bufs, n, keep, errmsg);
    ck_assert_msg(rv == 0, "put %llu/%llu: %d %s", (unsigned long long)term,
                  (unsigned long long)index, rv, errmsg);
}

static void put_small(uint64_t term, uint64_t index, unsigned keep)
{
    char data[64];
    struct raft_buffer b = {data, sizeof data};
    memset(data, (int)index, sizeof data);
    put_ok(term, index, &b, 1, keep);
}

static void snap_name(char *out, size_t size, uint64_t term, uint64_t index)
{
    snprintf(out, size, "snapshot-%020llu-%020llu", (unsigned long long)term,
             (unsigned long long)index);
}

static void path_of(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

static bool exists(const char *name)
{
    char path[256];
    struct stat st;
    path_of(path, sizeof path, name);
    return stat(path, &st) == 0;
}

static bool snap_exists(uint64_t term, uint64_t index)
{
    char name[128];
    snap_name(name, sizeof name, term, index);
    return exists(name);
}

static unsigned count_entries(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    unsigned n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            n++;
        }
    }
    ck_assert_int_eq(closedir(d), 0);
    return n;
}

static void write_file(const char *name, const void *buf, size_t len)
{
    char path[256];
    FILE *f;
    path_of(path, sizeof path, name);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* The whole file; free() it. */
static uint8_t *read_file(const char *name, size_t *len)
{
    char path[256];
    struct stat st;
    uint8_t *buf;
    FILE *f;
    path_of(path, sizeof path, name);
    ck_assert_int_eq(stat(path, &st), 0);
    buf = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(buf);
    f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    ck_assert_int_eq(fclose(f), 0);
    *len = (size_t)st.st_size;
    return buf;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void set_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Recompute the CRC of a header of hlen bytes at buf. */
static void reseal(uint8_t *buf, size_t hlen)
{
    set_le32(buf + hlen - HDR_CRC, (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf,
                                                   (uInt)(hlen - HDR_CRC)));
}

static void expect_conf3(const struct raft_configuration *c)
{
    ck_assert_uint_eq(c->n, 3);
    ck_assert_uint_eq(c->servers[0].id, 1);
    ck_assert_str_eq(c->servers[0].address, "10.0.0.1:7001");
    ck_assert_int_eq(c->servers[0].role, RAFT_VOTER);
    ck_assert_uint_eq(c->servers[1].id, 2);
    ck_assert_str_eq(c->servers[1].address, "10.0.0.2:7001");
    ck_assert_int_eq(c->servers[1].role, RAFT_VOTER);
    ck_assert_uint_eq(c->servers[2].id, 300);
    ck_assert_str_eq(c->servers[2].address, "node-three.example:7001");
    ck_assert_int_eq(c->servers[2].role, RAFT_SPARE);
}

/* latest must find term/index, and read must return the concatenation of
 * bufs. */
static void expect_snapshot(uint64_t term,
                            uint64_t index,
                            const struct raft_buffer *bufs,
                            unsigned n)
{
    char errmsg[JR_ERRMSG_SIZE];
    char name[128];
    struct jr__snapshot_info info;
    struct raft_buffer data;
    size_t total = 0;
    size_t off = 0;
    unsigned i;
    int rv;

    for (i = 0; i < n; i++) {
        total += bufs[i].len;
    }
    rv = jr__snapstore_latest(tmpdir, &info, errmsg);
    ck_assert_msg(rv == 0, "latest: %d %s", rv, errmsg);
    ck_assert_uint_eq(info.term, term);
    ck_assert_uint_eq(info.index, index);
    ck_assert_uint_eq(info.conf_index, index > 1 ? index - 1 : 1);
    ck_assert_uint_eq(info.data_len, total);
    snap_name(name, sizeof name, term, index);
    ck_assert_str_eq(info.file, name);
    expect_conf3(&info.conf);

    rv = jr__snapstore_read(tmpdir, &info, &data, errmsg);
    ck_assert_msg(rv == 0, "read: %d %s", rv, errmsg);
    ck_assert_ptr_nonnull(data.base);
    ck_assert_uint_eq(data.len, total);
    for (i = 0; i < n; i++) {
        ck_assert_msg(
            bufs[i].len == 0 || memcmp((uint8_t *)data.base + off, bufs[i].base,
                                       bufs[i].len) == 0,
            "buffer %u differs after a round trip (seed %llx)", i,
            (unsigned long long)SEED);
        off += bufs[i].len;
    }
    raft_free(data.base);
    raft_configuration_close(&info.conf);
}

/* ---- round trips ---- */

START_TEST(round_trip_of_empty_state)
{
    struct raft_buffer empty = {NULL, 0};
    put_ok(1, 1, NULL, 0, 2);
    expect_snapshot(1, 1, NULL, 0);
    put_ok(1, 2, &empty, 1, 2);
    expect_snapshot(1, 2, &empty, 1);
}
END_TEST

START_TEST(round_trip_of_small_state)
{
    char data[] = "the state of a tiny state machine";
    struct raft_buffer b = {data, sizeof data};
    put_ok(3, 42, &b, 1, 2);
    expect_snapshot(3, 42, &b, 1);
}
END_TEST

START_TEST(round_trip_of_multi_buffer_state)
{
    /* Sizes around the 256 KiB chunk, and an empty buffer in the middle. */
    static const size_t sizes[] = {1,  300 * 1024,     0,         256 * 1024,
                                   17, 256 * 1024 + 1, 700 * 1024};
    struct raft_buffer bufs[sizeof sizes / sizeof sizes[0]];
    unsigned n = sizeof sizes / sizeof sizes[0];
    unsigned i;
    for (i = 0; i < n; i++) {
        bufs[i].len = sizes[i];
        bufs[i].base = malloc(sizes[i] + 1);
        ck_assert_ptr_nonnull(bufs[i].base);
        if (i % 2 == 0) {
            fill_random(bufs[i].base, sizes[i], SEED + i);
        } else {
            fill_compressible(bufs[i].base, sizes[i]);
        }
    }
    put_ok(2, 1000, bufs, n, 2);
    expect_snapshot(2, 1000, bufs, n);
    for (i = 0; i < n; i++) {
        free(bufs[i].base);
    }
}
END_TEST

static void round_trip_large(bool random)
{
    struct raft_buffer b;
    char name[128];
    struct stat st;
    char path[256];
    b.len = 20 * MIB;
    b.base = malloc(b.len);
    ck_assert_ptr_nonnull(b.base);
    if (random) {
        fill_random(b.base, b.len, SEED);
    } else {
        fill_compressible(b.base, b.len);
    }
    put_ok(7, 123456789, &b, 1, 2);
    snap_name(name, sizeof name, 7, 123456789);
    path_of(path, sizeof path, name);
    ck_assert_int_eq(stat(path, &st), 0);
    if (!random) {
        ck_assert_msg((size_t)st.st_size < b.len / 2,
                      "20 MiB of text compressed to only %lld bytes",
                      (long long)st.st_size);
    }
    expect_snapshot(7, 123456789, &b, 1);
    free(b.base);
}

START_TEST(round_trip_of_20_mib_compressible_state)
{
    round_trip_large(false);
}
END_TEST

START_TEST(round_trip_of_20_mib_random_state)
{
    round_trip_large(true);
}
END_TEST

/* ---- packed snapshots (sent by the leader as their file's frame) ---- */

/* A 1 MiB state put, read packed, and installed into a second directory:
 * the install decodes it to the same state and keeps the same file. */
START_TEST(packed_snapshot_installs_to_the_same_state)
{
    char errmsg[JR_ERRMSG_SIZE];
    char dir2[96];
    struct jr__snapshot_info info;
    struct raft_buffer state, frame, got;
    size_t i;
    int rv;
    state.len = MIB;
    state.base = raft_malloc(state.len);
    ck_assert_ptr_nonnull(state.base);
    for (i = 0; i < state.len; i++) {
        ((uint8_t *)state.base)[i] = (uint8_t)(i * 7 + (i >> 9));
    }
    put_ok(3, 40, &state, 1, 2);
    rv = jr__snapstore_latest(tmpdir, &info, errmsg);
    ck_assert_msg(rv == 0, "latest: %s", errmsg);
    rv = jr__snapstore_read_packed(tmpdir, &info, &frame, errmsg);
    ck_assert_msg(rv == 0, "read_packed: %s", errmsg);
    ck_assert(jr__snapstore_is_packed(&frame));
    ck_assert(!jr__snapstore_is_packed(&state));
    ck_assert_uint_lt(frame.len, state.len); /* it was not decoded */

    rv = jr__snapstore_unpack(&frame, &got, errmsg);
    ck_assert_msg(rv == 0, "unpack: %s", errmsg);
    ck_assert_uint_eq(got.len, state.len);
    ck_assert(memcmp(got.base, state.base, state.len) == 0);
    raft_free(got.base);

    snprintf(dir2, sizeof dir2, "%s/other", tmpdir);
    ck_assert_int_eq(mkdir(dir2, 0700), 0);
    rv = jr__snapstore_install(dir2, &info, &frame, 2, &got, errmsg);
    ck_assert_msg(rv == 0, "install: %s", errmsg);
    ck_assert_uint_eq(got.len, state.len);
    ck_assert(memcmp(got.base, state.base, state.len) == 0);
    raft_free(got.base);
    raft_configuration_close(&info.conf);
    rv = jr__snapstore_latest(dir2, &info, errmsg);
    ck_assert_msg(rv == 0, "latest of the install: %s", errmsg);
    ck_assert_uint_eq(info.index, 40);
    ck_assert_uint_eq(info.data_len, state.len);
    rv = jr__snapstore_read(dir2, &info, &got, errmsg);
    ck_assert_msg(rv == 0, "read of the install: %s", errmsg);
    ck_assert(memcmp(got.base, state.base, state.len) == 0);
    raft_free(got.base);
    raft_configuration_close(&info.conf);
    raft_free(frame.base);
    raft_free(state.base);
}
END_TEST

/* A frame damaged on its way is refused, and nothing of it is kept. */
START_TEST(damaged_packed_snapshot_is_refused_and_not_kept)
{
    char errmsg[JR_ERRMSG_SIZE];
    char dir2[96];
    struct jr__snapshot_info info;
    struct raft_buffer state, frame, got;
    size_t i;
    int rv;
    state.len = MIB;
    state.base = raft_malloc(state.len);
    ck_assert_ptr_nonnull(state.base);
    for (i = 0; i < state.len; i++) {
        ((uint8_t *)state.base)[i] = (uint8_t)(i * 13 + (i >> 11));
    }
    put_ok(3, 41, &state, 1, 2);
    ck_assert_int_eq(jr__snapstore_latest(tmpdir, &info, errmsg), 0);
    ck_assert_int_eq(jr__snapstore_read_packed(tmpdir, &info, &frame, errmsg),
                     0);
    ((uint8_t *)frame.base)[frame.len / 2] ^= 0x10;
    snprintf(dir2, sizeof dir2, "%s/other", tmpdir);
    ck_assert_int_eq(mkdir(dir2, 0700), 0);
    got.base = NULL;
    rv = jr__snapstore_install(dir2, &info, &frame, 2, &got, errmsg);
    ck_assert_int_eq(rv, JR_ECORRUPT);
    ck_assert_ptr_null(got.base);
    ck_assert_msg(strstr(errmsg, "from the leader") != NULL, "%s", errmsg);
    raft_configuration_close(&info.conf);
    ck_assert_int_eq(jr__snapstore_latest(dir2, &info, errmsg), JR_ENOTFOUND);
    /* A frame cut short is refused before anything is decoded. */
    frame.len = 3;
    ck_assert_int_eq(jr__snapstore_unpack(&frame, &got, errmsg), JR_ECORRUPT);
    raft_free(frame.base);
    raft_free(state.base);
}
END_TEST

START_TEST(put_names_the_file_and_leaves_no_tmp)
{
    put_small(5, 77, 2);
    ck_assert(snap_exists(5, 77));
    ck_assert_uint_eq(count_entries(), 1);
}
END_TEST

START_TEST(put_into_missing_directory_is_eio_naming_the_file)
{
    char errmsg[JR_ERRMSG_SIZE];
    char data[8] = {0};
    struct raft_buffer b = {data, sizeof data};
    char saved[sizeof tmpdir];
    int rv;
    memcpy(saved, tmpdir, sizeof saved);
    ck_assert_uint_lt(strlen(tmpdir) + sizeof "/missing", sizeof tmpdir);
    strcat(tmpdir, "/missing");
    rv = put(1, 9, &b, 1, 1, errmsg);
    memcpy(tmpdir, saved, sizeof saved);
    ck_assert_int_eq(rv, JR_EIO);
    ck_assert_msg(strstr(errmsg, "create ") != NULL &&
                      strstr(errmsg, "missing/snapshot-") != NULL &&
                      strstr(errmsg, ".tmp") != NULL,
                  "errmsg: %s", errmsg);
}
END_TEST

/* ---- retention and leftovers ---- */

START_TEST(keep_two_removes_older_snapshots)
{
    uint64_t i;
    for (i = 1; i <= 5; i++) {
        put_small(1, i * 10, 2);
    }
    ck_assert_uint_eq(count_entries(), 2);
    ck_assert(snap_exists(1, 40));
    ck_assert(snap_exists(1, 50));
    put_small(2, 60, 1);
    ck_assert_uint_eq(count_entries(), 1);
    ck_assert(snap_exists(2, 60));
}
END_TEST

START_TEST(leftover_tmp_is_ignored_then_removed_by_next_put)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__snapshot_info info;
    char tmp_name[160];
    char junk[] = "half-written";
    int rv;

    put_small(1, 10, 2);
    snap_name(tmp_name, sizeof tmp_name - 4, 1, 99);
    strcat(tmp_name, ".tmp");
    write_file(tmp_name, junk, sizeof junk);
    /* Not ours: left alone even though it ends in .tmp. */
    write_file("segment-7.tmp", junk, sizeof junk);
    write_file("snapshot-notanumber", junk, sizeof junk);

    rv = jr__snapstore_latest(tmpdir, &info, errmsg);
    ck_assert_msg(rv == 0, "latest: %d %s", rv, errmsg);
    ck_assert_uint_eq(info.index, 10);
    raft_configuration_close(&info.conf);

    put_small(1, 20, 2);
    ck_assert(!exists(tmp_name));
    ck_assert(exists("segment-7.tmp"));
    ck_assert(exists("snapshot-notanumber"));
    ck_assert(snap_exists(1, 10));
    ck_assert(snap_exists(1, 20));
}
END_TEST

/* ---- latest ---- */

START_TEST(latest_picks_the_highest_index)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__snapshot_info info;
    int rv;
    /* Names sort by term first; the choice must go by index. */
    put_small(9, 50, 10);
    put_small(2, 900, 10);
    put_small(3, 120, 10);
    rv = jr__snapstore_latest(tmpdir, &info, errmsg);
    ck_assert_msg(rv == 0, "latest: %d %s", rv, errmsg);
    ck_assert_uint_eq(info.index, 900);
    ck_assert_uint_eq(info.term, 2);
    raft_configuration_close(&info.conf);
}
END_TEST

START_TEST(latest_prefers_the_higher_term_at_equal_index)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__snapshot_info info;
    int rv;
    put_small(4, 300, 10);
    put_small(5, 300, 10);
    put_small(3, 300, 10);
    rv = jr__snapstore_latest(tmpdir, &info, errmsg);
    ck_assert_msg(rv == 0, "latest: %d %s", rv, errmsg);
    ck_assert_uint_eq(info.index, 300);
    ck_assert_uint_eq(info.term, 5);
    raft_configuration_close(&info.conf);
}
END_TEST

START_TEST(latest_of_empty_or_missing_directory_is_not_found)
{
    char errmsg[JR_ERRMSG_SIZE];
    char missing[128];
    struct jr__snapshot_info info;
    char junk[] = "x";
    char tmp_name[160];
    ck_assert_int_eq(jr__snapstore_latest(tmpdir, &info, errmsg), JR_ENOTFOUND);
    snap_name(tmp_name, sizeof tmp_name - 4, 1, 5);
    strcat(tmp_name, ".tmp");
    write_file(tmp_name, junk, sizeof junk);
    write_file("snapshot-1-2", junk, sizeof junk);
    ck_assert_int_eq(jr__snapstore_latest(tmpdir, &info, errmsg), JR_ENOTFOUND);
    snprintf(missing, sizeof missing, "%s/nope", tmpdir);
    ck_assert_int_eq(jr__snapstore_latest(missing, &info, errmsg),
                     JR_ENOTFOUND);
}
END_TEST

START_TEST(latest_reports_corrupt_newest_without_falling_back)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__snapshot_info info;
    char name[128];
    uint8_t *buf;
    size_t len;
    int rv;
    put_small(1, 10, 2);
    put_small(1, 20, 2);
    snap_name(name, sizeof name, 1, 20);
    buf = read_file(name, &len);
    buf[HDR_FIXED + 2] ^= 0x10;
    write_file(name, buf, len);
    free(buf);
    rv = jr__snapstore_latest(tmpdir, &info, errmsg);
    ck_assert_int_eq(rv, JR_ECORRUPT);
    ck_assert_msg(strstr(errmsg, name) != NULL, "errmsg: %s", errmsg);
    ck_assert_msg(strstr(errmsg,
                         "remove this file to fall back to the "
                         "previous snapshot, or wipe the data "
                         "directory and rejoin the node") != NULL,
                  "errmsg: %s", errmsg);
    ck_assert(snap_exists(1, 10));
}
END_TEST

/* ---- corruption ---- */

/* A snapshot of three lz4 blocks or so; its file bytes in *file. */
static struct raft_buffer corruption_subject(char *name,
                                             size_t name_size,
                                             uint8_t **file,
                                             size_t *file_len,
                                             uint32_t *hlen)
{
    struct raft_buffer b;
    b.len = 600 * 1024;
    b.base = malloc(b.len);
    ck_assert_ptr_nonnull(b.base);
    fill_compressible(b.base, b.len);
    fill_random((uint8_t *)b.base + 100 * 1024, 150 * 1024, SEED);
    put_ok(2, 77, &b, 1, 2);
    snap_name(name, name_size, 2, 77);
    *file = read_file(name, file_len);
    *hlen = le32(*file + HDR_LEN_OFF);
    ck_assert_uint_gt(*hlen, HDR_FIXED + HDR_CRC);
    ck_assert_uint_lt(*hlen, *file_len);
    return b;
}

/* After the file was damaged: latest or read must say JR_ECORRUPT, naming
 * the file (and, for read, a byte offset). what describes the damage. */
static void expect_corrupt(const char *name, const char *what, size_t at)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__snapshot_info info;
    struct raft_buffer data;
    int rv;
    rv = jr__snapstore_latest(tmpdir, &info, errmsg);
    if (rv == JR_ECORRUPT) {
        ck_assert_msg(strstr(errmsg, name) != NULL, "%s %zu: errmsg: %s", what,
                      at, errmsg);
        return;
    }
    ck_assert_msg(rv == 0, "%s %zu: latest returned %d: %s", what, at, rv,
                  errmsg);
    rv = jr__snapstore_read(tmpdir, &info, &data, errmsg);
    raft_configuration_close(&info.conf);
    if (rv == 0) {
        raft_free(data.base);
    }
    ck_assert_msg(rv == JR_ECORRUPT, "%s %zu: read returned %d: %s", what, at,
                  rv, errmsg);
    ck_assert_msg(
        strstr(errmsg, name) != NULL && strstr(errmsg, "byte") != NULL,
        "%s %zu: errmsg: %s", what, at, errmsg);
}

/* Offsets worth damaging in a frame of len bytes starting at start: the
 * frame header, about 150 spread over the blocks, and the tail. */
static bool frame_sample(size_t off, size_t start, size_t len)
{
    size_t rel = off - start;
    return rel < 32 || len - rel <= 16 || rel % (len / 150 + 1) == 0;
}

START_TEST(truncation_at_any_header_or_sampled_frame_offset_is_corrupt)
{
    char name[128];
    uint8_t *file;
    size_t len;
    uint32_t hlen;
    size_t cut;
    struct raft_buffer b =
        corruption_subject(name, sizeof name, &file, &len, &hlen);
    for (cut = 0; cut < len; cut++) {
        if (cut >= hlen && !frame_sample(cut, hlen, len - hlen)) {
            continue;
        }
        write_file(name, file, cut);
        expect_corrupt(name, "truncated at", cut);
    }
    free(file);
    free(b.base);
}
END_TEST

START_TEST(bit_flip_in_every_header_byte_is_corrupt)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__snapshot_info info;
    char name[128];
    uint8_t *file;
    size_t len;
    uint32_t hlen;
    size_t i;
    int mask;
    struct raft_buffer b =
        corruption_subject(name, sizeof name, &file, &len, &hlen);
    for (i = 0; i < hlen; i++) {
        for (mask = 0x01; mask <= 0x80; mask <<= 7) {
            int rv;
            file[i] ^= (uint8_t)mask;
            write_file(name, file, len);
            file[i] ^= (uint8_t)mask;
            rv = jr__snapstore_latest(tmpdir, &info, errmsg);
            ck_assert_msg(rv == JR_ECORRUPT,
                          "flip 0x%02x at header byte %zu: latest returned %d",
                          mask, i, rv);
            ck_assert_msg(strstr(errmsg, name) != NULL &&
                              strstr(errmsg, "remove this file") != NULL,
                          "errmsg: %s", errmsg);
        }
    }
    free(file);
    free(b.base);
}
END_TEST

START_TEST(bit_flip_at_sampled_frame_offsets_is_corrupt)
{
    char name[128];
    uint8_t *file;
    size_t len;
    uint32_t hlen;
    size_t i;
    int mask;
    struct raft_buffer b =
        corruption_subject(name, sizeof name, &file, &len, &hlen);
    for (i = hlen; i < len; i++) {
        if (!frame_sample(i, hlen, len - hlen)) {
            continue;
        }
        /* Every bit of the frame header, two of every other sampled byte. */
        for (mask = 0x01; mask <= 0x80; mask <<= (i - hlen < 32 ? 1 : 7)) {
            char what[32];
            snprintf(what, sizeof what, "flip 0x%02x at", mask);
            file[i] ^= (uint8_t)mask;
            write_file(name, file, len);
            file[i] ^= (uint8_t)mask;
            expect_corrupt(name, what, i);
        }
    }
    free(file);
    free(b.base);
}
END_TEST

START_TEST(data_after_the_frame_is_corrupt)
{
    char name[128];
    uint8_t *file;
    size_t len;
    uint32_t hlen;
    struct raft_buffer b =
        corruption_subject(name, sizeof name, &file, &len, &hlen);
    file = realloc(file, len + 1);
    ck_assert_ptr_nonnull(file);
    file[len] = 0;
    write_file(name, file, len + 1);
    expect_corrupt(name, "one byte appended at", len);
    free(file);
    free(b.base);
}
END_TEST

/* Rewrite the subject's header with edit applied and a valid CRC: the
 * bounds must hold even when the checksum does. */
static void expect_forged_header_corrupt(void (*edit)(uint8_t *hdr,
                                                      size_t *hlen),
                                         const char *what)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__snapshot_info info;
    char name[128];
    uint8_t *file;
    uint8_t *forged;
    size_t len;
    uint32_t hlen;
    size_t new_hlen;
    int rv;
    struct raft_buffer b =
        corruption_subject(name, sizeof name, &file, &len, &hlen);
    forged = malloc(len + 4096);
    ck_assert_ptr_nonnull(forged);
    memcpy(forged, file, hlen - HDR_CRC);
    new_hlen = hlen;
    edit(forged, &new_hlen);
    set_le32(forged + HDR_LEN_OFF, (uint32_t)new_hlen);
    reseal(forged, new_hlen);
    memcpy(forged + new_hlen, file + hlen, len - hlen);
    write_file(name, forged, new_hlen + len - hlen);
    rv = jr__snapstore_latest(tmpdir, &info, errmsg);
    ck_assert_msg(rv == JR_ECORRUPT, "%s: latest returned %d (%s)", what, rv,
                  errmsg);
    ck_assert_msg(strstr(errmsg, name) != NULL, "errmsg: %s", errmsg);
    free(forged);
    free(file);
    free(b.base);
}

static void edit_huge_data_len(uint8_t *h, size_t *hlen)
{
    (void)hlen;
    memset(h + HDR_DATA_LEN_OFF, 0xff, 8);
}

static void edit_data_len_beyond_lz4_ratio(uint8_t *h, size_t *hlen)
{
    (void)hlen;
    /* 1 GiB in a frame of a few hundred KiB. */
    memset(h + HDR_DATA_LEN_OFF, 0, 8);
    h[HDR_DATA_LEN_OFF + 3] = 0x40;
}

/* Replace the configuration with conf[0..n). */
static void set_conf(uint8_t *h, size_t *hlen, const uint8_t *conf, size_t n)
{
    memcpy(h + HDR_FIXED, conf, n);
    *hlen = HDR_FIXED + n + HDR_CRC;
}

static void edit_conf_array32_count(uint8_t *h, size_t *hlen)
{
    static const uint8_t c[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    set_conf(h, hlen, c, sizeof c);
}

static void edit_conf_array16_count(uint8_t *h, size_t *hlen)
{
    static const uint8_t c[] = {0xdc, 0xff, 0xff, 0x93, 0x01, 0xa1, 'a', 0x01};
    set_conf(h, hlen, c, sizeof c);
}

static void edit_conf_nested_array32(uint8_t *h, size_t *hlen)
{
    static const uint8_t c[] = {0x91, 0xdd, 0xff, 0xff, 0xff, 0xff};
    set_conf(h, hlen, c, sizeof c);
}

static void edit_conf_address_too_long(uint8_t *h, size_t *hlen)
{
    uint8_t c[3000];
    c[0] = 0x91;
    c[1] = 0x93;
    c[2] = 0x01;
    c[3] = 0xda; /* str16 of 2000 bytes */
    c[4] = 2000 >> 8;
    c[5] = 2000 & 0xff;
    memset(c + 6, 'a', 2000);
    c[2006] = 0x01;
    set_conf(h, hlen, c, 2007);
}

static void edit_conf_address_past_end(uint8_t *h, size_t *hlen)
{
    static const uint8_t c[] = {0x91, 0x93, 0x01, 0xdb, 0x7f,
                                0xff, 0xff, 0xff, 'a',  0x01};
    set_conf(h, hlen, c, sizeof c);
}

static void edit_conf_bad_role(uint8_t *h, size_t *hlen)
{
    static const uint8_t c[] = {0x91, 0x93, 0x01, 0xa1, 'a', 0x09};
    set_conf(h, hlen, c, sizeof c);
}

static void edit_conf_zero_id(uint8_t *h, size_t *hlen)
{
    static const uint8_t c[] = {0x91, 0x93, 0x00, 0xa1, 'a', 0x01};
    set_conf(h, hlen, c, sizeof c);
}

static void edit_conf_duplicate_id(uint8_t *h, size_t *hlen)
{
    static const uint8_t c[] = {0x92, 0x93, 0x01, 0xa1, 'a', 0x01,
                                0x93, 0x01, 0xa1, 'b',  0x01};
    set_conf(h, hlen, c, sizeof c);
}

static void edit_conf_nul_in_address(uint8_t *h, size_t *hlen)
{
    static const uint8_t c[] = {0x91, 0x93, 0x01, 0xa2, 'a', 0x00, 0x01};
    set_conf(h, hlen, c, sizeof c);
}

static void edit_conf_stray_bytes(uint8_t *h, size_t *hlen)
{
    static const uint8_t c[] = {0x91, 0x93, 0x01, 0xa1, 'a', 0x01, 0xc0};
    set_conf(h, hlen, c, sizeof c);
}

static void edit_conf_not_an_array(uint8_t *h, size_t *hlen)
{
    static const uint8_t c[] = {0xc0};
    set_conf(h, hlen, c, sizeof c);
}

START_TEST(forged_headers_with_valid_crc_are_corrupt)
{
    expect_forged_header_corrupt(edit_huge_data_len, "huge data_len");
    expect_forged_header_corrupt(edit_data_len_beyond_lz4_ratio,
                                 "data_len beyond the lz4 ratio");
    expect_forged_header_corrupt(edit_conf_array32_count, "array32 count");
    expect_forged_header_corrupt(edit_conf_array16_count, "array16 count");
    expect_forged_header_corrupt(edit_conf_nested_array32, "nested array32");
    expect_forged_header_corrupt(edit_conf_address_too_long, "long address");
    expect_forged_header_corrupt(edit_conf_address_past_end,
                                 "address past the end");
    expect_forged_header_corrupt(edit_conf_bad_role, "role 9");
    expect_forged_header_corrupt(edit_conf_zero_id, "id 0");
    expect_forged_header_corrupt(edit_conf_duplicate_id, "duplicate id");
    expect_forged_header_corrupt(edit_conf_nul_in_address, "NUL in address");
    expect_forged_header_corrupt(edit_conf_stray_bytes, "stray bytes");
    expect_forged_header_corrupt(edit_conf_not_an_array, "not an array");
}
END_TEST

START_TEST(header_length_beyond_limits_is_corrupt)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__snapshot_info info;
    static const uint32_t lens[] = {0, 52, 0x7fffffff, 0xffffffff, 3u << 20};
    char name[128];
    uint8_t *file;
    size_t len;
    uint32_t hlen;
    size_t i;
    struct raft_buffer b =
        corruption_subject(name, sizeof name, &file, &len, &hlen);
    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        set_le32(file + HDR_LEN_OFF, lens[i]);
        write_file(name, file, len);
        ck_assert_int_eq(jr__snapstore_latest(tmpdir, &info, errmsg),
                         JR_ECORRUPT);
    }
    free(file);
    free(b.base);
}
END_TEST

START_TEST(read_rejects_info_of_another_snapshot)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__snapshot_info info;
    struct raft_buffer data;
    int rv;
    put_small(1, 10, 2);
    rv = jr__snapstore_latest(tmpdir, &info, errmsg);
    ck_assert_int_eq(rv, 0);
    info.data_len += 1;
    rv = jr__snapstore_read(tmpdir, &info, &data, errmsg);
    ck_assert_int_eq(rv, JR_ECORRUPT);
    raft_configuration_close(&info.conf);
}
END_TEST

/* ---- a full disk ---- */

START_TEST(put_on_full_disk_is_enospace_and_keeps_older_snapshots)
{
    char errmsg[JR_ERRMSG_SIZE];
    char small[4096];
    struct raft_buffer older = {small, sizeof small};
    struct raft_buffer big;
    char name[128];
    int rv;

    if (geteuid() != 0) {
        fprintf(stderr,
                "SKIP put_on_full_disk_is_enospace_and_keeps_older_"
                "snapshots: needs root to mount a 1 MiB tmpfs\n");
        return;
    }
    if (mount("tmpfs", tmpdir, "tmpfs", 0, "size=1m") != 0) {
        fprintf(stderr,
                "SKIP put_on_full_disk_is_enospace_and_keeps_older_"
                "snapshots: mount tmpfs on %s: %s\n",
                tmpdir, strerror(errno));
        return;
    }
    mounted = true;

    fill_random(small, sizeof small, SEED);
    put_ok(1, 10, &older, 1, 2);

    big.len = 3 * MIB; /* random: lz4 cannot shrink it below 1 MiB */
    big.base = malloc(big.len);
    ck_assert_ptr_nonnull(big.base);
    fill_random(big.base, big.len, SEED + 1);
    rv = put(1, 20, &big, 1, 2, errmsg);
    free(big.base);
    ck_assert_msg(rv == JR_ENOSPACE, "put on a full disk returned %d: %s", rv,
                  errmsg);
    snap_name(name, sizeof name, 1, 20);
    ck_assert_msg(strstr(errmsg, name) != NULL &&
                      strstr(errmsg, ".tmp") != NULL &&
                      strstr(errmsg, "write ") != NULL &&
                      strstr(errmsg, "No space left on device") != NULL,
                  "errmsg: %s", errmsg);
    ck_assert(!snap_exists(1, 20));
    ck_assert_uint_eq(count_entries(), 1);
    expect_snapshot(1, 10, &older, 1);

    /* The space is back: the next put works. */
    put_ok(2, 30, &older, 1, 2);
    expect_snapshot(2, 30, &older, 1);
}
END_TEST

Suite *snapstore_suite(void)
{
    Suite *s = suite_create("snapstore");
    TCase *tc;

    tc = tcase_create("round_trip");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, round_trip_of_empty_state);
    tcase_add_test(tc, round_trip_of_small_state);
    tcase_add_test(tc, round_trip_of_multi_buffer_state);
    tcase_add_test(tc, round_trip_of_20_mib_compressible_state);
    tcase_add_test(tc, round_trip_of_20_mib_random_state);
    tcase_add_test(tc, put_names_the_file_and_leaves_no_tmp);
    tcase_add_test(tc, put_into_missing_directory_is_eio_naming_the_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("retention");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, keep_two_removes_older_snapshots);
    tcase_add_test(tc, leftover_tmp_is_ignored_then_removed_by_next_put);
    suite_add_tcase(s, tc);

    tc = tcase_create("latest");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, latest_picks_the_highest_index);
    tcase_add_test(tc, latest_prefers_the_higher_term_at_equal_index);
    tcase_add_test(tc, latest_of_empty_or_missing_directory_is_not_found);
    tcase_add_test(tc, latest_reports_corrupt_newest_without_falling_back);
    suite_add_tcase(s, tc);

    tc = tcase_create("corruption");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc,
                   truncation_at_any_header_or_sampled_frame_offset_is_corrupt);
    tcase_add_test(tc, bit_flip_in_every_header_byte_is_corrupt);
    tcase_add_test(tc, bit_flip_at_sampled_frame_offsets_is_corrupt);
    tcase_add_test(tc, data_after_the_frame_is_corrupt);
    tcase_add_test(tc, forged_headers_with_valid_crc_are_corrupt);
    tcase_add_test(tc, header_length_beyond_limits_is_corrupt);
    tcase_add_test(tc, read_rejects_info_of_another_snapshot);
    suite_add_tcase(s, tc);

    tc = tcase_create("packed");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, packed_snapshot_installs_to_the_same_state);
    tcase_add_test(tc, damaged_packed_snapshot_is_refused_and_not_kept);
    suite_add_tcase(s, tc);

    tc = tcase_create("full_disk");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, put_on_full_disk_is_enospace_and_keeps_older_snapshots);
    suite_add_tcase(s, tc);
    return s;
}
