/*
 * test_json.c - unit tests for pxl_json.c: strict validation, the
 * envelope checks of PROTOCOL.md (and a reply's "response"), the
 * top-level key lookup and the integer reader the outbound client and
 * pxl-bench read replies with, string unescape and escape. The json-c
 * cross-check lives in tests/fuzz/fuzz_json.c, not here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pxl_json.h"

#include "nest_json.h"

/* Sized literals, so embedded NUL bytes count. */
#define S(lit) lit, sizeof(lit) - 1

static bool valid(const char *s, size_t len)
{
        return pxl_json_valid(s, len, 64);
}

static void test_valid_documents(void **state)
{
        static const char *const ok[] = {
                "{}",
                "[]",
                "{\"a\":1}",
                (" \t\r\n{\"a\" : [1, 2.5, -3e10, 0, -0, 1E+2, 1e-2, true, "
                 "false, null, \"x\"]} \n"),
                "\"str\"",
                "42",
                "-0.0e0",
                "0",
                "1.25E-7",
                "null",
                "true",
                "false",
                "\"\"",
                "{\"\":0}",
                "[[],{},[{}]]",
                "\"\\/\\b\\f\\n\\r\\t\\\\\\\"\"",
                "\"\\uABCD\\uabcd\\u00e9\"",
                "\"\\uD83D\\uDE00\"",
                "\"\\ud800\"", /* lone surrogate escapes are grammatical */
                "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
                "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"",
                "{\"type\":\"a\",\"action\":\"b\",\"data\":{\"x\":[1,{}]}}",
                "[1,\n2\r,\t3]",
        };

        (void)state;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                if (!valid(ok[i], strlen(ok[i])))
                        fail_msg("should be valid: %s", ok[i]);
        }
}

struct doc {
        const char *s;
        size_t len;
};

static void test_invalid_documents(void **state)
{
        static const struct doc bad[] = {
                {S("")},
                {S(" \t\r\n")},
                {S("{'a':1}")},
                {S("'a'")},
                {S("NaN")},
                {S("{\"a\":NaN}")},
                {S("{\"a\":Infinity}")},
                {S("-Infinity")},
                {S("{\"a\":\"x\x01\"}")},
                {S("\"a\tb\"")}, /* raw HT inside a string */
                {S("\"a\nb\"")},
                {S("\"a\x00"
                   "b\"")},
                {S("{\"a\":1}x")},
                {S("{\"a\":1}\x00")},
                {S("{\"a\":1,}")},
                {S("[1,]")},
                {S("[,1]")},
                {S("[1,,2]")},
                {S("/*c*/{}")},
                {S("{}//c")},
                {S("{}#")},
                {S("01")},
                {S("-01")},
                {S("+1")},
                {S(".5")},
                {S("1.")},
                {S("1.e5")},
                {S("1e")},
                {S("1e+")},
                {S("-")},
                {S("--1")},
                {S("0x10")},
                {S("1_000")},
                {S("tru")},
                {S("True")},
                {S("TRUE")},
                {S("nul")},
                {S("nulll")},
                {S("falsey")},
                {S("\"abc")},
                {S("\"\\x\"")},
                {S("\"\\'\"")},
                {S("\"\\u12\"")},
                {S("\"\\u12G4\"")},
                {S("\"\\U1234\"")},
                {S("\"\\")},
                {S("{\"a\"}")},
                {S("{\"a\":}")},
                {S("{\"a\" 1}")},
                {S("{1:2}")},
                {S("{a:2}")},
                {S("[1 2]")},
                {S("{\"a\":1 \"b\":2}")},
                {S("[}")},
                {S("{]")},
                {S("]")},
                {S("}")},
                {S("{\"a\":1}}")},
                {S("[[]")},
                {S("[")},
                {S("{")},
                {S("1 2")},
                {S("{} {}")},
                {S("\"\xc0\xaf\"")},         /* overlong '/' */
                {S("\"\xe0\x80\xaf\"")},     /* overlong, 3 bytes */
                {S("\"\xed\xa0\x80\"")},     /* encoded surrogate */
                {S("\"\xf4\x90\x80\x80\"")}, /* above U+10FFFF */
                {S("\"\xf5\x80\x80\x80\"")},
                {S("\"\x80\"")},
                {S("\"\xe2\x82\"")}, /* truncated sequence */
                {S("\"\xe2\x82")},
                {S("\"\xff\"")},
                {S("\f{}")},
                {S("\v{}")},
                {S("\xc2\xa0{}")},     /* NBSP is not JSON whitespace */
                {S("\xef\xbb\xbf{}")}, /* BOM */
                {S("{\"a\":1}\xc3\xa9")},
                {S("\x00")},
        };

        (void)state;
        assert_false(pxl_json_valid(NULL, 0, 64));
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (valid(bad[i].s, bad[i].len))
                        fail_msg("should be invalid: #%zu %.*s", i,
                                 (int)bad[i].len, bad[i].s);
        }
}

