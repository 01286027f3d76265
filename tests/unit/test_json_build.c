/*
 * test_json_build.c - unit tests for pxl_json_build.c: round trips, the
 * number rules (big integers and floats kept as sent), strings, nulls,
 * duplicate keys, depth, and allocation failures injected with ld --wrap
 * (so this test links the JSON sources itself, not libpxl).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_json.h"

#include "nest_json.h"

#define DEPTH 64
#define FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Sized literals, so embedded NUL bytes count. */
#define S(lit) lit, sizeof(lit) - 1

/* ---- allocation failure injection ------------------------------------ */

/*
 * Linked with -Wl,--wrap=<each of these>, so calls from pxl_json_build.c
 * come here. fail_in > 0 counts calls down; the call that takes it to 0
 * fails. 0 means off.
 */
static long fail_in;
static long calls;

static bool inject(void)
{
        calls++;
        return fail_in > 0 && --fail_in == 0;
}

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_malloc(size_t n)
{
        return inject() ? NULL : __real_malloc(n);
}

#define WRAP0(name)                                                            \
        struct json_object *__real_##name(void);                               \
        struct json_object *__wrap_##name(void);                               \
        struct json_object *__wrap_##name(void)                                \
        {                                                                      \
                return inject() ? NULL : __real_##name();                      \
        }
#define WRAP1(name, t)                                                         \
        struct json_object *__real_##name(t a);                                \
        struct json_object *__wrap_##name(t a);                                \
        struct json_object *__wrap_##name(t a)                                 \
        {                                                                      \
                return inject() ? NULL : __real_##name(a);                     \
        }

WRAP0(json_object_new_object)
WRAP0(json_object_new_array)
WRAP1(json_object_new_int64, int64_t)
WRAP1(json_object_new_boolean, json_bool)

struct json_object *__real_json_object_new_string_len(const char *s, int len);
struct json_object *__wrap_json_object_new_string_len(const char *s, int len);
struct json_object *__wrap_json_object_new_string_len(const char *s, int len)
{
        return inject() ? NULL : __real_json_object_new_string_len(s, len);
}

struct json_object *__real_json_object_new_double_s(double d, const char *t);
struct json_object *__wrap_json_object_new_double_s(double d, const char *t);
struct json_object *__wrap_json_object_new_double_s(double d, const char *t)
{
        return inject() ? NULL : __real_json_object_new_double_s(d, t);
}

/* json-c does not take val when an add fails; neither do these. */
int __real_json_object_object_add(struct json_object *o, const char *k,
                                  struct json_object *v);
int __wrap_json_object_object_add(struct json_object *o, const char *k,
                                  struct json_object *v);
int __wrap_json_object_object_add(struct json_object *o, const char *k,
                                  struct json_object *v)
{
        return inject() ? -1 : __real_json_object_object_add(o, k, v);
}

int __real_json_object_array_add(struct json_object *a, struct json_object *v);
int __wrap_json_object_array_add(struct json_object *a, struct json_object *v);
int __wrap_json_object_array_add(struct json_object *a, struct json_object *v)
{
        return inject() ? -1 : __real_json_object_array_add(a, v);
}

/* ---- helpers ---------------------------------------------------------- */

/* Build from an exact-size heap copy, so ASan sees any overread. */
static int build_n(const char *s, size_t len, unsigned depth,
                   struct json_object **out)
{
        char *b = malloc(len ? len : 1);
        int rc;

        assert_non_null(b);
        memcpy(b, s, len);
        rc = pxl_json_build(b, len, depth, out);
        free(b);
        return rc;
}

static struct json_object *build(const char *s)
{
        struct json_object *o = (struct json_object *)1;

        if (!pxl_json_valid(s, strlen(s), DEPTH))
                fail_msg("not valid JSON: %s", s);
        if (build_n(s, strlen(s), DEPTH, &o) != PXL_OK)
                fail_msg("build failed: %s", s);
        return o;
}

static const char *text(struct json_object *o)
{
        return o == NULL ? "null" : json_object_to_json_string_ext(o, FLAGS);
}

static void assert_round_trip(const char *s)
{
        struct json_object *o = build(s);

        if (strcmp(text(o), s) != 0)
                fail_msg("round trip: %s gave %s", s, text(o));
        json_object_put(o);
}

/* The json-c tokener's reading of s, for comparison. */
static struct json_object *tokener(const char *s)
{
        struct json_tokener *tok = json_tokener_new_ex(DEPTH + 1);
        struct json_object *o;

