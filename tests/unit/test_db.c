/*
 * test_db.c - the database's pure parts (pxl_db.c): parameters from JSON
 * (kinds, texts kept as written, binary, refusals) and results built as a
 * table, read back by the pxl_db_* accessors and turned into JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "pxl_db_int.h"
#include "pxl_json.h"

/* As a client's message is read: numbers keep their text. */
static struct json_object *parse(const char *text)
{
        struct json_object *o = NULL;

        assert_int_equal(pxl_json_build(text, strlen(text), 64, &o), 0);
        assert_non_null(o);
        return o;
}

static void test_params_kinds(void **state)
{
        struct json_object *a =
                parse("[null, true, false, 42, -9223372036854775808, "
                      "123456789012345678901234567890, 0.10, 1e3, \"it's $1\", "
                      "\"\\u00e9\\u4e2d\", {\"k\":[1,2]}, 1e400]");
        struct pxl_db_param *p;
        size_t n;
        char err[160];

        (void)state;
        assert_int_equal(pxl_db_params(a, &p, &n, err, sizeof(err)), 0);
        assert_int_equal(n, 12);
        assert_int_equal(p[0].kind, PXL_DB_PARAM_NULL);
        assert_null(p[0].text);
        assert_int_equal(p[1].kind, PXL_DB_PARAM_BOOL);
        assert_int_equal(p[1].i, 1);
        assert_string_equal(p[1].text, "true");
        assert_int_equal(p[2].i, 0);
        assert_string_equal(p[2].text, "false");
        assert_int_equal(p[3].kind, PXL_DB_PARAM_INT);
        assert_int_equal(p[3].i, 42);
        assert_string_equal(p[3].text, "42");
        assert_int_equal(p[4].kind, PXL_DB_PARAM_INT);
        assert_true(p[4].i == INT64_MIN);
        /* Past int64: the digits as written, for a numeric column. */
        assert_int_equal(p[5].kind, PXL_DB_PARAM_NUMBER);
        assert_string_equal(p[5].text, "123456789012345678901234567890");
        assert_int_equal(p[6].kind, PXL_DB_PARAM_NUMBER);
        assert_string_equal(p[6].text, "0.10");
        assert_string_equal(p[7].text, "1e3");
        assert_int_equal(p[8].kind, PXL_DB_PARAM_TEXT);
        assert_string_equal(p[8].text, "it's $1");
        assert_int_equal(p[8].len, 7);
        assert_string_equal(p[9].text, "\xc3\xa9\xe4\xb8\xad");
        /* Objects and arrays go as their JSON text (json/jsonb). */
        assert_int_equal(p[10].kind, PXL_DB_PARAM_TEXT);
        assert_string_equal(p[10].text, "{\"k\":[1,2]}");
        /* Beyond a double, still the digits written. */
        assert_int_equal(p[11].kind, PXL_DB_PARAM_NUMBER);
        assert_string_equal(p[11].text, "1e400");
        free(p);
        json_object_put(a);
}

static void test_params_bytes(void **state)
{
        static const unsigned char raw[] = {0, 1, 0xff, 0, 'x'};
        struct json_object *a = json_object_new_array();
        struct pxl_db_param *p;
        size_t n;
        char err[160];

        (void)state;
        json_object_array_add(a, pxl_db_bytes(raw, sizeof(raw)));
        json_object_array_add(a, pxl_db_bytes(NULL, 0));
        assert_int_equal(pxl_db_params(a, &p, &n, err, sizeof(err)), 0);
        assert_int_equal(n, 2);
        assert_int_equal(p[0].kind, PXL_DB_PARAM_BYTES);
        assert_int_equal(p[0].len, sizeof(raw));
        assert_memory_equal(p[0].text, raw, sizeof(raw));
        assert_int_equal(p[1].kind, PXL_DB_PARAM_BYTES);
        assert_int_equal(p[1].len, 0);
        free(p);
        json_object_put(a);
}

static void test_params_refused(void **state)
{
        struct json_object *nul = parse("[1, \"a\\u0000b\"]");
        struct json_object *obj = parse("{\"a\":1}");
        struct json_object *nan = json_object_new_array();
        struct pxl_db_param *p = (void *)1;
        size_t n = 7;
        char err[160];

        (void)state;
        assert_int_equal(pxl_db_params(nul, &p, &n, err, sizeof(err)),
                         PXL_EINVAL);
        assert_null(p);
        assert_int_equal(n, 0);
        assert_non_null(strstr(err, "parameter $2"));
        assert_non_null(strstr(err, "NUL"));
        assert_int_equal(pxl_db_params(obj, &p, &n, err, sizeof(err)),
                         PXL_EINVAL);
        assert_non_null(strstr(err, "array"));
        json_object_array_add(nan, json_object_new_double(0.0 / 0.0));
        assert_int_equal(pxl_db_params(nan, &p, &n, err, sizeof(err)),
                         PXL_EINVAL);
        assert_non_null(strstr(err, "finite"));
        /* No params at all is no parameter. */
        assert_int_equal(pxl_db_params(NULL, &p, &n, err, sizeof(err)), 0);
        assert_null(p);
        assert_int_equal(n, 0);
        json_object_put(nul);
        json_object_put(obj);
        json_object_put(nan);
}