/* Every proper prefix of a valid object is invalid; nothing reads past. */
static void test_prefixes_invalid(void **state)
{
        static const char doc[] = "{\"type\":\"a\",\"action\":\"b\","
                                  "\"data\":[1,-2.5e3,true,null,\"\\u00e9\"]}";
        size_t n = sizeof(doc) - 1;

        (void)state;
        for (size_t k = 0; k < n; k++) {
                /* A heap copy lets ASan catch a read past k. */
                char *b = malloc(k + 1);

                assert_non_null(b);
                memcpy(b, doc, k);
                assert_false(pxl_json_valid(b, k, 64));
                free(b);
        }
        assert_true(pxl_json_valid(doc, n, 64));
}

static void test_depth(void **state)
{
        char *b = malloc(8 * (PXL_JSON_DEPTH_CAP + 2));
        size_t n;

        (void)state;
        assert_non_null(b);
        n = nest(b, 64, false);
        assert_true(pxl_json_valid(b, n, 64));
        n = nest(b, 65, false);
        assert_false(pxl_json_valid(b, n, 64));
        assert_true(pxl_json_valid(b, n, 65));
        n = nest(b, 64, true);
        assert_true(pxl_json_valid(b, n, 64));
        n = nest(b, 65, true);
        assert_false(pxl_json_valid(b, n, 64));

        /* Mixed: [{"a":[{"a":...}]}] counts every container. */
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
        assert_true(pxl_json_valid(b, n, 64));
        assert_false(pxl_json_valid(b, n, 63));

        /* Siblings do not add up. */
        assert_true(pxl_json_valid(S("[[1],[2],[[3]]]"), 3));
        assert_false(pxl_json_valid(S("[[1],[2],[[[4]]]]"), 3));

        assert_true(pxl_json_valid(S("1"), 0));
        assert_true(pxl_json_valid(S("\"s\""), 0));
        assert_false(pxl_json_valid(S("[]"), 0));
        assert_false(pxl_json_valid(S("{}"), 0));
        assert_true(pxl_json_valid(S("[]"), 1));
        assert_false(pxl_json_valid(S("[[]]"), 1));

        /* Above the cap, the cap is the limit. */
        n = nest(b, PXL_JSON_DEPTH_CAP, false);
        assert_true(pxl_json_valid(b, n, PXL_JSON_DEPTH_CAP));
        assert_true(pxl_json_valid(b, n, 100000));
        n = nest(b, PXL_JSON_DEPTH_CAP + 1, false);
        assert_false(pxl_json_valid(b, n, 100000));
        assert_false(pxl_json_valid(b, n, (unsigned)-1));
        free(b);
}

static void assert_span(struct pxl_json_span sp, enum pxl_json_kind kind,
                        const char *text)
{
        assert_int_equal(sp.kind, kind);
        if (text == NULL) {
                assert_null(sp.p);
                assert_int_equal(sp.len, 0);
                return;
        }
        assert_non_null(sp.p);
        assert_int_equal(sp.len, strlen(text));
        assert_memory_equal(sp.p, text, sp.len);
}

static enum pxl_envelope_status env_of(const char *s, struct pxl_envelope *e)
{
        return pxl_json_envelope(s, strlen(s), 64, e);
}

/* A member value and the span it should give (NULL: none is recorded). */
struct member {
        const char *value;
        enum pxl_json_kind kind;
        const char *span;
};

