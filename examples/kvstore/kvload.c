/* kvload.c: a load generator for the kvstore client protocol: keeps a fixed
 * number of PUTs in flight across one or more servers, reports throughput
 * and latency, and can record every acknowledged key for later checks.
 * For the benchmark it can also send incompressible values
 * (--random-values) and signal a process in the middle of the load
 * (--kill-pid) to time the writes' unavailability around it. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../bench/loadutil.h"

struct conn {
    int fd;
    char rbuf[65536];
    size_t rlen;
    uint64_t *sent_at; /* FIFO of send times, one per request in flight */
    uint64_t *keys;    /* FIFO of key numbers in flight */
    unsigned head, count, cap;
};

/* Leave at once on error: the process ends, so nothing needs freeing (and
 * _exit keeps leak checkers from reporting what main still holds). */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kvload: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    /* Acknowledged keys already printed to --ack-file must reach it. */
    fflush(NULL);
    _exit(1);
}

/* Check that every key listed in path (one per line) is present on the
 * server, by local reads pipelined on one connection. Exit 0 if all are,
 * 3 if any is missing. */
static int verify(const char *server, const char *path)
{
    FILE *f = fopen(path, "r");
    char key[300];
    char **keys = NULL;
    size_t n = 0, cap = 0, sent = 0, got = 0, missing = 0, len = 0;
    FILE *in;
    char *line = NULL;
    int fd;
    if (f == NULL) {
        fprintf(stderr, "kvload: %s: %s\n", path, strerror(errno));
        return 1;
    }
    while (fgets(key, sizeof key, f) != NULL) {
        /* "key index": the index is for the caller's own checks. */
        key[strcspn(key, " \n")] = '\0';
        if (key[0] == '\0') {
            continue;
        }
        if (n == cap) {
            cap = cap == 0 ? 1024 : cap * 2;
            keys = realloc(keys, cap * sizeof *keys);
        }
        keys[n++] = strdup(key);
    }
    fclose(f);
    fd = dial(server);
    if (fd < 0) {
        die("cannot connect to %s", server);
    }
    in = fdopen(dup(fd), "r");
    while (got < n) {
        /* Keep at most 256 reads ahead of the answers. */
        while (sent < n && sent - got < 256) {
            char req[320];
            int k = snprintf(req, sizeof req, "GET %s\n", keys[sent]);
            if (write(fd, req, (size_t)k) != k) {
                die("write: %s", strerror(errno));
            }
            sent++;
        }
        if (getline(&line, &len, in) <= 0) {
            die("%s closed the connection", server);
        }
        if (strncmp(line, "VALUE ", 6) != 0) {
            if (missing < 5) {
                fprintf(stderr, "kvload: %s: key %s: %s", server, keys[got],
                        line);
            }
            missing++;
        }
        got++;
    }
    printf("%s: %zu of %zu keys present\n", server, n - missing, n);
    fclose(in);
    close(fd);
    free(line);
    while (n > 0) {
        free(keys[--n]);
    }
    free(keys);
    return missing > 0 ? 3 : 0;
}

/* splitmix64, for --random-values. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* --random-values: n characters of the base64 alphabet (6 random bits
 * each, no whitespace), different for every key and prefix, so that no
 * compressor (lz4 in snapshots and installs) can shrink them. */
