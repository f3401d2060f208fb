/* store.c: kvstore's map (store.h).
 *
 * Each key is a record in one arena: a 13-byte header (the next record of
 * its chain, the key's hash, the value's length, the key's length), the
 * key and the value, padded to 8 bytes; a record's number is its offset / 8
 * plus one (0 ends a chain). A malloc'd entry per key with a 32-byte header
 * cost 160 bytes for a 7-byte key and a 100-byte value (malloc's own header
 * and 16-byte rounding on top); a record costs 120, and its bucket 4.
 * Overwritten and deleted records are dead space until the arena is copied
 * without them, once they are most of it. The arena grows by realloc,
 * which glibc serves with mremap for a block that large: no copy, and the
 * part not yet written takes no memory. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#define HDR 13
#define ARENA_MIN ((uint64_t)1 << 20)
#define BUCKETS_MIN 1024

static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

static uint64_t rec_size(size_t klen, size_t vlen)
{
    return (HDR + klen + vlen + 7) & ~(uint64_t)7;
}

static unsigned char *rec(const struct store *s, uint32_t no)
{
    return s->arena + (uint64_t)(no - 1) * 8;
}

static uint64_t size_of(const unsigned char *r)
{
    return rec_size(r[12], get32(r + 8));
}

static uint32_t hash_of(const char *p, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    size_t i;
    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    }
    return (uint32_t)(h ^ (h >> 32));
}

/* The link (a bucket, or a record's next field) that holds the key's
 * record, or the 0 that ends its chain. */
static unsigned char *find(const struct store *s,
                           const char *key,
                           size_t klen,
                           uint32_t h)
{
    unsigned char *link = (unsigned char *)&s->buckets[h & (s->n_buckets - 1)];
    uint32_t no;
    while ((no = get32(link)) != 0) {
        unsigned char *r = rec(s, no);
        if (get32(r + 4) == h && r[12] == klen &&
            memcmp(r + HDR, key, klen) == 0) {
            return link;
        }
        link = r; /* its next field */
    }
    return link;
}

int store_init(struct store *s)
{
    memset(s, 0, sizeof *s);
    s->n_buckets = BUCKETS_MIN;
    s->buckets = calloc(s->n_buckets, sizeof *s->buckets);
    if (s->buckets == NULL) {
        return -1;
    }
    if (uv_rwlock_init(&s->lock) != 0) {
        free(s->buckets);
        return -1;
    }
    return 0;
}

void store_free(struct store *s)
{
    free(s->arena);
    free(s->buckets);
    uv_rwlock_destroy(&s->lock);
}

void store_clear(struct store *s)
{
    free(s->arena);
    s->arena = NULL;
    s->used = s->cap = s->dead = 0;
    memset(s->buckets, 0, s->n_buckets * sizeof *s->buckets);
    s->count = 0;
}

/* Room for need more bytes; record numbers must fit in 32 bits. */
static int reserve(struct store *s, uint64_t need)
{
    uint64_t cap = s->cap > 0 ? s->cap : ARENA_MIN;
    unsigned char *a;
    if (s->used + need <= s->cap) {
        return 0;
    }
    while (cap < s->used + need) {
        cap *= 2;
    }
    if ((s->used + need) / 8 >= UINT32_MAX) {
        return -1;
    }
    if ((a = realloc(s->arena, cap)) == NULL) {
        return -1;
    }
    s->arena = a;
    s->cap = cap;
    return 0;
}