/* Each {"type":"a","action":"b","<key>":<value>} is OK with <key>'s span. */
static void check_members(const char *key, const struct member *t, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                struct pxl_envelope e;
                char doc[128];

                snprintf(doc, sizeof(doc),
                         "{\"type\":\"a\",\"action\":\"b\",\"%s\":%s}", key,
                         t[i].value);
                assert_int_equal(env_of(doc, &e), PXL_ENV_OK);
                assert_span(strcmp(key, "data") == 0 ? e.data : e.request_id,
                            t[i].kind, t[i].span);
        }
}

#define CHECK_MEMBERS(key, t) check_members(key, t, sizeof(t) / sizeof(t[0]))

/* Statuses of whole documents. */
struct env_case {
        const char *doc;
        enum pxl_envelope_status status;
};

static void check_statuses(const struct env_case *t, size_t n)
{
        struct pxl_envelope e;

        for (size_t i = 0; i < n; i++) {
                enum pxl_envelope_status got = env_of(t[i].doc, &e);

                if (got != t[i].status)
                        print_error("%s\n", t[i].doc);
                assert_int_equal(got, t[i].status);
        }
}

#define CHECK_STATUSES(t) check_statuses(t, sizeof(t) / sizeof(t[0]))

static void test_envelope_ok(void **state)
{
        static const struct member data[] = {
                {"null", PXL_JSON_NULL, "null"},
                {"[[]]", PXL_JSON_ARRAY, "[[]]"},
                {"-1.5", PXL_JSON_NUMBER, "-1.5"},
                {"true", PXL_JSON_TRUE, "true"},
                {"false", PXL_JSON_FALSE, "false"},
                {"\"\"", PXL_JSON_STRING, "\"\""},
        };
        struct pxl_envelope e;

        (void)state;
        assert_int_equal(env_of("{\"type\":\"a\",\"action\":\"b\"}", &e),
                         PXL_ENV_OK);
        assert_span(e.type, PXL_JSON_STRING, "\"a\"");
        assert_span(e.action, PXL_JSON_STRING, "\"b\"");
        assert_span(e.data, PXL_JSON_NONE, NULL);
        assert_span(e.request_id, PXL_JSON_NONE, NULL);

        assert_int_equal(
                env_of(" { \"data\" : {\"x\":[1,2]} , \"action\":\"say\" ,"
                       "\"type\" :\"chat\", \"other\":[{\"type\":1}],"
                       "\"requestId\": \"r-1\" } ",
                       &e),
                PXL_ENV_OK);
        assert_span(e.type, PXL_JSON_STRING, "\"chat\"");
        assert_span(e.action, PXL_JSON_STRING, "\"say\"");
        assert_span(e.data, PXL_JSON_OBJECT, "{\"x\":[1,2]}");
        assert_span(e.request_id, PXL_JSON_STRING, "\"r-1\"");

        CHECK_MEMBERS("data", data);

        /* Spans are raw text: escapes stay escaped. */
        assert_int_equal(
                env_of("{\"type\":\"\\u0061\",\"action\":\"b\\\"c\"}", &e),
                PXL_ENV_OK);
        assert_span(e.type, PXL_JSON_STRING, "\"\\u0061\"");
        assert_span(e.action, PXL_JSON_STRING, "\"b\\\"c\"");
}

