/* kvhist.c: records a history of concurrent kvstore operations for the
 * linearizability checker (test/lin/lincheck): clients, one request at a
 * time each on its own connection, put unique values and read a few keys
 * while the test injects faults.
 *
 * Each client moves to the next server whenever a request fails or its
 * connection does. Every operation is written to the history (format in
 * test/lin/lin.h) with its invocation and completion on CLOCK_MONOTONIC
 * and its outcome:
 *   ok    the server answered OK, VALUE or NOTFOUND;
 *   fail  it answered an error that promises the write was not applied
 *         (jr_apply_cb in jacoraft.h: no_leader, quorum_lost, wrong_state;
 *         and refusals before submission, invalid_argument, too_big; and
 *         apply_failed, where the state machine changed nothing);
 *   info  anything else: timeout, leadership_lost, canceled, io_error,
 *         no_space, no_memory, an unknown code, no answer before
 *         --timeout-ms, a lost connection: the write may have happened.
 * Requests never sent (no connection) are not recorded. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../bench/loadutil.h"

#define MAX_SERVERS 16
#define MAX_ANSWER 70000

enum outcome { OUT_OK, OUT_FAIL, OUT_INFO };

struct rec {
    uint64_t invoke_ns, complete_ns;
    uint64_t seq; /* a put's value is c<client>.<seq> */
    char *read;   /* a get's answer: the value, or NULL for NOTFOUND */
    unsigned client, key, server;
    bool put;
    enum outcome outcome;
    char detail[40]; /* idx=N, or err=<code> */
};

struct client {
    pthread_t thread;
    unsigned id;
    uint64_t rng;
    unsigned server;
    int fd;
    char *buf; /* MAX_ANSWER + 1 */
    size_t len;
    struct rec *recs;
    size_t n, cap;
    uint64_t seq;
};

static char *servers[MAX_SERVERS];
static unsigned n_servers;
static unsigned n_keys = 8, put_percent = 50, timeout_ms = 4000;
static const char *prefix = "k";
static bool local_reads;
static uint64_t deadline_ns;

/* splitmix64: small, seedable, good enough to pick keys and operations. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The codes after which a write certainly did not take effect. */
static bool certainly_not_applied(const char *code)
{
    static const char *const codes[] = {
        "no_leader",        "quorum_lost", "wrong_state",
        "invalid_argument", "too_big",     "apply_failed",
    };
    size_t i;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(code, codes[i]) == 0) {
            return true;
        }
    }
    return false;
}

static void disconnect(struct client *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->len = 0;
    c->server = (c->server + 1) % n_servers;
}

static void pause_ms(unsigned ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read one answer line (NUL-terminated, newline removed) into c->buf.
 * Returns 0, -1 if the connection ended or failed, -2 at the deadline. */
static int read_answer(struct client *c, uint64_t deadline)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        struct pollfd p = {c->fd, POLLIN, 0};
        uint64_t now;
        ssize_t r;
        int rv;
        if (nl != NULL) {
            *nl = '\0';
            if (nl > c->buf && nl[-1] == '\r') {
                nl[-1] = '\0';
            }
            /* One request at a time: nothing can follow the answer. */
            c->len = 0;
            return 0;
        }
        if (c->len >= MAX_ANSWER) {
            return -1;
        }
        now = now_ns();
        if (now >= deadline) {
            return -2;
        }
        rv = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
        if (rv < 0 && errno == EINTR) {
            continue;
        }
        if (rv < 0) {
            return -1;
        }
        if (rv == 0) {
            continue; /* the deadline check above decides */
        }
        r = read(c->fd, c->buf + c->len, MAX_ANSWER - c->len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        c->len += (size_t)r;
    }
}

static struct rec *new_rec(struct client *c)
{
    if (c->n == c->cap) {
        size_t cap = c->cap == 0 ? 4096 : c->cap * 2;
        struct rec *grown = realloc(c->recs, cap * sizeof *grown);
        if (grown == NULL) {
            return NULL;
        }
        c->recs = grown;
        c->cap = cap;
    }
    memset(&c->recs[c->n], 0, sizeof c->recs[c->n]);
    return &c->recs[c->n];
}