        assert_non_null(tok);
        o = json_tokener_parse_ex(tok, s, (int)strlen(s));
        if (o == NULL && json_tokener_get_error(tok) == json_tokener_continue)
                o = json_tokener_parse_ex(tok, "", 1);
        json_tokener_free(tok);
        return o;
}

/* ---- tests ------------------------------------------------------------ */

static void test_round_trips(void **state)
{
        static const char *const docs[] = {
                "{}",
                "[]",
                "{\"a\":1}",
                "[1,2,3]",
                "\"str\"",
                "\"\"",
                "42",
                "-7",
                "0",
                "true",
                "false",
                "null",
                "{\"b\":1,\"a\":2}", /* insertion order is kept */
                "{\"a\":[1,{\"b\":null}],\"c\":\"x\",\"d\":[true,false]}",
                "[[],{},[{}],[[[]]]]",
                "{\"\":0}",
                "[null,null]",
                "{\"a\":null,\"b\":[null]}",
                "[1.5,-2.25,0.1,1e-7,6.02214076e23]",
                "[12345678901234567890123,-12345678901234567890123]",
                "[9223372036854775807,-9223372036854775808]",
                "[9223372036854775808,-9223372036854775809]",
                "[18446744073709551615,18446744073709551616]",
                "[1e400,-1e400,1e-400,-0.0,1E+2,1.0,1.50,0e0,-0E-0]",
                "[100000000000000000000000000000000000000000.5]",
                "\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u001f\\u0000d\"",
                "\"/ \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
                "{\"type\":\"system\",\"action\":\"joinRoom\",\"data\":"
                "{\"roomName\":\"lobby\",\"userId\":12345678901234567890123},"
                "\"requestId\":1.0}",
        };

        (void)state;
        for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
                assert_round_trip(docs[i]);
}

struct num_case {
        const char *in;
        enum json_type type;
        int64_t i;       /* json_type_int */
        double d;        /* json_type_double */
        const char *out; /* NULL: same as in */
};

static void test_numbers(void **state)
{
        static const struct num_case cases[] = {
                {"0", json_type_int, 0, 0, NULL},
                {"-0", json_type_int, 0, 0, "0"},
                {"42", json_type_int, 42, 0, NULL},
                {"-42", json_type_int, -42, 0, NULL},
                {"9223372036854775807", json_type_int, INT64_MAX, 0, NULL},
                {"-9223372036854775808", json_type_int, INT64_MIN, 0, NULL},
                {"9223372036854775808", json_type_double, 0,
                 9223372036854775808.0, NULL},
                {"-9223372036854775809", json_type_double, 0,
                 -9223372036854775809.0, NULL},
                {"18446744073709551615", json_type_double, 0,
                 18446744073709551615.0, NULL},
                {"18446744073709551616", json_type_double, 0,
                 18446744073709551616.0, NULL},
                {"12345678901234567890123", json_type_double, 0,
                 12345678901234567890123.0, NULL},
                {"-12345678901234567890123", json_type_double, 0,
                 -12345678901234567890123.0, NULL},
                {"1.5", json_type_double, 0, 1.5, NULL},
                {"1E+2", json_type_double, 0, 100.0, NULL},
                {"1e2", json_type_double, 0, 100.0, NULL},
                {"2.5e-3", json_type_double, 0, 0.0025, NULL},
                {"0.1", json_type_double, 0, 0.1, NULL},
                {"1e-400", json_type_double, 0, 0.0, NULL},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct num_case *c = &cases[i];
                struct json_object *o = NULL;
                size_t len = strlen(c->in);

                assert_true(pxl_json_valid(c->in, len, DEPTH));
                assert_int_equal(build_n(c->in, len, DEPTH, &o), PXL_OK);
                if (!json_object_is_type(o, c->type))
                        fail_msg("%s: type %d", c->in, json_object_get_type(o));
                if (c->type == json_type_int)
                        assert_true(json_object_get_int64(o) == c->i);
                else
                        assert_true(json_object_get_double(o) == c->d);
                assert_string_equal(text(o), c->out ? c->out : c->in);
                json_object_put(o);
        }
}