static void test_envelope_keys(void **state)
{
        /* Keys that only look like "type". */
        static const struct env_case not_type[] = {
                {"{\"t\\/ype\":\"a\",\"action\":\"b\"}", PXL_ENV_NO_TYPE},
                {"{\"type\\u0000\":\"a\",\"action\":\"b\"}", PXL_ENV_NO_TYPE},
                {"{\"Type\":\"a\",\"action\":\"b\"}", PXL_ENV_NO_TYPE},
                {"{\"type \":\"a\",\"action\":\"b\"}", PXL_ENV_NO_TYPE},
                {"{\"typetypetypetypetypetype\":\"a\",\"action\":\"b\"}",
                 PXL_ENV_NO_TYPE},
        };
        struct pxl_envelope e;

        (void)state;
        /* Keys compare after unescaping. */
        assert_int_equal(env_of("{\"typ\\u0065\":\"a\",\"\\u0061ction\":\"b\","
                                "\"request\\u0049d\":5}",
                                &e),
                         PXL_ENV_OK);
        assert_span(e.type, PXL_JSON_STRING, "\"a\"");
        assert_span(e.request_id, PXL_JSON_NUMBER, "5");
        CHECK_STATUSES(not_type);

        /* The last occurrence wins, as in json-c. */
        assert_int_equal(
                env_of("{\"type\":\"a\",\"type\":\"c\",\"action\":\"b\"}", &e),
                PXL_ENV_OK);
        assert_span(e.type, PXL_JSON_STRING, "\"c\"");
        assert_int_equal(
                env_of("{\"type\":\"a\",\"type\":1,\"action\":\"b\"}", &e),
                PXL_ENV_NO_TYPE);
        assert_int_equal(
                env_of("{\"type\":1,\"type\":\"a\",\"action\":\"b\"}", &e),
                PXL_ENV_OK);
        assert_int_equal(env_of("{\"type\":\"a\",\"action\":\"b\","
                                "\"requestId\":\"x\",\"requestId\":null}",
                                &e),
                         PXL_ENV_OK);
        assert_span(e.request_id, PXL_JSON_NONE, NULL);
        assert_int_equal(env_of("{\"type\":\"a\",\"action\":\"b\","
                                "\"requestId\":{},\"requestId\":7}",
                                &e),
                         PXL_ENV_OK);
        assert_span(e.request_id, PXL_JSON_NUMBER, "7");

        /* Only the top level counts. */
        assert_int_equal(
                env_of("{\"data\":{\"type\":\"x\",\"action\":\"y\"}}", &e),
                PXL_ENV_NO_TYPE);
        assert_int_equal(env_of("{\"data\":[{\"type\":\"x\"}],\"type\":\"t\","
                                "\"action\":\"a\"}",
                                &e),
                         PXL_ENV_OK);
        assert_span(e.type, PXL_JSON_STRING, "\"t\"");
        assert_span(e.data, PXL_JSON_ARRAY, "[{\"type\":\"x\"}]");
}

static void test_envelope_order(void **state)
{
        static const char *const parse_errors[] = {
                "{'a':1}",
                "NaN",
                "{\"a\":Infinity}",
                "{\"a\":\"x\x01\"}",
                "{\"a\":1}x",
                "{\"a\":1,}",
                "/*c*/{}",
                "",
                "{\"type\":\"a\",\"action\":\"b\"",
                "{\"type\":\"a\",\"action\":\"b\",}",
                "{\"type\":'a',\"action\":\"b\"}",
        };
        static const char *const not_objects[] = {
                "null",    "[1]",
                "\"str\"", "42",
                "true",    "false",
                "[]",      "[{\"type\":\"a\",\"action\":\"b\"}]",
        };
        static const struct env_case missing[] = {
                {"{}", PXL_ENV_NO_TYPE},
                {"{\"action\":\"b\"}", PXL_ENV_NO_TYPE},
                {"{\"type\":\"\",\"action\":\"b\"}", PXL_ENV_NO_TYPE},
                {"{\"type\":1,\"action\":\"b\"}", PXL_ENV_NO_TYPE},
                {"{\"type\":null,\"action\":\"b\"}", PXL_ENV_NO_TYPE},
                {"{\"type\":[\"a\"],\"action\":\"b\"}", PXL_ENV_NO_TYPE},
                {"{\"type\":{},\"action\":\"b\"}", PXL_ENV_NO_TYPE},
                {"{\"type\":true,\"action\":\"b\"}", PXL_ENV_NO_TYPE},
                /* type is checked before action. */
                {"{\"action\":\"\",\"type\":\"\"}", PXL_ENV_NO_TYPE},
                {"{\"action\":1}", PXL_ENV_NO_TYPE},
                {"{\"type\":\"a\",\"action\":\"\"}", PXL_ENV_NO_ACTION},
                {"{\"type\":\"a\",\"action\":false}", PXL_ENV_NO_ACTION},
                {"{\"type\":\"a\",\"action\":0}", PXL_ENV_NO_ACTION},
                {"{\"type\":\"a\",\"action\":null}", PXL_ENV_NO_ACTION},
        };
        struct pxl_envelope e;

        (void)state;
        assert_int_equal(pxl_json_envelope(NULL, 0, 64, &e),
                         PXL_ENV_PARSE_ERROR);
        for (size_t i = 0; i < sizeof(parse_errors) / sizeof(parse_errors[0]);
             i++) {
                if (env_of(parse_errors[i], &e) != PXL_ENV_PARSE_ERROR)
                        fail_msg("not a parse error: %s", parse_errors[i]);
                assert_span(e.request_id, PXL_JSON_NONE, NULL);
        }
        for (size_t i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]);
             i++) {
                if (env_of(not_objects[i], &e) != PXL_ENV_NOT_OBJECT)
                        fail_msg("should be NOT_OBJECT: %s", not_objects[i]);
                assert_span(e.type, PXL_JSON_NONE, NULL);
                assert_span(e.request_id, PXL_JSON_NONE, NULL);
        }

        CHECK_STATUSES(missing);
        assert_int_equal(env_of("{\"type\":\"a\"}", &e), PXL_ENV_NO_ACTION);
        assert_span(e.type, PXL_JSON_STRING, "\"a\"");

        /* Depth applies to the envelope too. */
        assert_int_equal(pxl_json_envelope(S("{\"type\":\"a\",\"action\":\"b\","
                                             "\"data\":[[1]]}"),
                                           2, &e),
                         PXL_ENV_PARSE_ERROR);
        assert_int_equal(pxl_json_envelope(S("{\"type\":\"a\",\"action\":\"b\","
                                             "\"data\":[[1]]}"),
                                           3, &e),
                         PXL_ENV_OK);
}