/* Classify an answer line for r; false if it was not a protocol answer. */
static bool take_answer(struct rec *r, const char *line)
{
    if (strncmp(line, "ERR ", 4) == 0) {
        char code[32];
        size_t n = strcspn(line + 4, " ");
        if (n == 0 || n >= sizeof code) {
            return false;
        }
        memcpy(code, line + 4, n);
        code[n] = '\0';
        r->outcome = certainly_not_applied(code) ? OUT_FAIL : OUT_INFO;
        snprintf(r->detail, sizeof r->detail, "err=%s", code);
        return true;
    }
    if (r->put) {
        char *end;
        unsigned long long idx;
        if (strncmp(line, "OK ", 3) != 0) {
            return false;
        }
        idx = strtoull(line + 3, &end, 10);
        if (end == line + 3 || *end != '\0') {
            return false;
        }
        r->outcome = OUT_OK;
        snprintf(r->detail, sizeof r->detail, "idx=%llu", idx);
        return true;
    }
    if (strcmp(line, "NOTFOUND") == 0) {
        r->outcome = OUT_OK;
        return true;
    }
    if (strncmp(line, "VALUE ", 6) == 0 && line[6] != '\0' &&
        strcspn(line + 6, " \t") == strlen(line + 6) &&
        strcmp(line + 6, "nil") != 0 && strcmp(line + 6, "?") != 0) {
        if ((r->read = strdup(line + 6)) == NULL) {
            return false;
        }
        r->outcome = OUT_OK;
        return true;
    }
    return false;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    char req[128];

    while (now_ns() < deadline_ns) {
        struct rec *r;
        int n, got;
        bool put = next_rand(&c->rng) % 100 < put_percent;
        unsigned key = (unsigned)(next_rand(&c->rng) % n_keys);
        if (c->fd < 0) {
            c->fd = dial(servers[c->server]);
            if (c->fd < 0) {
                /* Nothing sent, nothing to record: try the next one. */
                disconnect(c);
                pause_ms(50);
                continue;
            }
        }
        if ((r = new_rec(c)) == NULL) {
            fprintf(stderr, "kvhist: out of memory\n");
            break;
        }
        r->client = c->id;
        r->key = key;
        r->server = c->server;
        r->put = put;
        if (put) {
            r->seq = ++c->seq;
            n = snprintf(req, sizeof req, "PUT %s%u c%u.%" PRIu64 "\n", prefix,
                         key, c->id, r->seq);
        } else {
            n = snprintf(req, sizeof req, "%s %s%u\n",
                         local_reads ? "GET" : "LGET", prefix, key);
        }
        r->invoke_ns = now_ns();
        if (!send_all(c->fd, req, (size_t)n)) {
            /* Some of it may have reached the server. */
            r->complete_ns = now_ns();
            r->outcome = OUT_INFO;
            snprintf(r->detail, sizeof r->detail, "err=send_failed");
            c->n++;
            disconnect(c);
            continue;
        }
        got = read_answer(c, r->invoke_ns + (uint64_t)timeout_ms * 1000000u);
        r->complete_ns = now_ns();
        c->n++;
        if (got != 0) {
            r->outcome = OUT_INFO;
            snprintf(r->detail, sizeof r->detail, "err=%s",
                     got == -2 ? "client_timeout" : "connection_lost");
            disconnect(c);
            continue;
        }
        if (!take_answer(r, c->buf)) {
            fprintf(stderr, "kvhist: client %u: unexpected answer '%.80s'\n",
                    c->id, c->buf);
            r->outcome = OUT_INFO;
            snprintf(r->detail, sizeof r->detail, "err=bad_answer");
            disconnect(c);
            continue;
        }
        if (r->outcome != OUT_OK) {
            disconnect(c);
            pause_ms(10);
        }
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    return NULL;
}

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = *(struct rec *const *)a;
    const struct rec *y = *(struct rec *const *)b;
    if (x->invoke_ns != y->invoke_ns) {
        return x->invoke_ns < y->invoke_ns ? -1 : 1;
    }
    return x->client < y->client ? -1 : x->client > y->client;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: kvhist --servers HOST:PORT[,...] --seconds S --out FILE\n"
            "              [--clients N] [--keys N] [--prefix P] "
            "[--put-percent N]\n"
            "              [--read lget|get] [--timeout-ms MS] [--seed N]\n");
    exit(2);
}

