/* Tests for name lists: lookups by name and by position, the end of a list, the empty list
 * and NULL. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "drover/namelist.h"

static const char schemes[] = "tcp://\0"
                              "mqtt://\0"
                              "ssl://\0";

static void test_index(void **state)
{
    (void)state;
    assert_int_equal(drv_namelist_index(schemes, "tcp://"), 0);
    assert_int_equal(drv_namelist_index(schemes, "ssl://"), 2);
    assert_int_equal(drv_namelist_index(schemes, "mqtts://"), -1);
    assert_int_equal(drv_namelist_index(schemes, "tcp:/"), -1); /* a prefix is not a name */
    assert_int_equal(drv_namelist_index(schemes, ""), -1);      /* the end is not a name */
    assert_int_equal(drv_namelist_index("", "tcp://"), -1);
    assert_int_equal(drv_namelist_index(NULL, "tcp://"), -1);
    assert_int_equal(drv_namelist_index(schemes, NULL), -1);
    assert_true(drv_namelist_has(schemes, "mqtt://"));
    assert_false(drv_namelist_has(schemes, "MQTT://"));
    assert_false(drv_namelist_has(NULL, "x"));
}

static void test_at_and_next(void **state)
{
    (void)state;
    assert_string_equal(drv_namelist_at(schemes, 0), "tcp://");
    assert_string_equal(drv_namelist_at(schemes, 2), "ssl://");
    assert_null(drv_namelist_at(schemes, 3));
    assert_null(drv_namelist_at(schemes, 1000));
    assert_null(drv_namelist_at("", 0));
    assert_null(drv_namelist_at(NULL, 0));
    const char *walked[4] = {0};
    size_t n = 0;
    for (const char *s = schemes; s && n < 4; s = drv_namelist_next(s))
        walked[n++] = s;
    assert_int_equal(n, 3);
    assert_string_equal(walked[1], "mqtt://");
    assert_null(drv_namelist_next(walked[2]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_at_and_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
