/* fuzz_backup.c: libFuzzer target for the backup archive reader
 * (jr_backup_verify, lib/backup.c: libarchive and zlib underneath), which
 * reads a tar.gz an operator brought from elsewhere before a restore.
 *
 * jr_backup_verify takes a path: each input is written to a file in memory
 * and verified as it is. Mutated deflate rarely inflates and the
 * checksums stop a mutated backup.json short of acceptance, so two more
 * shapes reach further: an input that is not gzip is also verified
 * gzip-compressed here (mutations land in the tar headers and entries), and
 * an input that starts with '{' is taken as a backup.json and verified in
 * an archive built around it, with an empty state and a correct
 * SHA256SUMS (mutations reach what verify accepts).
 *
 * A refusal is JR_ECORRUPT, JR_EVERSION or JR_ENOMEM with one terminated
 * line naming the file, and leaves info untouched; what is accepted has
 * self-consistent info and verifies again.
 * fuzz-sources: lib */
#include <archive.h>
#include <archive_entry.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "jacoraft.h"
#include "jr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The file every input is written to: a memfd, which goes with the
 * process however it ends (a crash too), named by its /proc/self/fd path. */
static char path[64];
static int file_fd = -1;

static void file_write(const void *buf, size_t len)
{
    const char *p = buf;
    off_t at = 0;
    if (file_fd < 0) {
        file_fd = memfd_create("jaco-fuzz-backup", MFD_CLOEXEC);
        if (file_fd < 0) {
            abort();
        }
        (void)snprintf(path, sizeof path, "/proc/self/fd/%d", file_fd);
    }
    if (ftruncate(file_fd, 0) != 0) {
        abort();
    }
    while (len > 0) {
        ssize_t n = pwrite(file_fd, p, len, at);
        if (n <= 0) {
            abort();
        }
        p += n;
        at += n;
        len -= (size_t)n;
    }
}

static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static bool lower_hex(const char *s, size_t len)
{
    size_t i;
    if (strlen(s) != len) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static void check_info(const struct jr_backup_info *b)
{
    unsigned i;
    if (b->format != JR_BACKUP_FORMAT ||
        !terminated(b->software, sizeof b->software) ||
        !terminated(b->source_name, sizeof b->source_name) ||
        !terminated(b->cluster_id, sizeof b->cluster_id) ||
        !lower_hex(b->cluster_id, JR__CLUSTER_ID_LEN) ||
        !terminated(b->state_sha256, sizeof b->state_sha256) ||
        !lower_hex(b->state_sha256, 64) || b->index == 0 || b->n_members == 0 ||
        b->n_members > JR_BACKUP_MAX_MEMBERS) {
        abort();
    }
    for (i = 0; i < b->n_members; i++) {
        const struct jr_backup_member *m = &b->members[i];
        if (m->id == 0 || !terminated(m->name, sizeof m->name) ||
            !terminated(m->address, sizeof m->address) ||
            (m->role != JR_ROLE_VOTER && m->role != JR_ROLE_STANDBY &&
             m->role != JR_ROLE_SPARE)) {
            abort();
        }
    }
}

/* Verify what the file holds now; state_size is what an accepted archive's
 * info must say, or UINT64_MAX when unknown. */
static void verify(uint64_t state_size)
{
    static struct jr_backup_info info, untouched;
    struct jr_error err;
    size_t len;
    int rv;
    memset(&info, 0xa5, sizeof info);
    memset(&untouched, 0xa5, sizeof untouched);
    memset(&err, 0, sizeof err);
    rv = jr_backup_verify(path, &info, &err);
    if (rv == 0) {
        check_info(&info);
        if (state_size != UINT64_MAX && info.state_size != state_size) {
            abort();
        }
        if (jr_backup_verify(path, NULL, &err) != 0) {
            abort();
        }
        return;
    }
    if (rv != JR_ECORRUPT && rv != JR_EVERSION && rv != JR_ENOMEM) {
        abort();
    }
    len = strnlen(err.message, sizeof err.message);
    if (err.code != rv || len == 0 || len == sizeof err.message ||
        strchr(err.message, '\n') != NULL ||
        memcmp(&info, &untouched, sizeof info) != 0) {
        abort();
    }
    if (rv != JR_ENOMEM && strncmp(err.message, path, strlen(path)) != 0) {
        abort();
    }
}

/* data as one gzip member, as gzip(1) would write it. */
static void verify_gzipped(const uint8_t *data, size_t size)
{
    z_stream z;
    unsigned char *out;
    size_t cap;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        abort();
    }
    cap = deflateBound(&z, (uLong)size);
    out = malloc(cap);
    if (out == NULL) {
        abort();
    }
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        abort();
    }
    file_write(out, cap - z.avail_out);
    (void)deflateEnd(&z);
    free(out);
    verify(UINT64_MAX);
}

static void sha256_hex(const void *buf, size_t len, char out[65])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    (void)crypto_hash_sha256(d, buf, len);
    (void)sodium_bin2hex(out, 65, d, sizeof d);
}

static void put(struct archive *a, const char *name, const void *buf, size_t n)
{
    struct archive_entry *e = archive_entry_new();
    if (e == NULL) {
        abort();
    }
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_size(e, (la_int64_t)n);
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        (n > 0 && archive_write_data(a, buf, n) != (la_ssize_t)n)) {
        abort();
    }
    archive_entry_free(e);
}

/* data as backup.json in an archive laid out as jr_node_backup writes one,
 * the state empty and SHA256SUMS right. */
static void verify_assembled(const uint8_t *data, size_t size)
{
    char meta_sha[65], state_sha[65], sums[256];
    struct archive *a = archive_write_new();
    size_t cap = 2 * size + 65536, used = 0;
    char *out = malloc(cap);
    if (a == NULL || out == NULL) {
        abort();
    }
    sha256_hex(data, size, meta_sha);
    sha256_hex("", 0, state_sha);
    (void)snprintf(sums, sizeof sums, "%s  backup.json\n%s  state\n", meta_sha,
                   state_sha);
    if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open_memory(a, out, cap, &used) != ARCHIVE_OK) {
        abort();
    }
    put(a, "jaco-backup/backup.json", data, size);
    put(a, "jaco-backup/state", "", 0);
    put(a, "jaco-backup/SHA256SUMS", sums, strlen(sums));
    if (archive_write_close(a) != ARCHIVE_OK) {
        abort();
    }
    archive_write_free(a);
    file_write(out, used);
    free(out);
    verify(0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    file_write(data, size);
    verify(UINT64_MAX);
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        return 0;
    }
    verify_gzipped(data, size);
    if (size >= 1 && data[0] == '{') {
        verify_assembled(data, size);
    }
    return 0;
}
