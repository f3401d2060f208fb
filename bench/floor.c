/* floor.c: measures the physical floor under a replicated write: 4 KiB
 * pwrite+fdatasync latency in a directory, and the loopback TCP round trip
 * of a 100-byte message, and prints them as one JSON line. With
 * --bandwidth MIB it measures instead the two bandwidths that bound a
 * snapshot install: a sequential write of MIB MiB followed by fdatasync
 * (like dd conv=fdatasync) and one loopback TCP stream. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadutil.h"

#define BLOCK 4096
#define MSG 100
#define FILE_BLOCKS 4096u
#define CHUNK (1024 * 1024) /* write and send size of --bandwidth */

static void die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Sequential 4 KiB writes, each followed by fdatasync, into a file of up to
 * FILE_BLOCKS blocks (written round and round) that was filled and synced
 * first (like our preallocated segments, so that no write has to allocate
 * blocks). Fills lat[0..n-1]; returns elapsed ns. */
static uint64_t disk(const char *dir, unsigned n, uint64_t *lat)
{
    char path[4096];
    static char buf[BLOCK];
    unsigned i;
    uint64_t t0;
    int fd;
    snprintf(path, sizeof path, "%s/floor.XXXXXX", dir);
    fd = mkstemp(path);
    if (fd < 0) {
        die(path);
    }
    unlink(path);
    memset(buf, 'z', sizeof buf);
    for (i = 0; i < n && i < FILE_BLOCKS; i++) {
        if (pwrite(fd, buf, BLOCK, (off_t)i * BLOCK) != BLOCK) {
            die("pwrite");
        }
    }
    if (fsync(fd) != 0) {
        die("fsync");
    }
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        uint64_t t = now_ns();
        buf[0] = (char)i;
        if (pwrite(fd, buf, BLOCK, (off_t)(i % FILE_BLOCKS) * BLOCK) != BLOCK) {
            die("pwrite");
        }
        if (fdatasync(fd) != 0) {
            die("fdatasync");
        }
        lat[i] = now_ns() - t;
    }
    t0 = now_ns() - t0;
    close(fd);
    return t0;
}

static int read_full(int fd, char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) {
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The echo side of the ping-pong. */
static void *echo_main(void *arg)
{
    int lfd = *(int *)arg, fd, one = 1;
    char buf[MSG];
    fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
        die("accept");
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (read_full(fd, buf, MSG) == 0 && write_full(fd, buf, MSG) == 0) {
    }
    close(fd);
    return NULL;
}

/* n round trips of 100 bytes over loopback TCP between two threads. */
static void rtt(unsigned n, uint64_t *lat)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof sa;
    pthread_t th;
    char buf[MSG];
    int lfd, fd, one = 1;
    unsigned i;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0; /* any free port */
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0) {
        die("listen");
    }
    if (pthread_create(&th, NULL, echo_main, &lfd) != 0) {
        die("pthread_create");
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        die("connect");
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(buf, 'p', sizeof buf);
    for (i = 0; i < n; i++) {
        uint64_t t = now_ns();
        if (write_full(fd, buf, MSG) != 0 || read_full(fd, buf, MSG) != 0) {
            die("ping-pong");
        }
        lat[i] = now_ns() - t;
    }
    close(fd);
    pthread_join(th, NULL);
    close(lfd);
}

/* Sequential 1 MiB writes of mib MiB into a new file in dir, then one
 * fdatasync; returns the elapsed ns, the sync included. The data is
 * pseudo-random so that no layer below can compress it. */
static uint64_t seq_write(const char *dir, unsigned mib)
{
    char path[4096];
    char *buf = malloc(CHUNK);
    uint64_t t0, x = 0x9e3779b97f4a7c15ULL;
    unsigned i, j;
    int fd;
    if (buf == NULL) {
        die("malloc");
    }
    for (j = 0; j + sizeof x <= CHUNK; j += sizeof x) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + j, &x, sizeof x);
    }
    snprintf(path, sizeof path, "%s/seqwrite.XXXXXX", dir);
    fd = mkstemp(path);
    if (fd < 0) {
        die(path);
    }
    unlink(path);
    t0 = now_ns();
    for (i = 0; i < mib; i++) {
        buf[0] = (char)i; /* no two chunks alike */
        if (write_full(fd, buf, CHUNK) != 0) {
            die("write");
        }
    }
    if (fdatasync(fd) != 0) {
        die("fdatasync");
    }
    t0 = now_ns() - t0;
    close(fd);
    free(buf);
    return t0;
}

struct sink {
    int lfd;
    uint64_t bytes; /* to receive */
    uint64_t done_ns;
};