static void test_envelope_request_id(void **state)
{
        static const struct member ids[] = {
                {"\"abc\"", PXL_JSON_STRING, "\"abc\""},
                {"42", PXL_JSON_NUMBER, "42"},
                {"0", PXL_JSON_NUMBER, "0"},
                {"\"\"", PXL_JSON_STRING, "\"\""},
                {"-1.5e300", PXL_JSON_NUMBER, "-1.5e300"},
                {"18446744073709551616", PXL_JSON_NUMBER,
                 "18446744073709551616"},
                /* Other types are ignored. */
                {"{\"x\":1}", PXL_JSON_NONE, NULL},
                {"null", PXL_JSON_NONE, NULL},
                {"[1]", PXL_JSON_NONE, NULL},
                {"true", PXL_JSON_NONE, NULL},
        };
        struct pxl_envelope e;

        (void)state;
        CHECK_MEMBERS("requestId", ids);

        /* Filled for the error replies too. */
        assert_int_equal(env_of("{\"requestId\":7}", &e), PXL_ENV_NO_TYPE);
        assert_span(e.request_id, PXL_JSON_NUMBER, "7");
        assert_int_equal(env_of("{\"type\":\"a\",\"requestId\":\"q\"}", &e),
                         PXL_ENV_NO_ACTION);
        assert_span(e.request_id, PXL_JSON_STRING, "\"q\"");
        assert_int_equal(env_of("{\"requestId\":7,\"x\":}", &e),
                         PXL_ENV_PARSE_ERROR);
        assert_span(e.request_id, PXL_JSON_NONE, NULL);
}

static void check_unescape(const char *tok, const char *want, size_t want_len)
{
        size_t tl = strlen(tok);
        char *out = malloc(tl);
        ssize_t n;

        assert_non_null(out);
        /* cap == tok_len always suffices. */
        n = pxl_json_unescape(tok, tl, out, tl);
        assert_int_equal(n, (ssize_t)want_len);
        assert_memory_equal(out, want, want_len);
        assert_int_equal(out[n], '\0');
        /* Exactly the room needed, and one byte less. */
        assert_int_equal(pxl_json_unescape(tok, tl, out, want_len + 1),
                         (ssize_t)want_len);
        assert_int_equal(pxl_json_unescape(tok, tl, out, want_len), -1);
        free(out);
}