/* A table of two columns, two rows, the way a back end builds one. */
static void build(struct pxl_db_result *r)
{
        memset(r, 0, sizeof(*r));
        assert_int_equal(pxl_db_result_columns(r, 4), 0);
        assert_int_equal(pxl_db_result_put(r, PXL_DB_TEXT, "id", 2), 0);
        assert_int_equal(pxl_db_result_put(r, PXL_DB_TEXT, "price", 5), 0);
        assert_int_equal(pxl_db_result_put(r, PXL_DB_TEXT, "name", 4), 0);
        assert_int_equal(pxl_db_result_put(r, PXL_DB_TEXT, "meta", 4), 0);
        assert_int_equal(pxl_db_rows(r), 0);
        pxl_db_result_put(r, PXL_DB_NUMBER, "1", 1);
        pxl_db_result_put(r, PXL_DB_NUMBER, "12345678901234567890.50", 23);
        pxl_db_result_put(r, PXL_DB_TEXT, "a\"b", 3);
        pxl_db_result_put(r, PXL_DB_JSON, "{\"x\":[true]}", 12);
        assert_int_equal(pxl_db_rows(r), 1);
        pxl_db_result_put(r, PXL_DB_NUMBER, "2", 1);
        pxl_db_result_put(r, PXL_DB_NUMBER, "NaN", 3);
        pxl_db_result_put(r, PXL_DB_TEXT, NULL, 0);
        pxl_db_result_put(r, PXL_DB_BOOL, "t", 1);
        assert_int_equal(pxl_db_rows(r), 2);
}

static void test_result_accessors(void **state)
{
        struct pxl_db_result r;
        size_t len;

        (void)state;
        build(&r);
        assert_null(pxl_db_error(&r));
        assert_string_equal(pxl_db_sqlstate(&r), "");
        assert_int_equal(pxl_db_columns(&r), 4);
        assert_string_equal(pxl_db_column_name(&r, 1), "price");
        assert_null(pxl_db_column_name(&r, 4));
        assert_string_equal(pxl_db_value(&r, 0, 2, &len), "a\"b");
        assert_int_equal(len, 3);
        assert_null(pxl_db_value(&r, 1, 2, &len)); /* SQL NULL */
        assert_int_equal(len, 0);
        assert_null(pxl_db_value(&r, 2, 0, NULL)); /* out of range */
        assert_null(pxl_db_value(&r, 0, 9, NULL));
        pxl_db_result_fini(&r);
}

static void test_result_json(void **state)
{
        struct pxl_db_result r;
        struct json_object *rows;

        (void)state;
        build(&r);
        rows = pxl_db_rows_json(&r);
        assert_non_null(rows);
        /* Numbers keep their digits, NaN is no JSON number, NULL null. */
        assert_string_equal(
                json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN),
                "[{\"id\":1,\"price\":12345678901234567890.50,\"name\":"
                "\"a\\\"b\",\"meta\":{\"x\":[true]}},{\"id\":2,\"price\":"
                "\"NaN\",\"name\":null,\"meta\":true}]");
        json_object_put(rows);
        assert_null(pxl_db_row_json(&r, 2));
        pxl_db_result_fini(&r);
}

static void test_result_fail(void **state)
{
        struct pxl_db_result r;

        (void)state;
        memset(&r, 0, sizeof(r));
        pxl_db_result_fail(&r, "23505", "duplicate key value %s", "x");
        pxl_db_result_fail(&r, "23505", "duplicate key value violates %d", 1);
        assert_string_equal(pxl_db_error(&r), "duplicate key value violates 1");
        assert_string_equal(pxl_db_sqlstate(&r), "23505");
        assert_int_equal(pxl_db_rows(&r), 0);
        assert_null(pxl_db_value(&r, 0, 0, NULL));
        {
                struct json_object *rows = pxl_db_rows_json(&r);

                assert_int_equal(json_object_array_length(rows), 0);
                json_object_put(rows);
        }
        pxl_db_result_fini(&r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_params_kinds),
                cmocka_unit_test(test_params_bytes),
                cmocka_unit_test(test_params_refused),
                cmocka_unit_test(test_result_accessors),
                cmocka_unit_test(test_result_json),
                cmocka_unit_test(test_result_fail),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
