/* test_kvstore_store.c: the example kvstore's compact map (store.c),
 * against a plain array of the same keys, through overwrites of every
 * size, deletes, bucket growth, compactions and a clear. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../examples/kvstore/store.h"
#include "suites.h"

#define KEYS 3000

struct model {
    bool present;
    size_t vlen;
    char value[300];
};

static struct model model[KEYS];
static struct store s;

static size_t key_of(unsigned i, char *key)
{
    return (size_t)snprintf(key, 32, "key-%u", i);
}

static void check_all(void)
{
    char key[32];
    unsigned i;
    size_t n = 0;
    for (i = 0; i < KEYS; i++) {
        const char *v;
        size_t vlen, klen = key_of(i, key);
        bool found = store_get(&s, key, klen, &v, &vlen);
        ck_assert_int_eq(found, model[i].present);
        if (found) {
            ck_assert_uint_eq(vlen, model[i].vlen);
            ck_assert(memcmp(v, model[i].value, vlen) == 0);
            n++;
        }
    }
    ck_assert_uint_eq(s.count, n);
}

static int count_cb(void *arg,
                    const char *key,
                    size_t klen,
                    const char *value,
                    size_t vlen)
{
    unsigned i;
    (void)value;
    (void)vlen;
    ck_assert(klen > 4 && memcmp(key, "key-", 4) == 0);
    i = (unsigned)strtoul(key + 4, NULL, 10);
    ck_assert(i < KEYS && model[i].present);
    (*(size_t *)arg)++;
    return 0;
}

START_TEST(the_store_agrees_with_a_plain_array)
{
    char key[32];
    unsigned round, i;
    uint64_t compactions = 0, before;
    size_t seen = 0;
    srand(7);
    memset(model, 0, sizeof model);
    ck_assert_int_eq(store_init(&s), 0);
    for (round = 0; round < 60000; round++) {
        size_t klen;
        i = (unsigned)rand() % KEYS;
        klen = key_of(i, key);
        before = s.dead;
        if (rand() % 4 == 0) {
            ck_assert_int_eq(store_del(&s, key, klen), model[i].present);
            model[i].present = false;
        } else {
            size_t vlen = (size_t)rand() % sizeof model[i].value, k;
            for (k = 0; k < vlen; k++) {
                model[i].value[k] = (char)('a' + (round + k) % 26);
            }
            model[i].vlen = vlen;
            model[i].present = true;
            ck_assert_int_eq(store_put(&s, key, klen, model[i].value, vlen), 0);
        }
        if (s.dead < before) {
            compactions++;
        }
        if (round % 5000 == 0) {
            check_all();
        }
    }
    check_all();
    /* The run overwrites and deletes enough to compact, and the map grew
     * its buckets past the first 1024. */
    ck_assert_uint_gt(compactions, 0);
    ck_assert_uint_gt(s.n_buckets, 1024);
    ck_assert_int_eq(store_each(&s, count_cb, &seen), 0);
    ck_assert_uint_eq(seen, s.count);
    store_clear(&s);
    memset(model, 0, sizeof model);
    check_all();
    ck_assert_int_eq(store_put(&s, "k", 1, "v", 1), 0);
    ck_assert_uint_eq(s.count, 1);
    store_free(&s);
}
END_TEST

START_TEST(a_record_costs_its_bytes_and_a_small_header)
{
    /* 1000 keys of 7 bytes with values of 100: 13 + 107 = 120 bytes a
     * record, against 160 for a malloc'd entry with a 32-byte header. */
    char key[32], value[100];
    unsigned i;
    memset(value, 'x', sizeof value);
    ck_assert_int_eq(store_init(&s), 0);
    for (i = 0; i < 1000; i++) {
        size_t klen = (size_t)snprintf(key, sizeof key, "k%06u", i);
        ck_assert_int_eq(store_put(&s, key, klen, value, sizeof value), 0);
    }
    ck_assert_uint_eq(s.used, 1000 * 120);
    ck_assert_uint_eq(s.dead, 0);
    /* Same padded size: overwritten in place, no dead space. */
    value[0] = 'y';
    ck_assert_int_eq(store_put(&s, "k000001", 7, value, 99), 0);
    ck_assert_uint_eq(s.dead, 0);
    ck_assert_uint_eq(s.used, 1000 * 120);
    store_free(&s);
}
END_TEST

START_TEST(the_store_refuses_keys_it_cannot_hold)
{
    char big[300];
    memset(big, 'k', sizeof big);
    ck_assert_int_eq(store_init(&s), 0);
    ck_assert_int_eq(store_put(&s, big, 0, "v", 1), -1);
    ck_assert_int_eq(store_put(&s, big, 256, "v", 1), -1);
    ck_assert_uint_eq(s.count, 0);
    ck_assert_int_eq(store_put(&s, big, 255, "v", 1), 0);
    ck_assert_uint_eq(s.count, 1);
    store_free(&s);
}
END_TEST

Suite *kvstore_store_suite(void)
{
    Suite *su = suite_create("kvstore_store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, the_store_agrees_with_a_plain_array);
    tcase_add_test(tc, a_record_costs_its_bytes_and_a_small_header);
    tcase_add_test(tc, the_store_refuses_keys_it_cannot_hold);
    suite_add_tcase(su, tc);
    return su;
}