/* A reply carries "response" where a request carries "data". */
static void test_envelope_response(void **state)
{
        struct pxl_envelope e;

        (void)state;
        assert_int_equal(env_of("{\"type\":\"bench\",\"action\":\"echo\","
                                "\"response\":{\"t\":1},\"requestId\":3}",
                                &e),
                         PXL_ENV_OK);
        assert_span(e.response, PXL_JSON_OBJECT, "{\"t\":1}");
        assert_span(e.data, PXL_JSON_NONE, NULL);
        assert_span(e.request_id, PXL_JSON_NUMBER, "3");
        /* Both, escaped, repeated (the last wins), nested (ignored). */
        assert_int_equal(env_of("{\"type\":\"a\",\"action\":\"b\","
                                "\"data\":{\"response\":1},"
                                "\"respons\\u0065\":false,\"response\":[]}",
                                &e),
                         PXL_ENV_OK);
        assert_span(e.data, PXL_JSON_OBJECT, "{\"response\":1}");
        assert_span(e.response, PXL_JSON_ARRAY, "[]");
        assert_int_equal(env_of("{\"type\":\"a\",\"action\":\"b\"}", &e),
                         PXL_ENV_OK);
        assert_span(e.response, PXL_JSON_NONE, NULL);
        /* Not valid: nothing is kept. */
        assert_int_equal(env_of("{\"response\":1,}", &e), PXL_ENV_PARSE_ERROR);
        assert_span(e.response, PXL_JSON_NONE, NULL);
}

/* pxl_json_find on an exact-size heap copy (overreads trip ASan). */
static bool find(const char *text, const char *key, struct pxl_json_span *s)
{
        size_t n = strlen(text);
        char *p = malloc(n ? n : 1);
        bool found;

        assert_non_null(p);
        memcpy(p, text, n);
        found = pxl_json_find(p, n, key, s);
        if (found) {
                /* Re-point into text so the caller can compare after free. */
                s->p = text + (s->p - p);
        } else {
                assert_null(s->p);
                assert_int_equal(s->kind, PXL_JSON_NONE);
        }
        free(p);
        return found;
}

static void expect(const char *text, const char *key, const char *val,
                   enum pxl_json_kind kind)
{
        struct pxl_json_span s;

        if (!find(text, key, &s))
                fail_msg("%s: %s not found", text, key);
        assert_span(s, kind, val);
}

static void test_find(void **state)
{
        static const char msg[] =
                "{\"type\":\"bench\",\"action\":\"echo\",\"response\":"
                "{\"t\":123,\"s\":[1,{\"t\":9}],\"q\":\"a\\\"}t\"}}";
        char long_key[PXL_JSON_KEY_MAX + 2], doc[PXL_JSON_KEY_MAX + 16];
        struct pxl_json_span s;

        (void)state;
        expect(msg, "type", "\"bench\"", PXL_JSON_STRING);
        expect(msg, "response",
               "{\"t\":123,\"s\":[1,{\"t\":9}],\"q\":\"a\\\"}t\"}",
               PXL_JSON_OBJECT);
        expect("{\"t\":123,\"s\":[1,{\"t\":9}]}", "t", "123", PXL_JSON_NUMBER);
        expect("{\"s\":[1,{\"t\":9}],\"t\":-4}", "t", "-4", PXL_JSON_NUMBER);
        expect(" {\n\t\"a\" : true , \"b\":false,\"c\":null,\"d\":[]} ", "a",
               "true", PXL_JSON_TRUE);
        expect("{\"a\":true,\"b\":false,\"c\":null}", "b", "false",
               PXL_JSON_FALSE);
        expect("{\"a\":true,\"b\":false,\"c\":null}", "c", "null",
               PXL_JSON_NULL);
        expect("{\"a\":1,\"a\":2}", "a", "2", PXL_JSON_NUMBER);
        expect("{\"k\\\"x\":1,\"k\":\"v\\\\\"}", "k", "\"v\\\\\"",
               PXL_JSON_STRING);
        expect("{\"a\":{\"b\":{\"c\":[[[]]]}},\"z\":0}", "z", "0",
               PXL_JSON_NUMBER);
        /* Keys compare after decoding, as the envelope's do. */
        expect("{\"\\u0074\":1}", "t", "1", PXL_JSON_NUMBER);
        expect("{\"a\\/b\":\"x\"}", "a/b", "\"x\"", PXL_JSON_STRING);
        expect("{\"\":5}", "", "5", PXL_JSON_NUMBER);
        assert_false(find("{\"s\":{\"t\":1}}", "t", &s));
        assert_false(find("{}", "t", &s));
        assert_false(find("[\"t\",1]", "t", &s));
        assert_false(find("\"t\"", "t", &s));
        assert_false(find("", "t", &s));
        assert_false(find("{\"tt\":1}", "t", &s));
        assert_false(find("{\"t\":1", "x", &s));
        /* Broken text: not found, whatever precedes the break. */
        assert_false(find("{\"t\":1", "t", &s));
        assert_false(find("{\"t\":", "t", &s));
        assert_false(find("{\"t\":\"abc", "t", &s));
        assert_false(find("{\"t\":[1,2", "t", &s));
        assert_false(find("{\"t", "t", &s));
        assert_false(find("{\"t\\", "t", &s));
        assert_false(find("{\"t\":\"\\", "t", &s));
        assert_false(find("{\"t\":1,}", "t", &s));
        assert_false(find("{\"t\":01}", "t", &s));
        assert_false(find("{\"t\":1} x", "t", &s));
        assert_false(pxl_json_find(NULL, 0, "t", &s));
        /* A long key matches as written; escaped, only up to the limit. */
        memset(long_key, 'k', sizeof(long_key) - 1);
        long_key[sizeof(long_key) - 1] = '\0';
        snprintf(doc, sizeof(doc), "{\"%s\":7}", long_key);
        expect(doc, long_key, "7", PXL_JSON_NUMBER);
        snprintf(doc, sizeof(doc), "{\"\\u006b%s\":7}", long_key + 1);
        assert_false(find(doc, long_key, &s));
        long_key[PXL_JSON_KEY_MAX] = '\0';
        snprintf(doc, sizeof(doc), "{\"\\u006b%s\":7}", long_key + 1);
        expect(doc, long_key, "7", PXL_JSON_NUMBER);
}

