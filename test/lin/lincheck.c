/* lincheck.c: checks that a history recorded by kvhist (or written by hand)
 * is linearizable for a key-value store, key by key; see lin.h.
 *
 * usage: lincheck [--max-seconds S] [--max-states N] [--verbose] HISTORY
 *
 * The budget is per key: 60 s and 2,000,000 memoized configurations (about
 * 100 to 300 bytes each, more with more clients) by default; a history of
 * a few clients needs about one configuration per operation.
 *
 * Exit status: 0 linearizable (prints OK and counts), 1 not linearizable
 * (prints the key and a small non-linearizable subset of its operations),
 * 2 undecided (a key's search ran out of its budget; says which), 3 usage
 * or an unreadable history. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lin.h"

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL) {
        return NULL;
    }
    for (;;) {
        size_t k;
        if (cap - n < 65536) {
            char *grown;
            cap = cap == 0 ? 1 << 20 : cap * 2;
            if ((grown = realloc(buf, cap)) == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = grown;
        }
        k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) {
            break;
        }
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        fclose(f);
        errno = e;
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static const char *outcome_name(enum lin_outcome o)
{
    return o == LIN_OK ? "ok" : o == LIN_FAIL ? "fail" : "info";
}

/* Why a read in the witness could never be satisfied, if that is why. */
static void explain_read(const struct lin_history *h, const struct lin_op *r)
{
    size_t i;
    const struct lin_op *put = NULL;
    if (r->kind != LIN_GET || r->value == NULL) {
        return;
    }
    for (i = 0; i < h->n_ops; i++) {
        const struct lin_op *o = &h->ops[i];
        if (o->kind == LIN_PUT && strcmp(o->key, r->key) == 0 &&
            strcmp(o->value, r->value) == 0) {
            put = o;
            break;
        }
    }
    if (put == NULL) {
        printf("  line %u read %s, a value no put of key %s wrote\n", r->line,
               r->value, r->key);
    } else if (put->outcome == LIN_FAIL) {
        printf(
            "  line %u read %s, written only by the put of line %u, "
            "which failed (%s)\n",
            r->line, r->value, put->line, put->rest);
    } else if (r->complete_ns < put->invoke_ns) {
        printf("  line %u read %s before the put of line %u was invoked\n",
               r->line, r->value, put->line);
    }
}

