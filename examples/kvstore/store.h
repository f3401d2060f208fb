/* store.h: kvstore's map from keys (1-255 bytes) to values, kept compact:
 * the records in one arena, chained by 32-bit record numbers. Not locked:
 * the caller holds `lock` as its comments say. */
#ifndef KV_STORE_H
#define KV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct store {
    uv_rwlock_t lock;
    unsigned char *arena; /* records, each 8-byte aligned */
    uint64_t used, cap;   /* bytes of the arena in use, allocated */
    uint64_t dead;        /* bytes of overwritten and deleted records */
    uint32_t *buckets;    /* record number + 1 of each chain's head, or 0 */
    size_t n_buckets;
    size_t count;
};

int store_init(struct store *s);
void store_free(struct store *s);
/* Empty the map (a snapshot restore). */
void store_clear(struct store *s);

/* Write lock held. Return 0, or -1 if out of memory (nothing changed). */
int store_put(struct store *s,
              const char *key,
              size_t klen,
              const char *value,
              size_t vlen);
/* Write lock held. Whether the key was there. */
bool store_del(struct store *s, const char *key, size_t klen);

/* Read lock held: the value stays valid until it is released. */
bool store_get(const struct store *s,
               const char *key,
               size_t klen,
               const char **value,
               size_t *vlen);

/* Read lock held: cb on every key, in no particular order, until it
 * returns non-zero, which store_each returns. */
int store_each(const struct store *s,
               int (*cb)(void *arg,
                         const char *key,
                         size_t klen,
                         const char *value,
                         size_t vlen),
               void *arg);

#endif
