/* faultproxy.c: a TCP proxy that adds latency, for the fault tests
 * (test/integration/netns.sh). The kernel has no netem here, so a node's
 * namespace redirects its connections to a peer (nftables nat output,
 * "redirect") to this proxy, which forwards every byte after --delay-ms,
 * in order, each direction on its own. Its own upstream connections carry
 * --mark (SO_MARK), which the redirect rule skips.
 *
 *   faultproxy --delay-ms MS [--mark N] --route PORT=HOST:PORT...
 *
 * listens on 127.0.0.1:PORT for each route. SIGTERM ends it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUTES 16
#define MAX_PAIRS 256
#define CHUNK 65536
#define MAX_QUEUED (8u << 20) /* bytes held per direction */

struct chunk {
    struct chunk *next;
    int64_t due_ms;
    size_t len, off;
    char data[];
};

/* One direction: bytes read from `from`, held, then written to `to`. */
struct flow {
    int from, to;
    struct chunk *head, *tail;
    size_t queued;
    bool eof; /* from has closed: shut to's write side once drained */
};

struct pair {
    bool used;
    bool connecting;
    struct flow up, down; /* client->server, server->client */
};

struct route {
    int listen_fd;
    struct sockaddr_in to;
};

static struct route routes[MAX_ROUTES];
static unsigned n_routes;
static struct pair pairs[MAX_PAIRS];
static int64_t delay_ms;
static int mark;
static volatile sig_atomic_t done;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_term(int sig)
{
    (void)sig;
    done = 1;
}

