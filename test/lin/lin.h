/* lin.h: the linearizability checker of test/lin/lincheck.c as a small
 * library, so that test/unit/test_lincheck.c can drive it directly.
 *
 * A history is a list of operations on registers named by keys: puts of
 * unique values and gets, each with its invocation and completion times
 * and an outcome. The checker partitions the history by key, models each
 * key as a register that starts absent, and searches for a linearization
 * (Wing & Gong's search, with Lowe's memoization of visited configurations).
 *
 * Outcomes: an ok operation took effect once between its invocation and its
 * completion; a failed put never took effect; a put of unknown outcome
 * (info) took effect once at some point after its invocation, or never.
 * Gets that did not answer are dropped: a read changes nothing. */
#ifndef JACO_TEST_LIN_H
#define JACO_TEST_LIN_H

#include <stddef.h>
#include <stdint.h>

enum lin_kind { LIN_PUT, LIN_GET };
enum lin_outcome { LIN_OK, LIN_FAIL, LIN_INFO };

/* History file, one operation a line ('#' starts a comment line):
 *
 *   <client> <put|get> <key> <value> <invoke_ns> <complete_ns> <ok|fail|info>
 *   [<anything>]
 *
 * value: a put's value; a get's answer, "nil" for an absent key, "?" if the
 * get did not answer. complete_ns of an info operation is when the client
 * gave up; the checker ignores it. The rest of the line is kept for the
 * report (kvhist writes the server and the index or the error there). */
struct lin_op {
    unsigned client;
    enum lin_kind kind;
    enum lin_outcome outcome;
    const char *key;   /* into the history's text */
    const char *value; /* NULL: a get of an absent key, or unanswered */
    const char *rest;  /* "" if nothing */
    uint64_t invoke_ns, complete_ns;
    unsigned line;
};

struct lin_history {
    struct lin_op *ops;
    size_t n_ops;
    char *text; /* owned copy of the parsed text, which the ops point into */
};

/* Parse text (len bytes, copied). Returns 0, or -1 with a message naming
 * the line in err; on failure h is left empty. */
int lin_history_parse(struct lin_history *h,
                      const char *text,
                      size_t len,
                      char *err,
                      size_t err_size);
void lin_history_close(struct lin_history *h);

enum lin_verdict {
    LIN_LINEARIZABLE = 0,
    LIN_VIOLATION = 1,
    LIN_UNDECIDED = 2, /* the search ran out of its budget */
};

/* The search budget, per key. */
struct lin_limits {
    double max_seconds;
    uint64_t max_states; /* memoized configurations */
};

struct lin_key_result {
    const char *key;
    size_t n_ops;   /* operations on the key in the history */
    size_t n_model; /* of which the search had to order */
    enum lin_verdict verdict;
    uint64_t states; /* configurations memoized by the search */
    double seconds;
    /* On a violation: a smallest subset of the key's operations found that
     * is not linearizable on its own (and, closed under "the put of every
     * value read", proves the whole history is not), as indexes into
     * h->ops sorted by invocation. */
    size_t *witness;
    size_t n_witness;
};

struct lin_result {
    enum lin_verdict verdict; /* the worst over the keys */
    struct lin_key_result *keys;
    size_t n_keys;
};

/* Check every key of h. Returns 0 with r filled (free it with
 * lin_result_close), or -1 with a message in err (out of memory, or a key
 * whose puts repeat a value: values must be unique per key). */
int lin_check(const struct lin_history *h,
              const struct lin_limits *limits,
              struct lin_result *r,
              char *err,
              size_t err_size);
void lin_result_close(struct lin_result *r);

#endif