static void test_special_doubles(void **state)
{
        struct json_object *o;

        (void)state;
        o = build("1e400");
        assert_true(json_object_is_type(o, json_type_double));
        assert_true(isinf(json_object_get_double(o)));
        assert_true(json_object_get_double(o) > 0);
        assert_string_equal(text(o), "1e400");
        json_object_put(o);

        o = build("-1e400");
        assert_true(isinf(json_object_get_double(o)));
        assert_true(json_object_get_double(o) < 0);
        json_object_put(o);

        o = build("-0.0");
        assert_true(json_object_is_type(o, json_type_double));
        assert_true(json_object_get_double(o) == 0.0);
        assert_true(signbit(json_object_get_double(o)));
        assert_string_equal(text(o), "-0.0");
        json_object_put(o);
}

/* What this file exists for: the tokener saturates, the builder does not. */
static void test_versus_tokener(void **state)
{
        static const char *const big[] = {
                "12345678901234567890123",
                "-12345678901234567890123",
                "18446744073709551616",
                "-9223372036854775809",
        };
        static const char *const same[] = {
                ("{\"a\":[1,2.5,-3e10,\"x\\u00e9\\ud83d\\ude00\",null,true],"
                 "\"b\":{\"c\":{}},\"a\":false}"),
                "[9223372036854775807,-9223372036854775808,0,-0,1.5e300]",
                "{\"k\\u0000tail\":\"v\\u0000w\",\"\\ud800\":\"\\udc00\"}",
        };

        (void)state;
        for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
                struct json_object *ours = build(big[i]), *theirs;

                theirs = tokener(big[i]);
                assert_non_null(theirs);
                assert_string_equal(text(ours), big[i]);
                assert_string_not_equal(text(theirs), big[i]);
                json_object_put(ours);
                json_object_put(theirs);
        }
        for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
                struct json_object *ours = build(same[i]);
                struct json_object *theirs = tokener(same[i]);

                if (!json_object_equal(ours, theirs))
                        fail_msg("%s: %s vs %s", same[i], text(ours),
                                 text(theirs));
                json_object_put(ours);
                json_object_put(theirs);
        }
}

static void test_nested(void **state)
{
        struct json_object *o, *a, *b, *c;

        (void)state;
        o = build(" { \"a\" : { \"b\" : [ 1 , [ 2 , { \"c\" : \"d\" } ] ] } ,"
                  "\r\n\t\"e\" : [ ] } ");
        assert_true(json_object_is_type(o, json_type_object));
        assert_true(json_object_object_get_ex(o, "a", &a));
        assert_true(json_object_object_get_ex(a, "b", &b));
        assert_int_equal(json_object_array_length(b), 2);
        assert_int_equal(json_object_get_int(json_object_array_get_idx(b, 0)),
                         1);
        c = json_object_array_get_idx(json_object_array_get_idx(b, 1), 1);
        assert_true(json_object_object_get_ex(c, "c", &c));
        assert_string_equal(json_object_get_string(c), "d");
        assert_true(json_object_object_get_ex(o, "e", &a));
        assert_int_equal(json_object_array_length(a), 0);
        assert_string_equal(text(o),
                            "{\"a\":{\"b\":[1,[2,{\"c\":\"d\"}]]},\"e\":[]}");
        json_object_put(o);

        /* A deep copy keeps the number texts. */
        o = build("{\"u\":[12345678901234567890123,1.50]}");
        a = NULL;
        assert_int_equal(json_object_deep_copy(o, &a, NULL), 0);
        assert_string_equal(text(a), "{\"u\":[12345678901234567890123,1.50]}");
        json_object_put(a);
        json_object_put(o);
}

static void test_duplicate_keys(void **state)
{
        struct json_object *o, *v;

        (void)state;
        o = build("{\"a\":1,\"b\":2,\"a\":3}");
        assert_int_equal(json_object_object_length(o), 2);
        assert_true(json_object_object_get_ex(o, "a", &v));
        assert_int_equal(json_object_get_int(v), 3);
        assert_string_equal(text(o), "{\"a\":3,\"b\":2}");
        json_object_put(o);

        o = build("{\"a\":{\"x\":[1,2]},\"a\":[{\"y\":1}],\"a\":{\"z\":{}}}");
        assert_string_equal(text(o), "{\"a\":{\"z\":{}}}");
        json_object_put(o);

        o = build("{\"a\":1,\"a\":null}");
        assert_int_equal(json_object_object_length(o), 1);
        v = (struct json_object *)1;
        assert_true(json_object_object_get_ex(o, "a", &v));
        assert_null(v);
        json_object_put(o);

        /* Keys compare decoded: "\u0061" is "a". */
        o = build("{\"a\":1,\"\\u0061\":2}");
        assert_string_equal(text(o), "{\"a\":2}");
        json_object_put(o);

        /* Nested objects keep their own keys. */
        o = build("{\"a\":{\"a\":1,\"a\":2},\"b\":{\"a\":3}}");
        assert_string_equal(text(o), "{\"a\":{\"a\":2},\"b\":{\"a\":3}}");
        json_object_put(o);
}