static int parse_hostport(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    if (colon == NULL || (size_t)(colon - s) >= sizeof host) {
        return -1;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static void nonblock(int fd)
{
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void flow_clear(struct flow *f)
{
    while (f->head != NULL) {
        struct chunk *c = f->head;
        f->head = c->next;
        free(c);
    }
    f->tail = NULL;
    f->queued = 0;
}

static void pair_close(struct pair *p)
{
    flow_clear(&p->up);
    flow_clear(&p->down);
    (void)close(p->up.from);
    (void)close(p->up.to);
    memset(p, 0, sizeof *p);
}

static void accept_on(const struct route *r)
{
    int c = accept(r->listen_fd, NULL, NULL), s, one = 1;
    unsigned i;
    if (c < 0) {
        return;
    }
    for (i = 0; i < MAX_PAIRS && pairs[i].used; i++) {
    }
    s = socket(AF_INET, SOCK_STREAM, 0);
    if (i == MAX_PAIRS || s < 0) {
        (void)close(c);
        if (s >= 0) {
            (void)close(s);
        }
        return;
    }
    if (mark != 0) {
        (void)setsockopt(s, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
    }
    (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    nonblock(c);
    nonblock(s);
    if (connect(s, (const struct sockaddr *)&r->to, sizeof r->to) != 0 &&
        errno != EINPROGRESS) {
        (void)close(c);
        (void)close(s);
        return;
    }
    pairs[i].used = true;
    pairs[i].connecting = true;
    pairs[i].up.from = c;
    pairs[i].up.to = s;
    pairs[i].down.from = s;
    pairs[i].down.to = c;
}

/* Read what is there into the flow's queue; -1 on an error. */
static int flow_read(struct flow *f)
{
    struct chunk *c;
    ssize_t n;
    if (f->eof || f->queued >= MAX_QUEUED) {
        return 0;
    }
    c = malloc(sizeof *c + CHUNK);
    if (c == NULL) {
        return -1;
    }
    n = read(f->from, c->data, CHUNK);
    if (n <= 0) {
        free(c);
        if (n == 0) {
            f->eof = true;
            return 0;
        }
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    c->next = NULL;
    c->len = (size_t)n;
    c->off = 0;
    c->due_ms = now_ms() + delay_ms;
    if (f->tail != NULL) {
        f->tail->next = c;
    } else {
        f->head = c;
    }
    f->tail = c;
    f->queued += (size_t)n;
    return 0;
}

/* Write what is due; -1 on an error. */
static int flow_write(struct flow *f, int64_t now)
{
    while (f->head != NULL && f->head->due_ms <= now) {
        struct chunk *c = f->head;
        ssize_t n = write(f->to, c->data + c->off, c->len - c->off);
        if (n < 0) {
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        }
        c->off += (size_t)n;
        f->queued -= (size_t)n;
        if (c->off < c->len) {
            return 0;
        }
        f->head = c->next;
        if (f->head == NULL) {
            f->tail = NULL;
        }
        free(c);
    }
    if (f->eof && f->head == NULL) {
        (void)shutdown(f->to, SHUT_WR);
    }
    return 0;
}

static int64_t next_due(const struct flow *f)
{
    return f->head != NULL ? f->head->due_ms : INT64_MAX;
}

int main(int argc, char **argv)
{
    struct pollfd fds[MAX_ROUTES + 2 * MAX_PAIRS];
    int i;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc) {
            delay_ms = atoll(argv[++i]);
        } else if (strcmp(argv[i], "--mark") == 0 && i + 1 < argc) {
            mark = (int)strtol(argv[++i], NULL, 0);
        } else if (strcmp(argv[i], "--route") == 0 && i + 1 < argc &&
                   n_routes < MAX_ROUTES) {
            struct route *r = &routes[n_routes];
            struct sockaddr_in sa;
            char *eq = strchr(argv[++i], '=');
            int one = 1;
            if (eq == NULL || parse_hostport(eq + 1, &r->to) != 0) {
                fprintf(stderr, "faultproxy: bad route %s\n", argv[i]);
                return 2;
            }
            memset(&sa, 0, sizeof sa);
            sa.sin_family = AF_INET;
            sa.sin_port = htons((uint16_t)atoi(argv[i]));
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
            (void)setsockopt(r->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
                             sizeof one);
            if (bind(r->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
                listen(r->listen_fd, 64) != 0) {
                fprintf(stderr, "faultproxy: listen on %s: %s\n", argv[i],
                        strerror(errno));
                return 1;
            }
            nonblock(r->listen_fd);
            n_routes++;
        } else {
            fprintf(stderr,
                    "usage: faultproxy --delay-ms MS [--mark N] --route "
                    "PORT=HOST:PORT...\n");
            return 2;
        }
    }
    if (n_routes == 0) {
        fprintf(stderr, "faultproxy: no --route\n");
        return 2;
    }
    while (!done) {
        int64_t now = now_ms(), wake = INT64_MAX;
        unsigned n = 0, k;
        for (k = 0; k < n_routes; k++) {
            fds[n].fd = routes[k].listen_fd;
            fds[n++].events = POLLIN;
        }
        for (k = 0; k < MAX_PAIRS; k++) {
            struct pair *p = &pairs[k];
            if (!p->used) {
                continue;
            }
            /* A flow writes when its head is due; reads while it can
             * hold more. */
            fds[n].fd = p->up.from;
            fds[n].events = (short)(p->up.eof ? 0 : POLLIN);
            fds[n + 1].fd = p->up.to;
            fds[n + 1].events =
                (short)(p->connecting || (p->up.head != NULL &&
                                          p->up.head->due_ms <= now)
                            ? POLLOUT
                            : 0);
            if (!p->connecting && !p->down.eof) {
                fds[n + 1].events |= POLLIN;
            }
            if (p->down.head != NULL && p->down.head->due_ms <= now) {
                fds[n].events |= POLLOUT;
            }
            n += 2;
            wake = next_due(&p->up) < wake ? next_due(&p->up) : wake;
            wake = next_due(&p->down) < wake ? next_due(&p->down) : wake;
        }
        if (poll(fds, n,
                 wake == INT64_MAX ? 1000
                 : wake > now      ? (int)(wake - now)
                                   : 0) < 0 &&
            errno != EINTR) {
            return 1;
        }
        now = now_ms();
        for (k = 0; k < n_routes; k++) {
            if (fds[k].revents & POLLIN) {
                accept_on(&routes[k]);
            }
        }
        for (k = 0; k < MAX_PAIRS; k++) {
            struct pair *p = &pairs[k];
            int err = 0;
            if (!p->used) {
                continue;
            }
            if (p->connecting) {
                socklen_t len = sizeof err;
                struct pollfd q = {p->up.to, POLLOUT, 0};
                if (poll(&q, 1, 0) <= 0) {
                    continue;
                }
                if (getsockopt(p->up.to, SOL_SOCKET, SO_ERROR, &err, &len) !=
                        0 ||
                    err != 0) {
                    pair_close(p);
                    continue;
                }
                p->connecting = false;
            }
            if (flow_read(&p->up) != 0 || flow_read(&p->down) != 0 ||
                flow_write(&p->up, now) != 0 ||
                flow_write(&p->down, now) != 0 ||
                (p->up.eof && p->down.eof && p->up.head == NULL &&
                 p->down.head == NULL)) {
                pair_close(p);
            }
        }
    }
    return 0;
}
