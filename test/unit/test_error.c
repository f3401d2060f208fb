/* test_error.c: the error table and its lookups. */
#include <string.h>

#include "jacoraft.h"
#include "suites.h"

START_TEST(every_code_has_name_text_and_slug)
{
#define CHECK_ROW(name, value, text)             \
    ck_assert_str_eq(jr_err_name(value), #name); \
    ck_assert_str_eq(jr_strerror(value), text);  \
    ck_assert_str_ne(jr_err_slug(value), "unknown_error");
    JR_ERRORS(CHECK_ROW)
#undef CHECK_ROW
}
END_TEST

START_TEST(operator_codes_are_distinct_and_stable)
{
    ck_assert_int_eq(JR_ENOLEADER, -3);
    ck_assert_int_eq(JR_EQUORUMLOST, -4);
    ck_assert_str_eq(jr_err_slug(JR_ENOLEADER), "no_leader");
    ck_assert_str_eq(jr_err_slug(JR_EQUORUMLOST), "quorum_lost");
    ck_assert_str_ne(jr_strerror(JR_ENOLEADER), jr_strerror(JR_EQUORUMLOST));
}
END_TEST

START_TEST(unknown_code_is_never_null)
{
    ck_assert_str_eq(jr_strerror(-9999), "unknown error");
    ck_assert_str_eq(jr_err_name(12345), "JR_EUNKNOWN");
    ck_assert_str_eq(jr_err_slug(-9999), "unknown_error");
    ck_assert_str_eq(jr_strerror(0), "success");
}
END_TEST

Suite *error_suite(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, every_code_has_name_text_and_slug);
    tcase_add_test(tc, operator_codes_are_distinct_and_stable);
    tcase_add_test(tc, unknown_code_is_never_null);
    suite_add_tcase(s, tc);
    return s;
}
