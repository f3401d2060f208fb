/* etcd_load.c: a load generator for etcd's v3 JSON gateway: keeps N PUTs
 * (POST /v3/kv/put) in flight over keep-alive HTTP/1.1 connections, one
 * request at a time per connection, and reports throughput and latency. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadutil.h"

#define MAX_CONNS 1024
#define RBUF 16384

struct conn {
    int fd;
    const char *host; /* "HOST:PORT", for the Host header */
    bool busy;
    uint64_t sent_at;
    char rbuf[RBUF];
    size_t rlen;
};

static size_t b64(const unsigned char *in, size_t len, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int write_full(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Length of the first complete response in buf (0: not complete yet, -1:
 * malformed); *status gets its HTTP status code. Handles Content-Length and
 * chunked bodies (etcd sends no trailers). */
static long response_len(const char *buf, size_t len, int *status)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4), *p, *eol;
    size_t head;
    if (end == NULL) {
        return 0;
    }
    head = (size_t)(end - buf) + 4;
    if (head < 14 || strncmp(buf, "HTTP/1.", 7) != 0) {
        return -1;
    }
    *status = atoi(buf + 9);
    for (p = buf; p < end; p = eol + 2) {
        eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        if (strncasecmp(p, "Content-Length:", 15) == 0) {
            size_t body = strtoul(p + 15, NULL, 10);
            return head + body <= len ? (long)(head + body) : 0;
        }
        if (strncasecmp(p, "Transfer-Encoding:", 18) == 0 &&
            memmem(p, (size_t)(eol - p), "chunked", 7) != NULL) {
            size_t off = head;
            for (;;) {
                const char *crlf = memmem(buf + off, len - off, "\r\n", 2);
                size_t n;
                if (crlf == NULL) {
                    return 0;
                }
                n = strtoul(buf + off, NULL, 16);
                off = (size_t)(crlf - buf) + 2;
                if (n == 0) {
                    return off + 2 <= len ? (long)(off + 2) : 0;
                }
                off += n + 2;
                if (off > len) {
                    return 0;
                }
            }
        }
    }
    return (long)head; /* no body */
}

/* Print the body of POST /v3/maintenance/status on one endpoint (its
 * member_id and the leader's id tell whether it is the leader). */
