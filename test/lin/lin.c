/* lin.c: parses operation histories and decides, key by key, whether they
 * are linearizable for a register (see lin.h for the model). */
#include "lin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void set_err(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || size == 0) {
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(err, size, fmt, ap);
    va_end(ap);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------
 * Parsing
 * --------------------------------------------------------------------- */

/* The next whitespace-separated field of *p (NUL-terminated in place), or
 * NULL at the end of the line. */
static char *next_field(char **p)
{
    char *s = *p, *start;
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (*s == '\0') {
        *p = s;
        return NULL;
    }
    start = s;
    while (*s != '\0' && *s != ' ' && *s != '\t') {
        s++;
    }
    if (*s != '\0') {
        *s++ = '\0';
    }
    *p = s;
    return start;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (s == NULL || *s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

static int parse_line(char *line,
                      unsigned lineno,
                      struct lin_op *op,
                      char *err,
                      size_t err_size)
{
    char *p = line, *f[7];
    uint64_t client;
    unsigned i;
    for (i = 0; i < 7; i++) {
        if ((f[i] = next_field(&p)) == NULL) {
            set_err(err, err_size,
                    "line %u: want <client> <put|get> <key> <value> "
                    "<invoke_ns> <complete_ns> <ok|fail|info>",
                    lineno);
            return -1;
        }
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    memset(op, 0, sizeof *op);
    op->line = lineno;
    op->rest = p;
    if (!parse_u64(f[0], &client) || client > 0xffffffffu) {
        set_err(err, err_size, "line %u: bad client id '%s'", lineno, f[0]);
        return -1;
    }
    op->client = (unsigned)client;
    if (strcmp(f[1], "put") == 0) {
        op->kind = LIN_PUT;
    } else if (strcmp(f[1], "get") == 0) {
        op->kind = LIN_GET;
    } else {
        set_err(err, err_size, "line %u: unknown operation '%s'", lineno, f[1]);
        return -1;
    }
    op->key = f[2];
    if (strcmp(f[6], "ok") == 0) {
        op->outcome = LIN_OK;
    } else if (strcmp(f[6], "fail") == 0) {
        op->outcome = LIN_FAIL;
    } else if (strcmp(f[6], "info") == 0) {
        op->outcome = LIN_INFO;
    } else {
        set_err(err, err_size, "line %u: unknown outcome '%s'", lineno, f[6]);
        return -1;
    }
    if (strcmp(f[3], "nil") == 0 || strcmp(f[3], "?") == 0) {
        bool answered_get = op->kind == LIN_GET && op->outcome == LIN_OK;
        if (op->kind == LIN_PUT || (answered_get && strcmp(f[3], "?") == 0)) {
            set_err(err, err_size, "line %u: '%s' is not a value for this %s",
                    lineno, f[3], f[1]);
            return -1;
        }
        op->value = NULL;
    } else {
        op->value = f[3];
    }
    if (!parse_u64(f[4], &op->invoke_ns) ||
        !parse_u64(f[5], &op->complete_ns)) {
        set_err(err, err_size, "line %u: bad time", lineno);
        return -1;
    }
    if (op->outcome == LIN_OK && op->complete_ns < op->invoke_ns) {
        set_err(err, err_size, "line %u: completes before it is invoked",
                lineno);
        return -1;
    }
    return 0;
}

int lin_history_parse(struct lin_history *h,
                      const char *text,
                      size_t len,
                      char *err,
                      size_t err_size)
{
    char *copy, *line, *end;
    struct lin_op *ops = NULL;
    size_t n = 0, cap = 0;
    unsigned lineno = 0;

    memset(h, 0, sizeof *h);
    if ((copy = malloc(len + 1)) == NULL) {
        set_err(err, err_size, "out of memory");
        return -1;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    for (line = copy; line < copy + len; line = end + 1) {
        char *s;
        end = strchr(line, '\n');
        if (end == NULL) {
            end = copy + len;
        }
        *end = '\0';
        lineno++;
        if (memchr(line, '\0', (size_t)(end - line)) != NULL) {
            set_err(err, err_size, "line %u: NUL byte", lineno);
            goto err;
        }
        if (end > line && end[-1] == '\r') {
            end[-1] = '\0';
        }
        for (s = line; *s == ' ' || *s == '\t'; s++) {
        }
        if (*s == '\0' || *s == '#') {
            continue;
        }
        if (n == cap) {
            struct lin_op *grown;
            cap = cap == 0 ? 256 : cap * 2;
            if ((grown = realloc(ops, cap * sizeof *ops)) == NULL) {
                set_err(err, err_size, "out of memory");
                goto err;
            }
            ops = grown;
        }
        if (parse_line(line, lineno, &ops[n], err, err_size) != 0) {
            goto err;
        }
        n++;
    }
    h->ops = ops;
    h->n_ops = n;
    h->text = copy;
    return 0;
err:
    free(ops);
    free(copy);
    return -1;
}

void lin_history_close(struct lin_history *h)
{
    free(h->ops);
    free(h->text);
    memset(h, 0, sizeof *h);
}

/* ------------------------------------------------------------------------
 * The model of one key: the operations the search must order
 * --------------------------------------------------------------------- */

#define VAL_NIL 0u            /* the register's initial state: absent */
#define VAL_NEVER 0xffffffffu /* a value no put of the key wrote */

struct mop {
    uint64_t invoke, complete;
    uint32_t value;
    bool write;
    size_t src; /* index into the history */
};

struct model {
    struct mop *ops;
    size_t n;
    /* Per op of the model: for a read, the write of the value it returns
     * (SIZE_MAX if none); for a write of unknown outcome, the read whose
     * completion became its own (SIZE_MAX for other writes). */
    size_t *writer;
    size_t *anchor;
};

struct valref {
    const char *value;
    size_t src;
};

static int cmp_valref(const void *a, const void *b)
{
    const struct valref *x = a, *y = b;
    return strcmp(x->value, y->value);
}

static uint32_t value_id(const struct valref *vals, size_t n, const char *v)
{
    size_t lo = 0, hi = n;
    if (v == NULL) {
        return VAL_NIL;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(vals[mid].value, v);
        if (c == 0) {
            return (uint32_t)mid + 1;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return VAL_NEVER;
}

static void model_close(struct model *m)
{
    free(m->ops);
    free(m->writer);
    free(m->anchor);
    memset(m, 0, sizeof *m);
}

/* Build the model of the key whose operations are idx[0..n) of h.
 *
 * Failed puts and unanswered gets drop out. A put of unknown outcome whose
 * value nobody read drops out too: leaving it out of any linearization
 * leaves that linearization valid, since with unique values nothing
 * depended on it. One whose value was read must have taken effect before
 * the first read of it completed, which is then its completion. */
static int model_build(const struct lin_history *h,
                       const size_t *idx,
                       size_t n,
                       struct model *m,
                       char *err,
                       size_t err_size)
{
    struct valref *vals = NULL;
    uint64_t *first_read = NULL; /* per value id: earliest read completion */
    size_t *mop_of_value = NULL;
    size_t n_vals = 0, i;
    int rv = -1;

    memset(m, 0, sizeof *m);
    vals = malloc((n + 1) * sizeof *vals);
    m->ops = malloc((n + 1) * sizeof *m->ops);
    m->writer = malloc((n + 1) * sizeof *m->writer);
    m->anchor = malloc((n + 1) * sizeof *m->anchor);
    if (vals == NULL || m->ops == NULL || m->writer == NULL ||
        m->anchor == NULL) {
        set_err(err, err_size, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        const struct lin_op *op = &h->ops[idx[i]];
        if (op->kind == LIN_PUT) {
            vals[n_vals].value = op->value;
            vals[n_vals].src = idx[i];
            n_vals++;
        }
    }
    qsort(vals, n_vals, sizeof *vals, cmp_valref);
    for (i = 1; i < n_vals; i++) {
        if (strcmp(vals[i - 1].value, vals[i].value) == 0) {
            set_err(err, err_size,
                    "key %s: value %s is put twice (lines %u and %u); the "
                    "checker needs unique values",
                    h->ops[vals[i].src].key, vals[i].value,
                    h->ops[vals[i - 1].src].line, h->ops[vals[i].src].line);
            goto out;
        }
    }
    first_read = malloc((n_vals + 1) * sizeof *first_read);
    mop_of_value = malloc((n_vals + 1) * sizeof *mop_of_value);
    if (first_read == NULL || mop_of_value == NULL) {
        set_err(err, err_size, "out of memory");
        goto out;
    }
    for (i = 0; i <= n_vals; i++) {
        first_read[i] = UINT64_MAX;
        mop_of_value[i] = SIZE_MAX;
    }
    for (i = 0; i < n; i++) {
        const struct lin_op *op = &h->ops[idx[i]];
        uint32_t v;
        if (op->kind != LIN_GET || op->outcome != LIN_OK) {
            continue;
        }
        v = value_id(vals, n_vals, op->value);
        if (v != VAL_NIL && v != VAL_NEVER && op->complete_ns < first_read[v]) {
            first_read[v] = op->complete_ns;
        }
    }
    for (i = 0; i < n; i++) {
        const struct lin_op *op = &h->ops[idx[i]];
        struct mop *o = &m->ops[m->n];
        if (op->outcome == LIN_FAIL ||
            (op->kind == LIN_GET && op->outcome != LIN_OK)) {
            continue;
        }
        o->invoke = op->invoke_ns;
        o->complete = op->complete_ns;
        o->value = value_id(vals, n_vals, op->value);
        o->write = op->kind == LIN_PUT;
        o->src = idx[i];
        if (o->write && op->outcome == LIN_INFO) {
            if (first_read[o->value] == UINT64_MAX) {
                continue;
            }
            o->complete = first_read[o->value];
        }
        if (o->write) {
            mop_of_value[o->value] = m->n;
        }
        m->n++;
    }
    for (i = 0; i < m->n; i++) {
        m->writer[i] = SIZE_MAX;
        m->anchor[i] = SIZE_MAX;
    }
    for (i = 0; i < m->n; i++) {
        const struct mop *o = &m->ops[i];
        size_t w;
        if (o->write || o->value == VAL_NIL || o->value == VAL_NEVER ||
            (w = mop_of_value[o->value]) == SIZE_MAX) {
            continue;
        }
        m->writer[i] = w;
        if (h->ops[m->ops[w].src].outcome == LIN_INFO &&
            m->anchor[w] == SIZE_MAX && o->complete == m->ops[w].complete) {
            m->anchor[w] = i;
        }
    }
    rv = 0;
out:
    free(vals);
    free(first_read);
    free(mop_of_value);
    if (rv != 0) {
        model_close(m);
    }
    return rv;
}

/* ------------------------------------------------------------------------
 * The search
 *
 * Events (an invocation and a completion per operation) sit in time order
 * in a doubly linked list. Walking it from the start, the search picks an
 * invoked operation whose step is legal for the register, takes it as the
 * next linearized one, removes its two events and starts again from the
 * head; reaching a completion means that operation should have been
 * linearized already, so the last choice is undone (the events go back in
 * the reverse order they were taken out) and the walk goes on after it.
 *
 * A configuration is the set of linearized operations and the register's
 * value; one seen before is not explored again. The set is encoded as the
 * longest prefix of the operations in completion order that it contains,
 * plus the (few) members after that prefix. Every operation that completed
 * before the latest invocation in the set is in it, so the members after
 * the prefix overlap that invocation: there are about as many as there are
 * clients, and the encoding stays small whatever the history's length.
 * --------------------------------------------------------------------- */

struct ev {
    struct ev *prev, *next;
    uint32_t op;
    bool call;
};

struct memo_entry {
    uint64_t hash; /* 0: empty slot */
    uint32_t prefix, value, n_extra;
    uint32_t *extra;
};

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    uint32_t words[];
};

struct frame {
    uint32_t op;
    uint32_t value;    /* the register before the op */
    uint32_t absorbed; /* see set_add */
};

#define NOT_ABSORBED 0xffffffffu

struct search {
    /* the set of linearized ops, by rank in completion order */
    uint32_t prefix;
    uint32_t *extra; /* sorted ranks above the prefix */
    uint32_t n_extra, cap_extra;
    struct memo_entry *memo;
    size_t memo_cap, memo_used;
    struct arena_block *arena;
};

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
    return h;
}

static uint64_t config_hash(const struct search *s, uint32_t value)
{
    uint64_t h = mix(0x12345678u, s->prefix);
    uint32_t i;
    h = mix(h, value);
    for (i = 0; i < s->n_extra; i++) {
        h = mix(h, s->extra[i]);
    }
    return h == 0 ? 1 : h;
}

static uint32_t *arena_alloc(struct search *s, uint32_t n)
{
    struct arena_block *b = s->arena;
    uint32_t *p;
    if (n == 0) {
        return NULL;
    }
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap * sizeof(uint32_t));
        if (b == NULL) {
            return NULL;
        }
        b->next = s->arena;
        b->used = 0;
        b->cap = cap;
        s->arena = b;
    }
    p = b->words + b->used;
    b->used += n;
    return p;
}

static bool memo_grow(struct search *s)
{
    size_t cap = s->memo_cap == 0 ? 4096 : s->memo_cap * 2, i;
    struct memo_entry *t = calloc(cap, sizeof *t);
    if (t == NULL) {
        return false;
    }
    for (i = 0; i < s->memo_cap; i++) {
        struct memo_entry *e = &s->memo[i];
        size_t j;
        if (e->hash == 0) {
            continue;
        }
        for (j = e->hash & (cap - 1); t[j].hash != 0; j = (j + 1) & (cap - 1)) {
        }
        t[j] = *e;
    }
    free(s->memo);
    s->memo = t;
    s->memo_cap = cap;
    return true;
}

/* Record the current configuration. Returns 1 if it was new, 0 if seen
 * before, -1 out of memory. */
static int memo_add(struct search *s, uint32_t value)
{
    uint64_t h = config_hash(s, value);
    struct memo_entry *e;
    size_t j;
    if ((s->memo_used + 1) * 2 > s->memo_cap && !memo_grow(s)) {
        return -1;
    }
    for (j = h & (s->memo_cap - 1); s->memo[j].hash != 0;
         j = (j + 1) & (s->memo_cap - 1)) {
        e = &s->memo[j];
        if (e->hash == h && e->prefix == s->prefix && e->value == value &&
            e->n_extra == s->n_extra &&
            (s->n_extra == 0 ||
             memcmp(e->extra, s->extra, s->n_extra * sizeof(uint32_t)) == 0)) {
            return 0;
        }
    }
    e = &s->memo[j];
    e->extra = arena_alloc(s, s->n_extra);
    if (s->n_extra > 0 && e->extra == NULL) {
        return -1;
    }
    if (s->n_extra > 0) {
        memcpy(e->extra, s->extra, s->n_extra * sizeof(uint32_t));
    }
    e->hash = h;
    e->prefix = s->prefix;
    e->value = value;
    e->n_extra = s->n_extra;
    s->memo_used++;
    return 1;
}

/* Add rank r (not in the set) to the set; returns what set_remove needs to
 * undo it: how many extras the prefix absorbed, or NOT_ABSORBED. */
static int set_add(struct search *s, uint32_t r, uint32_t *undo)
{
    uint32_t i, m = 0;
    if (r == s->prefix) {
        s->prefix++;
        while (m < s->n_extra && s->extra[m] == s->prefix) {
            s->prefix++;
            m++;
        }
        if (s->n_extra > m) { /* extra may still be NULL */
            memmove(s->extra, s->extra + m,
                    (s->n_extra - m) * sizeof(uint32_t));
        }
        s->n_extra -= m;
        *undo = m;
        return 0;
    }
    if (s->n_extra == s->cap_extra) {
        uint32_t cap = s->cap_extra == 0 ? 16 : s->cap_extra * 2;
        uint32_t *grown = realloc(s->extra, cap * sizeof *grown);
        if (grown == NULL) {
            return -1;
        }
        s->extra = grown;
        s->cap_extra = cap;
    }
    for (i = s->n_extra; i > 0 && s->extra[i - 1] > r; i--) {
        s->extra[i] = s->extra[i - 1];
    }
    s->extra[i] = r;
    s->n_extra++;
    *undo = NOT_ABSORBED;
    return 0;
}

/* Undo set_add(s, r): the last set_add not undone yet. */
static void set_remove(struct search *s, uint32_t r, uint32_t undo)
{
    uint32_t i;
    if (undo != NOT_ABSORBED) {
        /* The room is there: the extras were this many before. */
        if (s->n_extra > 0) {
            memmove(s->extra + undo, s->extra, s->n_extra * sizeof(uint32_t));
        }
        for (i = 0; i < undo; i++) {
            s->extra[i] = r + 1 + i;
        }
        s->n_extra += undo;
        s->prefix = r;
        return;
    }
    for (i = 0; s->extra[i] != r; i++) {
    }
    memmove(s->extra + i, s->extra + i + 1,
            (s->n_extra - i - 1) * sizeof(uint32_t));
    s->n_extra--;
}

static void search_close(struct search *s)
{
    while (s->arena != NULL) {
        struct arena_block *b = s->arena;
        s->arena = b->next;
        free(b);
    }
    free(s->memo);
    free(s->extra);
}

struct ev_sort {
    uint64_t time;
    uint32_t op;
    bool call;
};

static int cmp_ev(const void *a, const void *b)
{
    const struct ev_sort *x = a, *y = b;
    if (x->time != y->time) {
        return x->time < y->time ? -1 : 1;
    }
    /* Same instant: invocations first, so that the two operations count as
     * concurrent (the checker never assumes an order it cannot see). */
    if (x->call != y->call) {
        return x->call ? -1 : 1;
    }
    return x->op < y->op ? -1 : x->op > y->op;
}

struct rank_sort {
    uint64_t complete, invoke;
    uint32_t op;
};

static int cmp_rank(const void *a, const void *b)
{
    const struct rank_sort *x = a, *y = b;
    if (x->complete != y->complete) {
        return x->complete < y->complete ? -1 : 1;
    }
    if (x->invoke != y->invoke) {
        return x->invoke < y->invoke ? -1 : 1;
    }
    return x->op < y->op ? -1 : x->op > y->op;
}

static void ev_unlink(struct ev *e)
{
    e->prev->next = e->next;
    if (e->next != NULL) {
        e->next->prev = e->prev;
    }
}

static void ev_relink(struct ev *e)
{
    e->prev->next = e;
    if (e->next != NULL) {
        e->next->prev = e;
    }
}

struct budget {
    double deadline; /* now_seconds() */
    uint64_t max_states;
    uint64_t states; /* spent, across searches */
};

/* Search a linearization of ops[sel[0..n)]. Returns the verdict, or -1 out
 * of memory. */
static int search_run(const struct mop *ops,
                      const size_t *sel,
                      size_t n,
                      struct budget *b)
{
    struct ev_sort *order = NULL;
    struct rank_sort *rs = NULL;
    struct ev head, *evs = NULL, *e;
    uint32_t *rank = NULL;
    struct frame *stack = NULL;
    struct search s;
    size_t sp = 0, i;
    uint32_t value = VAL_NIL;
    uint64_t steps = 0;
    int rv = -1;

    memset(&s, 0, sizeof s);
    memset(&head, 0, sizeof head);
    if (n == 0) {
        return LIN_LINEARIZABLE;
    }
    order = malloc(2 * n * sizeof *order);
    rs = malloc(n * sizeof *rs);
    evs = malloc(2 * n * sizeof *evs);
    rank = malloc(n * sizeof *rank);
    stack = malloc(n * sizeof *stack);
    if (order == NULL || rs == NULL || evs == NULL || rank == NULL ||
        stack == NULL) {
        goto out;
    }
    for (i = 0; i < n; i++) {
        const struct mop *o = &ops[sel[i]];
        order[2 * i] = (struct ev_sort){o->invoke, (uint32_t)i, true};
        order[2 * i + 1] = (struct ev_sort){o->complete, (uint32_t)i, false};
        rs[i] = (struct rank_sort){o->complete, o->invoke, (uint32_t)i};
    }
    qsort(order, 2 * n, sizeof *order, cmp_ev);
    qsort(rs, n, sizeof *rs, cmp_rank);
    for (i = 0; i < n; i++) {
        rank[rs[i].op] = (uint32_t)i;
    }
    /* evs[2i] is op i's invocation, evs[2i+1] its completion. */
    e = &head;
    for (i = 0; i < 2 * n; i++) {
        struct ev *x = &evs[2 * order[i].op + (order[i].call ? 0 : 1)];
        x->op = order[i].op;
        x->call = order[i].call;
        x->prev = e;
        x->next = NULL;
        e->next = x;
        e = x;
    }

    e = head.next;
    while (head.next != NULL) {
        if ((++steps & 0xfff) == 0 && now_seconds() > b->deadline) {
            rv = LIN_UNDECIDED;
            goto out;
        }
        if (e != NULL && e->call) {
            const struct mop *o = &ops[sel[e->op]];
            uint32_t next_value = o->write ? o->value : value, undo;
            int added;
            if (!o->write && o->value != value) {
                e = e->next;
                continue;
            }
            if (set_add(&s, rank[e->op], &undo) != 0) {
                goto out;
            }
            if ((added = memo_add(&s, next_value)) < 0) {
                goto out;
            }
            if (added == 0) {
                set_remove(&s, rank[e->op], undo);
                e = e->next;
                continue;
            }
            if (++b->states > b->max_states) {
                rv = LIN_UNDECIDED;
                goto out;
            }
            stack[sp++] = (struct frame){e->op, value, undo};
            value = next_value;
            ev_unlink(&evs[2 * e->op]);
            ev_unlink(&evs[2 * e->op + 1]);
            e = head.next;
        } else {
            /* An operation completed before anything could be linearized
             * for it: undo the last choice and try the next one. */
            struct frame f;
            if (sp == 0) {
                rv = LIN_VIOLATION;
                goto out;
            }
            f = stack[--sp];
            set_remove(&s, rank[f.op], f.absorbed);
            value = f.value;
            ev_relink(&evs[2 * f.op + 1]);
            ev_relink(&evs[2 * f.op]);
            e = evs[2 * f.op].next;
        }
    }
    rv = LIN_LINEARIZABLE;
out:
    search_close(&s);
    free(order);
    free(rs);
    free(evs);
    free(rank);
    free(stack);
    return rv;
}

/* ------------------------------------------------------------------------
 * Shrinking a violation to a small witness
 *
 * A subset of the model that holds, with every read, the write of the
 * value it read is a history of its own; if it has no linearization,
 * neither has the whole (restricting a linearization of the whole to the
 * subset keeps each read right after its write, with no write between).
 * With a write of unknown outcome goes the read that gave it its
 * completion, so that the subset's model is the model's subset.
 * --------------------------------------------------------------------- */

struct shrink {
    const struct model *m;
    size_t *by_complete; /* model ops sorted by completion */
    bool *in;            /* membership of the candidate */
    bool *keep;          /* the candidate before a removal */
    size_t *sel;
    struct budget *b;
};

static int check_marked(struct shrink *sh)
{
    size_t n = 0, i;
    for (i = 0; i < sh->m->n; i++) {
        if (sh->in[i]) {
            sh->sel[n++] = i;
        }
    }
    return search_run(sh->m->ops, sh->sel, n, sh->b);
}

/* Mark op o and what must go with it. */
static void mark(struct shrink *sh, size_t o)
{
    const struct model *m = sh->m;
    sh->in[o] = true;
    if (m->writer[o] != SIZE_MAX) {
        o = m->writer[o];
        sh->in[o] = true;
    }
    if (m->anchor[o] != SIZE_MAX) {
        sh->in[m->anchor[o]] = true;
    }
}

/* Mark ops by_complete[from..to) and what goes with them; check them. */
static int check_range(struct shrink *sh, size_t from, size_t to)
{
    size_t i;
    memset(sh->in, 0, sh->m->n * sizeof *sh->in);
    for (i = from; i < to; i++) {
        mark(sh, sh->by_complete[i]);
    }
    return check_marked(sh);
}

static int cmp_by_complete(const void *a, const void *b, void *ctx)
{
    const struct mop *ops = ctx;
    const struct mop *x = &ops[*(const size_t *)a];
    const struct mop *y = &ops[*(const size_t *)b];
    if (x->complete != y->complete) {
        return x->complete < y->complete ? -1 : 1;
    }
    return x->invoke < y->invoke ? -1 : x->invoke > y->invoke;
}

/* Fill r->witness from the model m, known not linearizable. */
static int shrink_run(const struct model *m,
                      struct budget *b,
                      struct lin_key_result *r)
{
    struct shrink sh;
    size_t lo, hi, from, to, i, count;
    bool changed;
    int v, rv = -1;

    sh.m = m;
    sh.b = b;
    sh.by_complete = malloc(m->n * sizeof *sh.by_complete);
    sh.in = malloc(m->n * sizeof *sh.in);
    sh.keep = malloc(m->n * sizeof *sh.keep);
    sh.sel = malloc(m->n * sizeof *sh.sel);
    if (sh.by_complete == NULL || sh.in == NULL || sh.keep == NULL ||
        sh.sel == NULL) {
        goto out;
    }
    for (i = 0; i < m->n; i++) {
        sh.by_complete[i] = i;
    }
    qsort_r(sh.by_complete, m->n, sizeof *sh.by_complete, cmp_by_complete,
            (void *)m->ops);

    /* The shortest failing prefix in completion order, then the shortest
     * failing suffix of it. A check that runs out of budget counts as
     * passing: the range kept always failed. */
    lo = 0;
    hi = m->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((v = check_range(&sh, 0, mid)) < 0) {
            goto out;
        }
        if (v == LIN_VIOLATION) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    to = hi;
    lo = 0;
    hi = to;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((v = check_range(&sh, mid, to)) < 0) {
            goto out;
        }
        if (v == LIN_VIOLATION) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    from = lo;
    if ((v = check_range(&sh, from, to)) < 0) {
        goto out;
    }
    if (v != LIN_VIOLATION) {
        /* Only if the budget ran out in between: keep the whole. */
        memset(sh.in, 1, m->n * sizeof *sh.in);
    }

    /* Then one operation at a time while small: a read alone (unless it
     * gave a write its completion), a write with every read of it. */
    for (count = 0, i = 0; i < m->n; i++) {
        count += sh.in[i];
    }
    changed = count <= 64;
    while (changed) {
        changed = false;
        for (i = 0; i < m->n; i++) {
            size_t j;
            if (!sh.in[i] || (!m->ops[i].write && m->writer[i] != SIZE_MAX &&
                              m->anchor[m->writer[i]] == i)) {
                continue;
            }
            memcpy(sh.keep, sh.in, m->n * sizeof *sh.in);
            sh.in[i] = false;
            for (j = 0; j < m->n && m->ops[i].write; j++) {
                if (m->writer[j] == i) {
                    sh.in[j] = false;
                }
            }
            if ((v = check_marked(&sh)) < 0) {
                goto out;
            }
            if (v == LIN_VIOLATION) {
                changed = true;
            } else {
                memcpy(sh.in, sh.keep, m->n * sizeof *sh.in);
            }
        }
    }

    for (count = 0, i = 0; i < m->n; i++) {
        count += sh.in[i];
    }
    r->witness = malloc((count + 1) * sizeof *r->witness);
    if (r->witness == NULL) {
        goto out;
    }
    r->n_witness = 0;
    /* Model ops are in invocation order already (see lin_check). */
    for (i = 0; i < m->n; i++) {
        if (sh.in[i]) {
            r->witness[r->n_witness++] = m->ops[i].src;
        }
    }
    rv = 0;
out:
    free(sh.by_complete);
    free(sh.in);
    free(sh.keep);
    free(sh.sel);
    return rv;
}

/* ------------------------------------------------------------------------
 * Per key
 * --------------------------------------------------------------------- */

static int cmp_by_key(const void *a, const void *b, void *ctx)
{
    const struct lin_history *h = ctx;
    const struct lin_op *x = &h->ops[*(const size_t *)a];
    const struct lin_op *y = &h->ops[*(const size_t *)b];
    int c = strcmp(x->key, y->key);
    if (c != 0) {
        return c;
    }
    if (x->invoke_ns != y->invoke_ns) {
        return x->invoke_ns < y->invoke_ns ? -1 : 1;
    }
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int check_key(const struct lin_history *h,
                     const size_t *idx,
                     size_t n,
                     const struct lin_limits *limits,
                     struct lin_key_result *r,
                     char *err,
                     size_t err_size)
{
    struct model m;
    struct budget b;
    double t0 = now_seconds();
    size_t *all;
    size_t i;
    int v;

    r->key = h->ops[idx[0]].key;
    r->n_ops = n;
    if (model_build(h, idx, n, &m, err, err_size) != 0) {
        return -1;
    }
    r->n_model = m.n;
    if ((all = malloc((m.n + 1) * sizeof *all)) == NULL) {
        model_close(&m);
        set_err(err, err_size, "out of memory");
        return -1;
    }
    for (i = 0; i < m.n; i++) {
        all[i] = i;
    }
    b.deadline = t0 + limits->max_seconds;
    b.max_states = limits->max_states;
    b.states = 0;
    v = search_run(m.ops, all, m.n, &b);
    r->states = b.states;
    if (v == LIN_VIOLATION) {
        /* As long again, and as many states again, to shrink it. */
        b.deadline = now_seconds() + limits->max_seconds;
        b.max_states = b.states + limits->max_states;
        if (shrink_run(&m, &b, r) != 0) {
            v = -1;
        }
    }
    free(all);
    model_close(&m);
    if (v < 0) {
        set_err(err, err_size, "out of memory checking key %s", r->key);
        return -1;
    }
    r->verdict = (enum lin_verdict)v;
    r->seconds = now_seconds() - t0;
    return 0;
}

int lin_check(const struct lin_history *h,
              const struct lin_limits *limits,
              struct lin_result *r,
              char *err,
              size_t err_size)
{
    size_t *idx, i, start, n_keys = 0;

    memset(r, 0, sizeof *r);
    if ((idx = malloc((h->n_ops + 1) * sizeof *idx)) == NULL) {
        set_err(err, err_size, "out of memory");
        return -1;
    }
    for (i = 0; i < h->n_ops; i++) {
        idx[i] = i;
    }
    qsort_r(idx, h->n_ops, sizeof *idx, cmp_by_key, (void *)h);
    for (i = 0; i < h->n_ops; i++) {
        if (i == 0 || strcmp(h->ops[idx[i - 1]].key, h->ops[idx[i]].key)) {
            n_keys++;
        }
    }
    r->keys = calloc(n_keys + 1, sizeof *r->keys);
    if (r->keys == NULL) {
        free(idx);
        set_err(err, err_size, "out of memory");
        return -1;
    }
    for (start = 0; start < h->n_ops; start = i) {
        struct lin_key_result *k = &r->keys[r->n_keys];
        for (i = start + 1; i < h->n_ops && strcmp(h->ops[idx[start]].key,
                                                   h->ops[idx[i]].key) == 0;
             i++) {
        }
        if (check_key(h, idx + start, i - start, limits, k, err, err_size) !=
            0) {
            free(idx);
            lin_result_close(r);
            return -1;
        }
        r->n_keys++;
        if (k->verdict == LIN_VIOLATION ||
            (k->verdict == LIN_UNDECIDED && r->verdict != LIN_VIOLATION)) {
            r->verdict = k->verdict;
        }
    }
    free(idx);
    return 0;
}

void lin_result_close(struct lin_result *r)
{
    size_t i;
    for (i = 0; i < r->n_keys; i++) {
        free(r->keys[i].witness);
    }
    free(r->keys);
    memset(r, 0, sizeof *r);
}