static bool int_of(const char *text, int64_t *v)
{
        return pxl_json_int64(text, strlen(text), v);
}

static void test_int64(void **state)
{
        int64_t v;

        (void)state;
        assert_true(int_of("0", &v));
        assert_int_equal(v, 0);
        assert_true(int_of("-0", &v));
        assert_int_equal(v, 0);
        assert_true(int_of("1234567890123", &v));
        assert_int_equal(v, 1234567890123LL);
        assert_true(int_of("-42", &v));
        assert_int_equal(v, -42);
        assert_true(int_of("9223372036854775807", &v));
        assert_true(v == INT64_MAX);
        assert_true(int_of("-9223372036854775808", &v));
        assert_true(v == INT64_MIN);
        assert_false(int_of("9223372036854775808", &v));
        assert_false(int_of("-9223372036854775809", &v));
        assert_false(int_of("99999999999999999999999", &v));
        assert_false(int_of("1.5", &v));
        assert_false(int_of("1e3", &v));
        assert_false(int_of("", &v));
        assert_false(int_of("-", &v));
        assert_false(int_of("\"1\"", &v));
        assert_false(int_of("true", &v));
        assert_false(int_of("+1", &v));
        assert_false(int_of("1 ", &v));
        assert_false(pxl_json_int64(NULL, 0, &v));
        /* Only len bytes are read. */
        assert_true(pxl_json_int64("12345", 2, &v));
        assert_int_equal(v, 12);
}