static void print_witness(const struct lin_history *h,
                          const struct lin_key_result *k)
{
    uint64_t t0 = UINT64_MAX;
    size_t i;
    for (i = 0; i < k->n_witness; i++) {
        const struct lin_op *o = &h->ops[k->witness[i]];
        if (o->invoke_ns < t0) {
            t0 = o->invoke_ns;
        }
    }
    printf(
        "a non-linearizable subset of %zu of its %zu operations "
        "(times in ms after the first invocation shown):\n",
        k->n_witness, k->n_ops);
    printf("  %6s %6s %-4s %-16s %10s %10s %-7s %s\n", "line", "client", "op",
           "value", "invoke", "complete", "outcome", "detail");
    for (i = 0; i < k->n_witness; i++) {
        const struct lin_op *o = &h->ops[k->witness[i]];
        char complete[32];
        if (o->outcome == LIN_INFO) {
            snprintf(complete, sizeof complete, "?");
        } else {
            snprintf(complete, sizeof complete, "%.3f",
                     (double)(o->complete_ns - t0) / 1e6);
        }
        printf("  %6u %6u %-4s %-16s %10.3f %10s %-7s %s\n", o->line, o->client,
               o->kind == LIN_PUT ? "put" : "get",
               o->value != NULL ? o->value : "nil",
               (double)(o->invoke_ns - t0) / 1e6, complete,
               outcome_name(o->outcome), o->rest);
    }
    for (i = 0; i < k->n_witness; i++) {
        explain_read(h, &h->ops[k->witness[i]]);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: lincheck [--max-seconds S] [--max-states N] [--verbose] "
            "HISTORY\n");
    exit(3);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"max-seconds", required_argument, NULL, 't'},
        {"max-states", required_argument, NULL, 's'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct lin_limits limits = {60.0, 2000000};
    struct lin_history h;
    struct lin_result r;
    const struct lin_key_result *worst = NULL;
    size_t len = 0, i, n_put[3] = {0}, n_get[3] = {0}, model = 0, bad = 0;
    size_t largest = 0;
    uint64_t states = 0;
    double seconds = 0, slowest = 0;
    char err[512], *text;
    int opt, verbose = 0;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (opt) {
            case 't':
                limits.max_seconds = strtod(optarg, &end);
                if (*end != '\0' || limits.max_seconds <= 0) {
                    usage();
                }
                break;
            case 's':
                limits.max_states = strtoull(optarg, &end, 10);
                if (*end != '\0' || limits.max_states == 0) {
                    usage();
                }
                break;
            case 'v': verbose = 1; break;
            default: usage();
        }
    }
    if (optind != argc - 1) {
        usage();
    }
    if ((text = read_all(argv[optind], &len)) == NULL) {
        fprintf(stderr, "lincheck: %s: %s\n", argv[optind], strerror(errno));
        return 3;
    }
    if (lin_history_parse(&h, text, len, err, sizeof err) != 0) {
        fprintf(stderr, "lincheck: %s: %s\n", argv[optind], err);
        free(text);
        return 3;
    }
    free(text);
    if (lin_check(&h, &limits, &r, err, sizeof err) != 0) {
        fprintf(stderr, "lincheck: %s: %s\n", argv[optind], err);
        lin_history_close(&h);
        return 3;
    }
    for (i = 0; i < h.n_ops; i++) {
        const struct lin_op *o = &h.ops[i];
        (o->kind == LIN_PUT ? n_put : n_get)[o->outcome]++;
    }
    for (i = 0; i < r.n_keys; i++) {
        const struct lin_key_result *k = &r.keys[i];
        model += k->n_model;
        states += k->states;
        seconds += k->seconds;
        if (k->n_ops > largest) {
            largest = k->n_ops;
        }
        if (k->seconds > slowest) {
            slowest = k->seconds;
        }
        if (verbose) {
            printf("key %s: %zu operations, %zu ordered, %" PRIu64
                   " states, %.3f s: %s\n",
                   k->key, k->n_ops, k->n_model, k->states, k->seconds,
                   k->verdict == LIN_LINEARIZABLE ? "linearizable"
                   : k->verdict == LIN_VIOLATION  ? "NOT linearizable"
                                                  : "undecided");
        }
        if (k->verdict == r.verdict && k->verdict != LIN_LINEARIZABLE) {
            bad++;
            /* Report the violation with the smallest witness. */
            if (worst == NULL || k->n_witness < worst->n_witness) {
                worst = k;
            }
        }
    }
    printf(
        "%zu keys, %zu operations (put: %zu ok, %zu failed, %zu unknown; "
        "get: %zu ok, %zu unanswered), %zu ordered by the search; %" PRIu64
        " states, %.2f s (slowest key %.2f s, largest %zu operations)\n",
        r.n_keys, h.n_ops, n_put[LIN_OK], n_put[LIN_FAIL], n_put[LIN_INFO],
        n_get[LIN_OK], n_get[LIN_FAIL] + n_get[LIN_INFO], model, states,
        seconds, slowest, largest);
    if (r.verdict == LIN_LINEARIZABLE) {
        printf("OK: linearizable\n");
    } else if (r.verdict == LIN_VIOLATION) {
        printf("NOT LINEARIZABLE: key %s", worst->key);
        if (bad > 1) {
            printf(" (and %zu other key%s:", bad - 1, bad > 2 ? "s" : "");
            for (i = 0; i < r.n_keys; i++) {
                if (&r.keys[i] != worst && r.keys[i].verdict == LIN_VIOLATION) {
                    printf(" %s", r.keys[i].key);
                }
            }
            printf(")");
        }
        printf("\n");
        print_witness(&h, worst);
    } else {
        printf(
            "UNDECIDED: the search gave up on %zu key%s (budget %.0f s, "
            "%" PRIu64 " states per key); the history is too large:",
            bad, bad > 1 ? "s" : "", limits.max_seconds, limits.max_states);
        for (i = 0; i < r.n_keys; i++) {
            if (r.keys[i].verdict == LIN_UNDECIDED) {
                printf(" %s (%zu operations)", r.keys[i].key, r.keys[i].n_ops);
            }
        }
        printf("\n");
    }
    opt = (int)r.verdict;
    lin_result_close(&r);
    lin_history_close(&h);
    return opt;
}
