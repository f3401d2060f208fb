/* test_datadir.c: placeholder replaced below. */
#include "suites.h"
Suite *datadir_suite(void)
{
    return suite_create("datadir");
}
