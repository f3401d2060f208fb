/* floor.c: measures the physical floor under a replicated write: 4 KiB
 * pwrite+fdatasync latency in a directory, and the loopback TCP round trip
 * of a 100-byte message, and prints them as one JSON line. */
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

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"syncs", required_argument, NULL, 's'},
        {"round-trips", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = ".";
    unsigned n_sync = 2000, n_rtt = 20000;
    uint64_t *dl, *rl, elapsed;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
            case 'd': dir = optarg; break;
            case 's': n_sync = (unsigned)strtoul(optarg, NULL, 10); break;
            case 'r': n_rtt = (unsigned)strtoul(optarg, NULL, 10); break;
            default:
                fprintf(stderr,
                        "usage: bench_floor [--dir DIR] [--syncs N] "
                        "[--round-trips N]\n");
                return 2;
        }
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