/* Twice the buckets; on failure the chains just get longer. */
static void grow_buckets(struct store *s)
{
    size_t n = s->n_buckets * 2, i;
    uint32_t *b = calloc(n, sizeof *b);
    if (b == NULL) {
        return;
    }
    for (i = 0; i < s->n_buckets; i++) {
        uint32_t no = s->buckets[i];
        while (no != 0) {
            unsigned char *r = rec(s, no);
            uint32_t next = get32(r);
            uint32_t *head = &b[get32(r + 4) & (n - 1)];
            put32(r, *head);
            *head = no;
            no = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->n_buckets = n;
}

/* Copy the live records to a new arena once most of the old one is dead
 * (at least ARENA_MIN of it). On failure the dead space just stays. */
static void maybe_compact(struct store *s)
{
    uint64_t live = s->used - s->dead, cap = ARENA_MIN, used = 0;
    unsigned char *a;
    size_t i;
    if (s->dead < ARENA_MIN || s->dead <= s->used / 2) {
        return;
    }
    while (cap < live) {
        cap *= 2;
    }
    if ((a = malloc(cap)) == NULL) {
        return;
    }
    for (i = 0; i < s->n_buckets; i++) {
        unsigned char *tail = (unsigned char *)&s->buckets[i];
        uint32_t no = s->buckets[i];
        while (no != 0) {
            const unsigned char *r = rec(s, no);
            uint64_t size = size_of(r);
            no = get32(r);
            memcpy(a + used, r, size);
            put32(tail, (uint32_t)(used / 8 + 1));
            tail = a + used;
            used += size;
        }
        put32(tail, 0);
    }
    free(s->arena);
    s->arena = a;
    s->used = used;
    s->cap = cap;
    s->dead = 0;
}

int store_put(struct store *s,
              const char *key,
              size_t klen,
              const char *value,
              size_t vlen)
{
    uint32_t h = hash_of(key, klen), old, no;
    uint64_t size = rec_size(klen, vlen);
    unsigned char *link, *r;
    if (klen == 0 || klen > UINT8_MAX || vlen > UINT32_MAX) {
        return -1;
    }
    old = get32(find(s, key, klen, h));
    if (old != 0 && size_of(rec(s, old)) == size) {
        /* A value of the same padded size: in place. */
        r = rec(s, old);
        put32(r + 8, (uint32_t)vlen);
        memcpy(r + HDR + klen, value, vlen);
        return 0;
    }
    if (reserve(s, size) != 0) {
        return -1;
    }
    link = find(s, key, klen, h); /* the arena may have moved */
    no = (uint32_t)(s->used / 8 + 1);
    r = s->arena + s->used;
    s->used += size;
    put32(r, 0);
    put32(r + 4, h);
    put32(r + 8, (uint32_t)vlen);
    r[12] = (unsigned char)klen;
    memcpy(r + HDR, key, klen);
    memcpy(r + HDR + klen, value, vlen);
    memset(r + HDR + klen + vlen, 0, size - (HDR + klen + vlen));
    if (old != 0) {
        /* The new record takes the old one's place in its chain. */
        unsigned char *o = rec(s, old);
        put32(r, get32(o));
        s->dead += size_of(o);
    } else {
        s->count++;
    }
    put32(link, no);
    if (old == 0 && s->count > s->n_buckets) {
        grow_buckets(s);
    }
    maybe_compact(s);
    return 0;
}

bool store_del(struct store *s, const char *key, size_t klen)
{
    unsigned char *link = find(s, key, klen, hash_of(key, klen)), *r;
    uint32_t no = get32(link);
    if (no == 0) {
        return false;
    }
    r = rec(s, no);
    put32(link, get32(r));
    s->dead += size_of(r);
    s->count--;
    maybe_compact(s);
    return true;
}

bool store_get(const struct store *s,
               const char *key,
               size_t klen,
               const char **value,
               size_t *vlen)
{
    uint32_t no = get32(find(s, key, klen, hash_of(key, klen)));
    const unsigned char *r;
    if (no == 0) {
        return false;
    }
    r = rec(s, no);
    *value = (const char *)r + HDR + klen;
    *vlen = get32(r + 8);
    return true;
}

int store_each(const struct store *s,
               int (*cb)(void *arg,
                         const char *key,
                         size_t klen,
                         const char *value,
                         size_t vlen),
               void *arg)
{
    size_t i;
    int rv = 0;
    for (i = 0; i < s->n_buckets && rv == 0; i++) {
        uint32_t no = s->buckets[i];
        while (no != 0 && rv == 0) {
            const unsigned char *r = rec(s, no);
            const char *k = (const char *)r + HDR;
            rv = cb(arg, k, r[12], k + r[12], get32(r + 8));
            no = get32(r);
        }
    }
    return rv;
}