static void random_value(char *v, unsigned n, uint64_t seed, uint64_t key)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint64_t s = seed ^ (key * 0xd1b54a32d192ed03ULL), x = 0;
    unsigned i, left = 0;
    for (i = 0; i < n; i++) {
        if (left == 0) {
            x = next_rand(&s);
            left = 10;
        }
        v[i] = alphabet[x & 63];
        x >>= 6;
        left--;
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: kvload --servers HOST:PORT[,...] [--inflight N] "
            "[--count N | --seconds S]\n"
            "              [--value-size BYTES] [--prefix P] [--start N] "
            "[--ack-file FILE] [--json]\n"
            "              [--random-values] [--kill-pid PID [--kill-signal N] "
            "[--kill-after-ms MS]]\n"
            "       kvload --servers HOST:PORT --verify FILE\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"servers", required_argument, NULL, 's'},
        {"inflight", required_argument, NULL, 'n'},
        {"count", required_argument, NULL, 'c'},
        {"seconds", required_argument, NULL, 'S'},
        {"value-size", required_argument, NULL, 'v'},
        {"prefix", required_argument, NULL, 'p'},
        {"start", required_argument, NULL, 'b'},
        {"ack-file", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"verify", required_argument, NULL, 'V'},
        {"random-values", no_argument, NULL, 'R'},
        {"kill-pid", required_argument, NULL, 'K'},
        {"kill-signal", required_argument, NULL, 'G'},
        {"kill-after-ms", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *servers = NULL, *prefix = "k", *save = NULL, *tok;
    const char *ack_path = NULL, *verify_path = NULL;
    unsigned inflight = 1, n_conns = 0, i, value_size = 100, per_conn;
    double seconds = 0; /* fractions allowed: the crash test's 0.6 s loads */
    uint64_t count = 0, next_key, start_key = 0, done = 0, errors = 0, sent = 0;
    uint64_t *lat;
    char *value, line[512];
    struct conn *conns;
    struct pollfd *pfd;
    char *addrs[64];
    unsigned n_addrs = 0;
    FILE *ack = NULL;
    bool json = false, random_values = false;
    uint64_t t0, deadline = 0, elapsed;
    uint64_t seed = 0x632be59bd9b4e019ULL;
    /* --kill-pid: the signal is sent once, kill_after_ms after the start,
     * at kill_ns. Meanwhile: the longest time between two successful
     * writes' completions (from the start for the first), the one that
     * spans the signal, the first write sent after it that succeeded, and
     * the failures by code. */
    long kill_pid = 0;
    int kill_signal = SIGKILL;
    uint64_t kill_after_ms = 1000, kill_ns = 0, last_ok_ns = 0;
    uint64_t longest_gap_ns = 0, kill_gap_ns = 0, first_ok_after_kill_ns = 0;
    uint64_t err_lost = 0, err_no_leader = 0;
    bool first_ok_seen = false;
    int opt;

    /* A node killed under us must not kill us with SIGPIPE: the write
     * fails instead and die() flushes the acknowledged keys, whole lines
     * (a signal death left a torn last line in --ack-file, which t_crash
     * then read as a lost write). */
    signal(SIGPIPE, SIG_IGN);
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
            case 's': servers = optarg; break;
            case 'n': inflight = (unsigned)strtoul(optarg, NULL, 10); break;
            case 'c': count = strtoull(optarg, NULL, 10); break;
            case 'S': seconds = strtod(optarg, NULL); break;
            case 'v': value_size = (unsigned)strtoul(optarg, NULL, 10); break;
            case 'p': prefix = optarg; break;
            case 'b': start_key = strtoull(optarg, NULL, 10); break;
            case 'a': ack_path = optarg; break;
            case 'j': json = true; break;
            case 'V': verify_path = optarg; break;
            case 'R': random_values = true; break;
            case 'K': kill_pid = strtol(optarg, NULL, 10); break;
            case 'G': kill_signal = (int)strtol(optarg, NULL, 10); break;
            case 'A': kill_after_ms = strtoull(optarg, NULL, 10); break;
            default: usage();
        }
    }
    if (servers != NULL && verify_path != NULL) {
        return verify(servers, verify_path);
    }
    if (servers == NULL || inflight == 0 || (count == 0 && !(seconds > 0)) ||
        value_size == 0 || value_size > 60000 || optind != argc ||
        kill_pid < 0 || kill_signal <= 0) {
        usage();
    }
    for (tok = strtok_r(servers, ",", &save); tok != NULL && n_addrs < 64;
         tok = strtok_r(NULL, ",", &save)) {
        addrs[n_addrs++] = tok;
    }
    /* Up to 64 connections; deeper concurrency pipelines on each. */
    n_conns = inflight < 64 ? inflight : 64;
    per_conn = (inflight + n_conns - 1) / n_conns;
    conns = calloc(n_conns, sizeof *conns);
    pfd = calloc(n_conns, sizeof *pfd);
    lat = malloc(sizeof *lat * (count > 0 ? count : 10000000));
    value = malloc(value_size + 1);
    if (conns == NULL || pfd == NULL || lat == NULL || value == NULL) {
        return 1;
    }
    memset(value, 'x', value_size);
    value[value_size] = '\0';
    for (i = 0; prefix[i] != '\0'; i++) {
        seed = (seed ^ (unsigned char)prefix[i]) * 1099511628211ULL;
    }
    if (ack_path != NULL && (ack = fopen(ack_path, "a")) == NULL) {
        fprintf(stderr, "kvload: %s: %s\n", ack_path, strerror(errno));
        return 1;
    }
    for (i = 0; i < n_conns; i++) {
        conns[i].fd = dial(addrs[i % n_addrs]);
        if (conns[i].fd < 0) {
            die("cannot connect to %s", addrs[i % n_addrs]);
        }
        conns[i].cap = per_conn;
        conns[i].sent_at = calloc(per_conn, sizeof(uint64_t));
        conns[i].keys = calloc(per_conn, sizeof(uint64_t));
        pfd[i].fd = conns[i].fd;
        pfd[i].events = POLLIN;
    }
    next_key = start_key;
    t0 = now_ns();
    last_ok_ns = t0;
    if (seconds > 0) {
        deadline = t0 + (uint64_t)(seconds * 1e9);
    }
    for (;;) {
        bool more = count > 0 ? sent < count : now_ns() < deadline;
        unsigned outstanding = 0;
        int wait_ms = 30000, ready;
        if (kill_pid > 0 && kill_ns == 0 &&
            now_ns() >= t0 + kill_after_ms * 1000000u) {
            if (kill((pid_t)kill_pid, kill_signal) != 0) {
                die("kill %ld: %s", kill_pid, strerror(errno));
            }
            kill_ns = now_ns();
        }
        /* Top every connection up to its share of the in-flight window. */
        for (i = 0; i < n_conns; i++) {
            struct conn *c = &conns[i];
            while (more && c->count < c->cap &&
                   sent - done < (uint64_t)inflight) {
                int len = snprintf(line, sizeof line, "PUT %s%" PRIu64 " ",
                                   prefix, next_key);
                if (random_values) {
                    random_value(value, value_size, seed, next_key);
                }
                struct iovec_like {
                    const char *p;
                    size_t n;
                } parts[3] = {
                    {line, (size_t)len}, {value, value_size}, {"\n", 1}};
                unsigned k;
                for (k = 0; k < 3; k++) {
                    size_t off = 0;
                    while (off < parts[k].n) {
                        ssize_t w =
                            write(c->fd, parts[k].p + off, parts[k].n - off);
                        if (w <= 0) {
                            die("write: %s", strerror(errno));
                        }
                        off += (size_t)w;
                    }
                }
                c->sent_at[(c->head + c->count) % c->cap] = now_ns();
                c->keys[(c->head + c->count) % c->cap] = next_key;
                c->count++;
                next_key++;
                sent++;
                more = count > 0 ? sent < count : now_ns() < deadline;
            }
            outstanding += c->count;
        }
        if (outstanding == 0) {
            break;
        }
        if (kill_pid > 0 && kill_ns == 0) {
            uint64_t now = now_ns(), at = t0 + kill_after_ms * 1000000u;
            wait_ms = at > now ? (int)((at - now) / 1000000u) + 1 : 0;
            if (wait_ms > 30000) {
                wait_ms = 30000;
            }
        }
        ready = poll(pfd, n_conns, wait_ms);
        if (ready == 0 && kill_pid > 0 && kill_ns == 0) {
            continue; /* time to send the signal */
        }
        if (ready <= 0) {
            die("no answer for 30 s");
        }
        for (i = 0; i < n_conns; i++) {
            struct conn *c = &conns[i];
            ssize_t r;
            size_t start = 0, j;
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            r = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);
            if (r <= 0) {
                die("connection %u closed", i);
            }
            c->rlen += (size_t)r;
            for (j = 0; j < c->rlen; j++) {
                if (c->rbuf[j] != '\n') {
                    continue;
                }
                if (c->count == 0) {
                    die("unexpected answer");
                }
                if (strncmp(c->rbuf + start, "OK ", 3) == 0) {
                    uint64_t now = now_ns();
                    lat[done - errors] = now - c->sent_at[c->head];
                    if (now - last_ok_ns > longest_gap_ns) {
                        longest_gap_ns = now - last_ok_ns;
                    }
                    if (kill_ns != 0 && last_ok_ns < kill_ns &&
                        now >= kill_ns) {
                        kill_gap_ns = now - last_ok_ns;
                    }
                    if (kill_ns != 0 && !first_ok_seen &&
                        c->sent_at[c->head] >= kill_ns) {
                        first_ok_seen = true;
                        first_ok_after_kill_ns = now - kill_ns;
                    }
                    last_ok_ns = now;
                    if (ack != NULL) {
                        /* "OK <index>": the key and the log index it
                         * was committed at. */
                        fprintf(ack, "%s%" PRIu64 " %.*s\n", prefix,
                                c->keys[c->head], (int)(j - start - 3),
                                c->rbuf + start + 3);
                    }
                } else {
                    if (strncmp(c->rbuf + start, "ERR leadership_lost ", 20) ==
                        0) {
                        err_lost++;
                    } else if (strncmp(c->rbuf + start, "ERR no_leader ", 14) ==
                               0) {
                        err_no_leader++;
                    }
                    if (errors < 5) {
                        fprintf(stderr, "kvload: %.*s\n", (int)(j - start),
                                c->rbuf + start);
                    }
                    errors++;
                }
                done++;
                c->head = (c->head + 1) % c->cap;
                c->count--;
                start = j + 1;
            }
            memmove(c->rbuf, c->rbuf + start, c->rlen - start);
            c->rlen -= start;
        }
    }
    elapsed = now_ns() - t0;
    if (ack != NULL) {
        fclose(ack);
    }
    {
        uint64_t ok = done - errors;
        double secs = (double)elapsed / 1e9;
        uint64_t p50 = 0, p99 = 0, max = 0;
        if (ok > 0) {
            qsort(lat, ok, sizeof *lat, cmp_u64);
            p50 = lat[ok / 2];
            p99 = lat[ok * 99 / 100];
            max = lat[ok - 1];
        }
        /* With --kill-pid, the figures around the signal; -1: no
         * successful write after it (or the signal was never sent). */
        char killed[400] = "";
        if (kill_pid > 0) {
            (void)snprintf(
                killed, sizeof killed,
                ",\"kill_signal\":%d,\"kill_after_ms\":%.1f,"
                "\"first_ok_after_kill_ms\":%.1f,\"kill_gap_ms\":%.1f,"
                "\"longest_gap_ms\":%.1f,\"errors_leadership_lost\":%" PRIu64
                ",\"errors_no_leader\":%" PRIu64 ",\"errors_other\":%" PRIu64,
                kill_signal, kill_ns != 0 ? (kill_ns - t0) / 1e6 : -1.0,
                first_ok_seen ? first_ok_after_kill_ns / 1e6 : -1.0,
                kill_gap_ns != 0 ? kill_gap_ns / 1e6 : -1.0,
                longest_gap_ns / 1e6, err_lost, err_no_leader,
                errors - err_lost - err_no_leader);
        }
        if (json) {
            printf("{\"inflight\":%u,\"ok\":%" PRIu64 ",\"errors\":%" PRIu64
                   ",\"seconds\":%.3f,\"per_second\":%.0f,\"p50_us\":%.0f,"
                   "\"p99_us\":%.0f,\"max_us\":%.0f%s}\n",
                   inflight, ok, errors, secs, (double)ok / secs, p50 / 1e3,
                   p99 / 1e3, max / 1e3, killed);
        } else if (kill_pid > 0) {
            printf("%" PRIu64 " ok, %" PRIu64
                   " errors in %.2f s: %.0f/s, "
                   "p50 %.0f us, p99 %.0f us, max %.0f us\n"
                   "{%s}\n",
                   ok, errors, secs, (double)ok / secs, p50 / 1e3, p99 / 1e3,
                   max / 1e3, killed + 1);
        } else {
            printf("%" PRIu64 " ok, %" PRIu64
                   " errors in %.2f s: %.0f/s, "
                   "p50 %.0f us, p99 %.0f us, max %.0f us\n",
                   ok, errors, secs, (double)ok / secs, p50 / 1e3, p99 / 1e3,
                   max / 1e3);
        }
        for (i = 0; i < n_conns; i++) {
            close(conns[i].fd);
            free(conns[i].sent_at);
            free(conns[i].keys);
        }
        free(conns);
        free(pfd);
        free(lat);
        free(value);
        return errors > 0 ? 3 : 0;
    }
}