struct str_case {
        const char *in;
        size_t in_len;
        const char *out;
        size_t out_len;
};

static void test_strings(void **state)
{
        static const struct str_case cases[] = {
                {S("\"\""), S("")},
                {S("\"plain\""), S("plain")},
                {S("\"\\/\\b\\f\\n\\r\\t\\\\\\\"\""), S("/\b\f\n\r\t\\\"")},
                {S("\"\\u0000\""), S("\0")},
                {S("\"a\\u0000b\\u0000\""), S("a\0b\0")},
                {S("\"\\u00e9\\u20AC\""), S("\xc3\xa9\xe2\x82\xac")},
                {S("\"\\uD83D\\uDE00\""), S("\xf0\x9f\x98\x80")},
                {S("\"\\ud83d\\ude00x\\uDBFF\\uDFFF\""),
                 S("\xf0\x9f\x98\x80x\xf4\x8f\xbf\xbf")},
                {S("\"\\ud800\""), S("\xef\xbf\xbd")},
                {S("\"\\udc00\\ud800\""), S("\xef\xbf\xbd\xef\xbf\xbd")},
                {S("\"\\ud800x\""), S("\xef\xbf\xbdx")},
                {S("\"\xf0\x9f\x98\x80 raw\""), S("\xf0\x9f\x98\x80 raw")},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct str_case *c = &cases[i];
                struct json_object *o = NULL;

                assert_true(pxl_json_valid(c->in, c->in_len, DEPTH));
                assert_int_equal(build_n(c->in, c->in_len, DEPTH, &o), PXL_OK);
                assert_true(json_object_is_type(o, json_type_string));
                assert_int_equal(json_object_get_string_len(o), c->out_len);
                assert_memory_equal(json_object_get_string(o), c->out,
                                    c->out_len);
                json_object_put(o);
        }
}

static void test_keys(void **state)
{
        struct json_object *o, *v;

        (void)state;
        o = build("{\"\\u0061\\n\":1,\"\\ud83d\\ude00\":2,\"/\":3}");
        assert_true(json_object_object_get_ex(o, "a\n", &v));
        assert_true(json_object_object_get_ex(o, "\xf0\x9f\x98\x80", &v));
        assert_int_equal(json_object_get_int(v), 2);
        assert_true(json_object_object_get_ex(o, "/", &v));
        json_object_put(o);

        /* json-c keys are C strings: U+0000 ends one (as with the tokener). */
        o = build("{\"ab\\u0000cd\":1}");
        assert_true(json_object_object_get_ex(o, "ab", &v));
        assert_string_equal(text(o), "{\"ab\":1}");
        json_object_put(o);
}

/* Strings, keys and numbers longer than the inline buffers. */
static void test_long_tokens(void **state)
{
        enum { N = 5000 };
        char *doc = malloc(6 * N + 64), *want = malloc(N + 1);
        struct json_object *o, *v;
        size_t k = 0;

        (void)state;
        assert_non_null(doc);
        assert_non_null(want);
        /* {"<N x k, escaped every 7th>":"<same>","n":<N digits>.5} */
        doc[k++] = '{';
        for (int pass = 0; pass < 2; pass++) {
                doc[k++] = '"';
                for (int i = 0; i < N; i++) {
                        if (i % 7 == 0) {
                                memcpy(doc + k, "\\u006b", 6);
                                k += 6;
                        } else {
                                doc[k++] = 'k';
                        }
                }
                doc[k++] = '"';
                doc[k++] = pass == 0 ? ':' : ',';
        }
        memcpy(doc + k, "\"n\":", 4);
        k += 4;
        for (int i = 0; i < N; i++)
                doc[k++] = i == 0 ? '9' : '0';
        memcpy(doc + k, ".5}", 4);
        k += 3;
        memset(want, 'k', N);
        want[N] = '\0';

        assert_true(pxl_json_valid(doc, k, DEPTH));
        assert_int_equal(build_n(doc, k, DEPTH, &o), PXL_OK);
        assert_true(json_object_object_get_ex(o, want, &v));
        assert_int_equal(json_object_get_string_len(v), N);
        assert_memory_equal(json_object_get_string(v), want, N);
        assert_true(json_object_object_get_ex(o, "n", &v));
        assert_true(isinf(json_object_get_double(v)));
        assert_int_equal(strlen(text(v)), N + 2);
        assert_memory_equal(text(v), "9000", 4);
        json_object_put(o);
        free(doc);
        free(want);
}