static unsigned parse_uint(const char *s, unsigned min, unsigned max)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        usage();
    }
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"servers", required_argument, NULL, 's'},
        {"seconds", required_argument, NULL, 'S'},
        {"out", required_argument, NULL, 'o'},
        {"clients", required_argument, NULL, 'c'},
        {"keys", required_argument, NULL, 'k'},
        {"prefix", required_argument, NULL, 'p'},
        {"put-percent", required_argument, NULL, 'P'},
        {"read", required_argument, NULL, 'r'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *list = NULL, *save = NULL, *tok;
    const char *out_path = NULL;
    unsigned n_clients = 5, seconds = 0, i;
    uint64_t seed = (uint64_t)time(NULL), t0, total = 0;
    size_t counts[2][3] = {{0}};
    struct client *clients;
    struct rec **all;
    FILE *out;
    int opt, rv = 0;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
            case 's': list = optarg; break;
            case 'S': seconds = parse_uint(optarg, 1, 1000000); break;
            case 'o': out_path = optarg; break;
            case 'c': n_clients = parse_uint(optarg, 1, 256); break;
            case 'k': n_keys = parse_uint(optarg, 1, 1000000); break;
            case 'p': prefix = optarg; break;
            case 'P': put_percent = parse_uint(optarg, 0, 100); break;
            case 't': timeout_ms = parse_uint(optarg, 1, 3600000); break;
            case 'r':
                if (strcmp(optarg, "get") == 0) {
                    local_reads = true;
                } else if (strcmp(optarg, "lget") != 0) {
                    usage();
                }
                break;
            case 'x': {
                char *end;
                seed = strtoull(optarg, &end, 10);
                if (*optarg == '\0' || *end != '\0') {
                    usage();
                }
                break;
            }
            default: usage();
        }
    }
    if (list == NULL || seconds == 0 || out_path == NULL || optind != argc ||
        strlen(prefix) > 64 || strpbrk(prefix, " \t\n") != NULL) {
        usage();
    }
    for (tok = strtok_r(list, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (n_servers == MAX_SERVERS) {
            usage();
        }
        servers[n_servers++] = tok;
    }
    if (n_servers == 0) {
        usage();
    }
    if ((out = fopen(out_path, "w")) == NULL) {
        fprintf(stderr, "kvhist: %s: %s\n", out_path, strerror(errno));
        return 1;
    }
    /* A server killed under a client must fail its write, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    printf("kvhist: seed %" PRIu64
           ", %u clients, %u keys (%s0..%s%u), %u%% "
           "puts, %s reads, %u s\n",
           seed, n_clients, n_keys, prefix, prefix, n_keys - 1, put_percent,
           local_reads ? "local GET" : "LGET", seconds);
    fflush(stdout);
    fprintf(out,
            "# kvhist seed=%" PRIu64
            " clients=%u keys=%u prefix=%s put_percent=%u read=%s "
            "timeout_ms=%u seconds=%u\n",
            seed, n_clients, n_keys, prefix, put_percent,
            local_reads ? "get" : "lget", timeout_ms, seconds);
    fprintf(out,
            "# client op key value invoke_ns complete_ns outcome "
            "server detail\n");

    clients = calloc(n_clients, sizeof *clients);
    if (clients == NULL) {
        return 1;
    }
    t0 = now_ns();
    deadline_ns = t0 + (uint64_t)seconds * 1000000000u;
    for (i = 0; i < n_clients; i++) {
        struct client *c = &clients[i];
        c->id = i;
        c->rng = seed * 0x100000001b3ULL + i;
        c->server = i % n_servers;
        c->fd = -1;
        if ((c->buf = malloc(MAX_ANSWER + 1)) == NULL ||
            pthread_create(&c->thread, NULL, client_main, c) != 0) {
            fprintf(stderr, "kvhist: cannot start client %u\n", i);
            return 1;
        }
    }
    for (i = 0; i < n_clients; i++) {
        pthread_join(clients[i].thread, NULL);
        total += clients[i].n;
    }

    if ((all = malloc((total + 1) * sizeof *all)) == NULL) {
        return 1;
    }
    total = 0;
    for (i = 0; i < n_clients; i++) {
        size_t j;
        for (j = 0; j < clients[i].n; j++) {
            all[total++] = &clients[i].recs[j];
        }
    }
    qsort(all, total, sizeof *all, cmp_rec);
    for (i = 0; i < total; i++) {
        static const char *const names[] = {"ok", "fail", "info"};
        const struct rec *r = all[i];
        char value[64] = "";
        if (r->put) {
            snprintf(value, sizeof value, "c%u.%" PRIu64, r->client, r->seq);
        }
        fprintf(out, "%u %s %s%u %s %" PRIu64 " %" PRIu64 " %s srv=%s %s\n",
                r->client, r->put ? "put" : "get", prefix, r->key,
                r->put                 ? value
                : r->outcome != OUT_OK ? "?"
                : r->read != NULL      ? r->read
                                       : "nil",
                r->invoke_ns, r->complete_ns, names[r->outcome],
                servers[r->server], r->detail);
        counts[r->put ? 0 : 1][r->outcome]++;
    }
    if (fflush(out) != 0 || ferror(out) || fclose(out) != 0) {
        fprintf(stderr, "kvhist: %s: write failed\n", out_path);
        rv = 1;
    }
    printf("kvhist: %" PRIu64
           " operations in %.1f s (put: %zu ok, %zu failed, "
           "%zu unknown; get: %zu ok, %zu not answered) -> %s\n",
           total, (double)(now_ns() - t0) / 1e9, counts[0][OUT_OK],
           counts[0][OUT_FAIL], counts[0][OUT_INFO], counts[1][OUT_OK],
           counts[1][OUT_FAIL] + counts[1][OUT_INFO], out_path);
    for (i = 0; i < n_clients; i++) {
        size_t j;
        for (j = 0; j < clients[i].n; j++) {
            free(clients[i].recs[j].read);
        }
        free(clients[i].recs);
        free(clients[i].buf);
    }
    free(clients);
    free(all);
    return rv;
}