static void test_unescape(void **state)
{
        char out[8];

        (void)state;
        check_unescape("\"abc\"", S("abc"));
        check_unescape("\"\"", S(""));
        check_unescape("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
                       S("a\"b\\c/d\b\f\n\r\t"));
        check_unescape("\"\\u0041\\u00e9\\u00E9\"", S("A\xc3\xa9\xc3\xa9"));
        check_unescape("\"\\u20AC\"", S("\xe2\x82\xac"));
        check_unescape("\"\\uffff\"", S("\xef\xbf\xbf"));
        check_unescape("\"\\u07ff\\u0800\"", S("\xdf\xbf\xe0\xa0\x80"));
        check_unescape("\"\\uD83D\\uDE00\"", S("\xf0\x9f\x98\x80"));
        check_unescape("\"\\ud83d\\ude00\"", S("\xf0\x9f\x98\x80"));
        check_unescape("\"\\uDBFF\\uDFFF\"", S("\xf4\x8f\xbf\xbf"));
        check_unescape("\"\\uD800\\uDC00\"", S("\xf0\x90\x80\x80"));
        /* Lone surrogates become U+FFFD. */
        check_unescape("\"\\uD83Dx\"", S("\xef\xbf\xbdx"));
        check_unescape("\"\\uD83D\"", S("\xef\xbf\xbd"));
        check_unescape("\"\\uDE00\"", S("\xef\xbf\xbd"));
        check_unescape("\"\\uDE00\\uD83D\"", S("\xef\xbf\xbd\xef\xbf\xbd"));
        check_unescape("\"\\uD83D\\uD83D\\uDE00\"",
                       S("\xef\xbf\xbd\xf0\x9f\x98\x80"));
        check_unescape("\"\\uD83D\\n\"", S("\xef\xbf\xbd\n"));
        check_unescape("\"\\uD83D\\u0041\"", S("\xef\xbf\xbd"
                                               "A"));
        /* U+0000 is a real NUL byte, counted in the length. */
        check_unescape("\"a\\u0000b\"", S("a\0b"));
        check_unescape("\"\\u0000\"", S("\0"));
        /* Raw UTF-8 passes through. */
        check_unescape("\"\xc3\xa9\xf0\x9f\x98\x80\"",
                       S("\xc3\xa9\xf0\x9f\x98\x80"));

        assert_int_equal(pxl_json_unescape(NULL, 0, out, sizeof(out)), 0);
        assert_string_equal(out, "");
        assert_int_equal(pxl_json_unescape(S("\"abc\""), out, 0), -1);
        assert_int_equal(pxl_json_unescape(S("\"abc\""), out, 3), -1);
        assert_int_equal(pxl_json_unescape(S("\"abc\""), out, 4), 3);
        assert_string_equal(out, "abc");
}

static void check_escape(const char *s, size_t len, const char *want)
{
        char out[256];
        size_t n = pxl_json_escape(out, sizeof(out), s, len);

        assert_int_equal(n, strlen(want));
        assert_string_equal(out, want);
}

static void test_escape(void **state)
{
        char out[300], back[300];

        (void)state;
        check_escape(S(""), "\"\"");
        check_escape(S("abc"), "\"abc\"");
        check_escape(S("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");
        check_escape(S("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
        check_escape(S("\x01\x1f\x7f"), "\"\\u0001\\u001f\x7f\"");
        check_escape(S("\0"), "\"\\u0000\"");
        check_escape(S("\xc3\xa9\xf0\x9f\x98\x80"),
                     "\"\xc3\xa9\xf0\x9f\x98\x80\"");

        /* snprintf rules: full length back, truncated, NUL-terminated. */
        memset(out, 'x', sizeof(out));
        assert_int_equal(pxl_json_escape(out, 4, S("a\nb")), 6);
        assert_string_equal(out, "\"a\\");
        assert_int_equal(out[4], 'x');
        assert_int_equal(pxl_json_escape(out, 6, S("a\nb")), 6);
        assert_string_equal(out, "\"a\\nb");
        assert_int_equal(pxl_json_escape(out, 7, S("a\nb")), 6);
        assert_string_equal(out, "\"a\\nb\"");
        assert_int_equal(pxl_json_escape(NULL, 0, S("a\nb")), 6);
        assert_int_equal(pxl_json_escape(out, sizeof(out), NULL, 0), 2);
        assert_string_equal(out, "\"\"");

        /* Round trip of every ASCII byte through escape and unescape. */
        for (int c = 0; c < 0x80; c++) {
                char ch = (char)c;
                size_t n = pxl_json_escape(out, sizeof(out), &ch, 1);

                assert_true(n < sizeof(out));
                assert_true(pxl_json_valid(out, n, 1));
                assert_int_equal(pxl_json_unescape(out, n, back, sizeof(back)),
                                 1);
                assert_int_equal(back[0], ch);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_documents),
                cmocka_unit_test(test_invalid_documents),
                cmocka_unit_test(test_prefixes_invalid),
                cmocka_unit_test(test_depth),
                cmocka_unit_test(test_envelope_ok),
                cmocka_unit_test(test_envelope_keys),
                cmocka_unit_test(test_envelope_order),
                cmocka_unit_test(test_envelope_request_id),
                cmocka_unit_test(test_envelope_response),
                cmocka_unit_test(test_find),
                cmocka_unit_test(test_int64),
                cmocka_unit_test(test_unescape),
                cmocka_unit_test(test_escape),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