static void test_nulls(void **state)
{
        struct json_object *o, *v;

        (void)state;
        o = (struct json_object *)1;
        assert_int_equal(build_n(S("null"), DEPTH, &o), PXL_OK);
        assert_null(o);
        o = (struct json_object *)1;
        assert_int_equal(build_n(S(" \n null\t"), DEPTH, &o), PXL_OK);
        assert_null(o);

        o = build("{\"a\":null,\"b\":1,\"c\":null}");
        assert_int_equal(json_object_object_length(o), 3);
        v = (struct json_object *)1;
        assert_true(json_object_object_get_ex(o, "a", &v));
        assert_null(v);
        v = (struct json_object *)1;
        assert_true(json_object_object_get_ex(o, "c", &v));
        assert_null(v);
        assert_false(json_object_object_get_ex(o, "d", &v));
        assert_string_equal(text(o), "{\"a\":null,\"b\":1,\"c\":null}");
        json_object_put(o);

        o = build("[null,1,null,[null],{\"x\":null}]");
        assert_int_equal(json_object_array_length(o), 5);
        assert_null(json_object_array_get_idx(o, 0));
        assert_non_null(json_object_array_get_idx(o, 1));
        assert_null(json_object_array_get_idx(o, 2));
        assert_string_equal(text(o), "[null,1,null,[null],{\"x\":null}]");
        json_object_put(o);
}

static void test_depth(void **state)
{
        char *b = malloc(8 * (PXL_JSON_DEPTH_CAP + 2));
        struct json_object *o;
        size_t n;

        (void)state;
        assert_non_null(b);
        for (int obj = 0; obj < 2; obj++) {
                n = nest(b, 64, obj);
                assert_int_equal(build_n(b, n, 64, &o), PXL_OK);
                assert_string_equal(text(o), b);
                json_object_put(o);
                n = nest(b, 65, obj);
                o = (struct json_object *)1;
                assert_int_equal(build_n(b, n, 64, &o), PXL_EINVAL);
                assert_null(o);
                assert_int_equal(build_n(b, n, 65, &o), PXL_OK);
                json_object_put(o);
        }

        /* Mixed nesting counts every container. */
        n = 0;
        for (int i = 0; i < 32; i++) {
                memcpy(b + n, "[{\"a\":", 6);
                n += 6;
        }
        b[n++] = '1';
        for (int i = 0; i < 32; i++) {
                memcpy(b + n, "}]", 2);
                n += 2;
        }
        assert_int_equal(build_n(b, n, 64, &o), PXL_OK);
        json_object_put(o);
        assert_int_equal(build_n(b, n, 63, &o), PXL_EINVAL);

        /* Siblings do not add up, and closing frees a level. */
        o = build("[[[1]],[[2]],{\"a\":[[3]]}]");
        json_object_put(o);
        assert_int_equal(build_n(S("[[1],[2]]"), 2, &o), PXL_OK);
        json_object_put(o);

        /* 0 allows scalars only. */
        assert_int_equal(build_n(S("7"), 0, &o), PXL_OK);
        json_object_put(o);
        assert_int_equal(build_n(S("[]"), 0, &o), PXL_EINVAL);

        /* Above the cap acts as the cap. */
        n = nest(b, PXL_JSON_DEPTH_CAP, false);
        assert_int_equal(build_n(b, n, UINT_MAX, &o), PXL_OK);
        assert_string_equal(text(o), b);
        json_object_put(o);
        n = nest(b, PXL_JSON_DEPTH_CAP + 1, true);
        assert_int_equal(build_n(b, n, UINT_MAX, &o), PXL_EINVAL);
        free(b);
}

