/* metastore.c: the term and vote file: 32 bytes (magic, term, vote, CRC32
 * of the rest), little-endian, replaced by rename. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "jr_internal.h"
#include "metastore.h"

#define META_MAGIC "JRMETA01"
#define META_SIZE 32

static void put64le(unsigned char *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t get64le(const unsigned char *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

int jr__metastore_load(const char *dir, struct jr__raft_meta *m, char *errmsg)
{
    char path[4096];
    unsigned char buf[META_SIZE + 1];
    ssize_t n;
    int fd;
    uint32_t crc;
    (void)snprintf(path, sizeof path, "%s/meta", dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            m->term = 0;
            m->vote = 0;
            return 0;
        }
        jr__errf(errmsg, "open %s: %s", path, strerror(errno));
        return JR_EIO;
    }
    n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0) {
        jr__errf(errmsg, "read %s: %s", path, strerror(errno));
        return JR_EIO;
    }
    crc = (uint32_t)crc32(0L, buf, META_SIZE - 8);
    if (n != META_SIZE || memcmp(buf, META_MAGIC, 8) != 0 ||
        get64le(buf + 24) != crc) {
        jr__errf(errmsg,
                 "%s (raft term and vote) is damaged: wipe the data "
                 "directory and rejoin the node",
                 path);
        return JR_ECORRUPT;
    }
    m->term = get64le(buf + 8);
    m->vote = get64le(buf + 16);
    return 0;
}

int jr__metastore_store(const char *dir,
                        const struct jr__raft_meta *m,
                        char *errmsg)
{
    char path[4096], msg[JR_ERRMSG_SIZE];
    unsigned char buf[META_SIZE];
    int rv;
    (void)snprintf(path, sizeof path, "%s/meta", dir);
    memcpy(buf, META_MAGIC, 8);
    put64le(buf + 8, m->term);
    put64le(buf + 16, m->vote);
    put64le(buf + 24, (uint32_t)crc32(0L, buf, META_SIZE - 8));
    rv = jr__write_file_atomic(path, buf, sizeof buf, msg);
    if (rv != 0) {
        jr__errf(errmsg, "store raft term and vote: %s", msg);
    }
    return rv;
}