static int status(const char *endpoint)
{
    static const char body[] = "{}";
    char req[512], buf[RBUF];
    size_t len = 0;
    long n = 0;
    int code = 0, fd = dial(endpoint), k;
    if (fd < 0) {
        fprintf(stderr, "etcd_load: cannot connect to %s\n", endpoint);
        return 1;
    }
    k = snprintf(req, sizeof req,
                 "POST /v3/maintenance/status HTTP/1.1\r\nHost: %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu"
                 "\r\n\r\n%s",
                 endpoint, sizeof body - 1, body);
    if (write_full(fd, req, (size_t)k) != 0) {
        return 1;
    }
    while (n == 0 && len < sizeof buf) {
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
        n = response_len(buf, len, &code);
    }
    close(fd);
    if (n <= 0 || code != 200) {
        fprintf(stderr, "etcd_load: %s: no status\n", endpoint);
        return 1;
    }
    {
        const char *b = memmem(buf, (size_t)n, "\r\n\r\n", 4) + 4;
        printf("%.*s\n", (int)(buf + n - b), b);
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: etcd_load --endpoints HOST:PORT[,...] [--inflight N] "
            "--count N\n"
            "                 [--value-size BYTES] [--prefix P] [--json]\n"
            "       etcd_load --endpoints HOST:PORT --status\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"endpoints", required_argument, NULL, 'e'},
        {"inflight", required_argument, NULL, 'n'},
        {"count", required_argument, NULL, 'c'},
        {"value-size", required_argument, NULL, 'v'},
        {"prefix", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"status", no_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    char *endpoints = NULL, *save = NULL, *tok, *addrs[64];
    const char *prefix = "k";
    unsigned inflight = 1, value_size = 100, n_addrs = 0, i;
    uint64_t count = 0, sent = 0, done = 0, errors = 0, t0, elapsed;
    uint64_t *lat;
    unsigned char *value;
    char *value64, *req;
    struct conn *conns;
    struct pollfd *pfd;
    bool json = false, status_only = false;
    int opt;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
            case 'e': endpoints = optarg; break;
            case 'n': inflight = (unsigned)strtoul(optarg, NULL, 10); break;
            case 'c': count = strtoull(optarg, NULL, 10); break;
            case 'v': value_size = (unsigned)strtoul(optarg, NULL, 10); break;
            case 'p': prefix = optarg; break;
            case 'j': json = true; break;
            case 's': status_only = true; break;
            default: usage();
        }
    }
    if (endpoints != NULL && status_only) {
        return status(endpoints);
    }
    if (endpoints == NULL || inflight == 0 || inflight > MAX_CONNS ||
        count == 0 || value_size == 0 || value_size > 1000000 ||
        optind != argc) {
        usage();
    }
    for (tok = strtok_r(endpoints, ",", &save); tok != NULL && n_addrs < 64;
         tok = strtok_r(NULL, ",", &save)) {
        addrs[n_addrs++] = tok;
    }
    conns = calloc(inflight, sizeof *conns);
    pfd = calloc(inflight, sizeof *pfd);
    lat = malloc(sizeof *lat * count);
    value = malloc(value_size);
    value64 = malloc(value_size * 4 / 3 + 8);
    req = malloc(value_size * 4 / 3 + 1024);
    if (conns == NULL || pfd == NULL || lat == NULL || value == NULL ||
        value64 == NULL || req == NULL) {
        return 1;
    }
    memset(value, 'x', value_size);
    b64(value, value_size, value64);
    for (i = 0; i < inflight; i++) {
        conns[i].host = addrs[i % n_addrs];
        conns[i].fd = dial(conns[i].host);
        if (conns[i].fd < 0) {
            fprintf(stderr, "etcd_load: cannot connect to %s\n", conns[i].host);
            return 1;
        }
        pfd[i].fd = conns[i].fd;
        pfd[i].events = POLLIN;
    }
    t0 = now_ns();
    for (;;) {
        unsigned busy = 0;
        for (i = 0; i < inflight; i++) {
            struct conn *c = &conns[i];
            if (!c->busy && sent < count) {
                char key[64], key64[96], body[64];
                int klen =
                    snprintf(key, sizeof key, "%s%" PRIu64, prefix, sent);
                int blen, rlen;
                b64((const unsigned char *)key, (size_t)klen, key64);
                blen = snprintf(body, sizeof body, "{\"key\":\"%s\",", key64);
                rlen = sprintf(req,
                               "POST /v3/kv/put HTTP/1.1\r\nHost: %s\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: %zu\r\n\r\n%s\"value\":\"%s\"}",
                               c->host, (size_t)blen + 11 + strlen(value64),
                               body, value64);
                c->sent_at = now_ns();
                if (write_full(c->fd, req, (size_t)rlen) != 0) {
                    fprintf(stderr, "etcd_load: write: %s\n", strerror(errno));
                    return 1;
                }
                c->busy = true;
                sent++;
            }
            busy += c->busy;
        }
        if (busy == 0) {
            break;
        }
        if (poll(pfd, inflight, 30000) <= 0) {
            fprintf(stderr, "etcd_load: no answer for 30 s\n");
            return 1;
        }
        for (i = 0; i < inflight; i++) {
            struct conn *c = &conns[i];
            ssize_t r;
            long n;
            int status = 0;
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            r = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);
            if (r <= 0) {
                fprintf(stderr, "etcd_load: connection %u closed\n", i);
                return 1;
            }
            c->rlen += (size_t)r;
            n = response_len(c->rbuf, c->rlen, &status);
            if (n < 0 || (n == 0 && c->rlen == sizeof c->rbuf)) {
                fprintf(stderr, "etcd_load: bad response\n");
                return 1;
            }
            if (n == 0) {
                continue;
            }
            if (!c->busy) {
                fprintf(stderr, "etcd_load: unexpected response\n");
                return 1;
            }
            if (status == 200) {
                lat[done - errors] = now_ns() - c->sent_at;
            } else {
                if (errors < 5) {
                    fprintf(stderr, "etcd_load: %.*s\n", (int)n, c->rbuf);
                }
                errors++;
            }
            done++;
            c->busy = false;
            memmove(c->rbuf, c->rbuf + n, c->rlen - (size_t)n);
            c->rlen -= (size_t)n;
        }
    }
    elapsed = now_ns() - t0;
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
        if (json) {
            printf("{\"inflight\":%u,\"ok\":%" PRIu64 ",\"errors\":%" PRIu64
                   ",\"seconds\":%.3f,\"per_second\":%.0f,\"p50_us\":%.0f,"
                   "\"p99_us\":%.0f,\"max_us\":%.0f}\n",
                   inflight, ok, errors, secs, (double)ok / secs, p50 / 1e3,
                   p99 / 1e3, max / 1e3);
        } else {
            printf("%" PRIu64 " ok, %" PRIu64
                   " errors in %.2f s: %.0f/s, "
                   "p50 %.0f us, p99 %.0f us, max %.0f us\n",
                   ok, errors, secs, (double)ok / secs, p50 / 1e3, p99 / 1e3,
                   max / 1e3);
        }
        return errors > 0 ? 3 : 0;
    }
}
