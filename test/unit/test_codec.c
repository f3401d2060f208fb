/* test_codec.c: placeholder replaced below. */
#include "suites.h"
Suite *codec_suite(void)
{
    return suite_create("codec");
}