/* The receiving side of the stream: reads until it has all the bytes. */
static void *sink_main(void *arg)
{
    struct sink *s = arg;
    char *buf = malloc(CHUNK);
    uint64_t got = 0;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0 || buf == NULL) {
        die("accept");
    }
    while (got < s->bytes) {
        ssize_t r = read(fd, buf, CHUNK);
        if (r <= 0) {
            die("stream read");
        }
        got += (uint64_t)r;
    }
    s->done_ns = now_ns();
    close(fd);
    free(buf);
    return NULL;
}

/* One loopback TCP stream of mib MiB between two threads, in 1 MiB
 * writes; returns the ns from the first write to the last byte read. */
static uint64_t stream(unsigned mib)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof sa;
    struct sink s = {-1, (uint64_t)mib * CHUNK, 0};
    pthread_t th;
    char *buf = malloc(CHUNK);
    uint64_t t0;
    unsigned i;
    int fd;
    if (buf == NULL) {
        die("malloc");
    }
    memset(buf, 's', CHUNK);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s.lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (s.lfd < 0 || bind(s.lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(s.lfd, 1) != 0 ||
        getsockname(s.lfd, (struct sockaddr *)&sa, &salen) != 0) {
        die("listen");
    }
    if (pthread_create(&th, NULL, sink_main, &s) != 0) {
        die("pthread_create");
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        die("connect");
    }
    t0 = now_ns();
    for (i = 0; i < mib; i++) {
        if (write_full(fd, buf, CHUNK) != 0) {
            die("stream write");
        }
    }
    pthread_join(th, NULL);
    close(fd);
    close(s.lfd);
    free(buf);
    return s.done_ns - t0;
}

/* --bandwidth: both bandwidths as one JSON line, in MiB/s. The stream
 * sends 4 times as much as the disk writes (at least 1 GiB) so that its
 * start-up does not count. */
static int bandwidth(const char *dir, unsigned mib)
{
    unsigned net_mib = mib * 4 > 1024 ? mib * 4 : 1024;
    uint64_t disk_ns = seq_write(dir, mib);
    uint64_t net_ns = stream(net_mib);
    printf(
        "{\"seq_write_mib\":%u,\"seq_write_mib_per_s\":%.1f,"
        "\"loopback_mib\":%u,\"loopback_mib_per_s\":%.1f}\n",
        mib, mib / (disk_ns / 1e9), net_mib, net_mib / (net_ns / 1e9));
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"syncs", required_argument, NULL, 's'},
        {"round-trips", required_argument, NULL, 'r'},
        {"bandwidth", required_argument, NULL, 'b'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = ".";
    unsigned n_sync = 2000, n_rtt = 20000, bw_mib = 0;
    uint64_t *dl, *rl, elapsed;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
            case 'd': dir = optarg; break;
            case 's': n_sync = (unsigned)strtoul(optarg, NULL, 10); break;
            case 'r': n_rtt = (unsigned)strtoul(optarg, NULL, 10); break;
            case 'b': bw_mib = (unsigned)strtoul(optarg, NULL, 10); break;
            default:
                fprintf(stderr,
                        "usage: bench_floor [--dir DIR] [--syncs N] "
                        "[--round-trips N]\n"
                        "       bench_floor [--dir DIR] --bandwidth MIB\n");
                return 2;
        }
    }
    if (bw_mib > 0) {
        return bandwidth(dir, bw_mib);
    }
    if (n_sync == 0 || n_rtt == 0) {
        return 2;
    }
    dl = malloc(sizeof *dl * n_sync);
    rl = malloc(sizeof *rl * n_rtt);
    if (dl == NULL || rl == NULL) {
        return 1;
    }
    elapsed = disk(dir, n_sync, dl);
    rtt(n_rtt, rl);
    qsort(dl, n_sync, sizeof *dl, cmp_u64);
    qsort(rl, n_rtt, sizeof *rl, cmp_u64);
    printf(
        "{\"fdatasync_p50_us\":%.1f,\"fdatasync_p99_us\":%.1f,"
        "\"fdatasync_max_us\":%.1f,\"fdatasync_per_second\":%.0f,"
        "\"syncs\":%u,\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,"
        "\"rtt_max_us\":%.1f}\n",
        dl[n_sync / 2] / 1e3, dl[n_sync * 99 / 100] / 1e3, dl[n_sync - 1] / 1e3,
        n_sync / (elapsed / 1e9), n_sync, rl[n_rtt / 2] / 1e3,
        rl[n_rtt * 99 / 100] / 1e3, rl[n_rtt - 1] / 1e3);
    free(dl);
    free(rl);
    return 0;
}