/* Not its job, but it must not read outside the buffer or leak. */
static void test_invalid_input(void **state)
{
        static const struct {
                const char *s;
                size_t len;
        } bad[] = {
                {S("")},           {S(" ")},
                {S("{")},          {S("[")},
                {S("[1,")},        {S("[1")},
                {S("{\"a\"")},     {S("{\"a\":")},
                {S("{\"a\":}")},   {S("{\"a\" 1}")},
                {S("{1:2}")},      {S("[1}")},
                {S("{\"a\":1]")},  {S("tru")},
                {S("nul")},        {S("fals")},
                {S("\"abc")},      {S("\"a\\")},
                {S("\"a\\\"")},    {S("[1]x")},
                {S("1 2")},        {S("{\"a\":[1,{\"b\":\"")},
                {S("x")},          {S("]")},
                {S("{\"a\\")},     {S("[\"\\u12")},
                {S("{\"a\":1,}")},
        };
        struct json_object *o;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                o = (struct json_object *)1;
                if (build_n(bad[i].s, bad[i].len, DEPTH, &o) != PXL_EINVAL)
                        fail_msg("accepted: %.*s", (int)bad[i].len, bad[i].s);
                assert_null(o);
        }
        assert_int_equal(pxl_json_build(NULL, 0, DEPTH, &o), PXL_EINVAL);
}

/*
 * Fail each allocation in turn: every run must give PXL_ENOMEM and leave
 * nothing behind. Leaks are LSan's to find (configure --enable-asan, as
 * CI runs): glibc's counters see chunks parked in tcache as in use.
 */
static void test_alloc_failures(void **state)
{
        static const char *const docs[] = {
                "{\"a\":[1,2.5,\"s\\n\",true,null,{\"b\":{}}],\"c\":false,"
                "\"a\":[],\"d\":12345678901234567890123}",
                "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{\"x\":\"y\"}]]]]]]"
                "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
                "\"\\u00e9 a string that is longer than the inline buffer, "
                "which holds 128 bytes; this one has escapes\\t\\n and goes "
                "on for a while longer still\"",
                "{\"a key longer than the sixty-four byte inline key buffer "
                "\\u0021\":1}",
                "1.5",
                "true",
                "\"x\"",
        };
        long points = 0;

        (void)state;
        for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
                size_t len = strlen(docs[i]);
                struct json_object *want = build(docs[i]);

                for (long k = 1;; k++) {
                        struct json_object *o = (struct json_object *)1;
                        int rc;

                        fail_in = k;
                        rc = pxl_json_build(docs[i], len, DEPTH, &o);
                        fail_in = 0;
                        if (rc == PXL_OK) {
                                assert_true(json_object_equal(o, want));
                                json_object_put(o);
                                break;
                        }
                        if (rc != PXL_ENOMEM)
                                fail_msg("%s: failure %ld gave %d", docs[i], k,
                                         rc);
                        assert_null(o);
                        points++;
                }
                json_object_put(want);
        }
        /* Sanity: the wraps are in place (114 failure points today). */
        assert_true(points > 100);
}

/* A large document, built twice from its own output. */
static void test_large_document(void **state)
{
        size_t cap = 1 << 20, n = 0;
        char *b = malloc(cap);
        struct json_object *o, *o2;
        const char *t;

        (void)state;
        assert_non_null(b);
        n += (size_t)sprintf(b + n, "[");
        for (int i = 0; n < cap - 256; i++)
                n += (size_t)sprintf(
                        b + n,
                        "%s{\"id\":%d,\"big\":%d12345678901234567890,"
                        "\"f\":%d.25e-3,\"s\":\"n\\u00e9%d\\n\",\"ok\":%s,"
                        "\"z\":null,\"l\":[%d,[],{}]}",
                        i ? "," : "", i, i % 9 + 1, i, i,
                        i % 2 ? "true" : "false", -i);
        n += (size_t)sprintf(b + n, "]");
        assert_true(pxl_json_valid(b, n, DEPTH));
        assert_int_equal(build_n(b, n, DEPTH, &o), PXL_OK);
        t = text(o);
        /* Canonical but for the escaped e-acute, which json-c sends raw. */
        assert_int_equal(strlen(t), n - 4 * json_object_array_length(o));
        assert_int_equal(build_n(t, strlen(t), DEPTH, &o2), PXL_OK);
        assert_true(json_object_equal(o, o2));
        assert_string_equal(text(o2), t);
        json_object_put(o2);
        json_object_put(o);
        free(b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trips),
                cmocka_unit_test(test_numbers),
                cmocka_unit_test(test_special_doubles),
                cmocka_unit_test(test_versus_tokener),
                cmocka_unit_test(test_nested),
                cmocka_unit_test(test_duplicate_keys),
                cmocka_unit_test(test_strings),
                cmocka_unit_test(test_keys),
                cmocka_unit_test(test_long_tokens),
                cmocka_unit_test(test_nulls),
                cmocka_unit_test(test_depth),
                cmocka_unit_test(test_invalid_input),
                cmocka_unit_test(test_alloc_failures),
                cmocka_unit_test(test_large_document),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
