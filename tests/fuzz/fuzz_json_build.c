/*
 * fuzz_json_build.c - libFuzzer harness for pxl_json_build.c. On valid
 * JSON the build succeeds, its output is valid JSON that builds to an equal
 * tree, numbers come out as sent and json-c's tokener agrees where it does
 * not saturate; on anything else the build only has to be memory-safe.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_json.h"

#define DEPTH 64
#define FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *serialise(struct json_object *o, size_t *n)
{
        if (o == NULL) {
                *n = 4;
                return "null";
        }
        return json_object_to_json_string_length(o, FLAGS, n);
}

static bool has_object(struct json_object *o)
{
        size_t n;

        if (json_object_is_type(o, json_type_object))
                return true;
        if (!json_object_is_type(o, json_type_array))
                return false;
        n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++)
                if (has_object(json_object_array_get_idx(o, i)))
                        return true;
        return false;
}

/*
 * The next number token outside strings in [*p, end), as [*tok, *p).
 * Structural characters other than numbers and strings are skipped.
 */
static bool next_number(const char **p, const char *end, const char **tok)
{
        const char *q = *p;

        while (q < end) {
                if (*q == '"') {
                        for (q++; q < end && *q != '"'; q++)
                                if (*q == '\\')
                                        q++;
                        q++;
                } else if (*q == '-' || (*q >= '0' && *q <= '9')) {
                        *tok = q;
                        while (q < end && strchr("0123456789+-.eE", *q) &&
                               *q != '\0')
                                q++;
                        *p = q;
                        return true;
                } else {
                        q++;
                }
        }
        *p = end;
        return false;
}

/*
 * Without objects nothing is dropped or reordered, so the number tokens
 * of input and output must match one for one ("-0" prints as "0").
 */
static void check_numbers(const char *in, size_t in_len, const char *out,
                          size_t out_len)
{
        const char *p = in, *pe = in + in_len, *q = out, *qe = out + out_len;
        const char *a, *b;

        for (;;) {
                bool more = next_number(&p, pe, &a);

                if (more != next_number(&q, qe, &b))
                        abort();
                if (!more)
                        return;
                if ((size_t)(p - a) == 2 && memcmp(a, "-0", 2) == 0) {
                        if ((size_t)(q - b) != 1 || *b != '0')
                                abort();
                } else if (p - a != q - b ||
                           memcmp(a, b, (size_t)(p - a)) != 0) {
                        abort();
                }
        }
}

/* An integer json-c's tokener would saturate, or keep as uint64. */
static bool has_long_digit_run(const char *s, size_t len)
{
        size_t run = 0;

        for (size_t i = 0; i < len; i++) {
                run = s[i] >= '0' && s[i] <= '9' ? run + 1 : 0;
                if (run >= 19)
                        return true;
        }
        return false;
}

/* json-c counts the innermost scalar as a level too, hence DEPTH + 1. */
static struct json_object *tokener(const char *s, size_t len)
{
        struct json_tokener *tok = json_tokener_new_ex(DEPTH + 1);
        struct json_object *o;

        if (tok == NULL)
                abort();
        o = json_tokener_parse_ex(tok, s, (int)len);
        if (o == NULL && json_tokener_get_error(tok) == json_tokener_continue)
                o = json_tokener_parse_ex(tok, "", 1);
        if (json_tokener_get_error(tok) != json_tokener_success)
                abort();
        json_tokener_free(tok);
        return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *s = (const char *)data, *t;
        struct json_object *a = (struct json_object *)1, *b, *c;
        size_t n, m;
        int rc;

        if (size > (1u << 20))
                return 0;
        rc = pxl_json_build(s, size, DEPTH, &a);
        if (rc != PXL_OK && a != NULL)
                abort();
        if (!pxl_json_valid(s, size, DEPTH)) {
                json_object_put(a);
                return 0;
        }
        if (rc != PXL_OK)
                abort();

        t = serialise(a, &n);
        if (!pxl_json_valid(t, n, DEPTH))
                abort();
        b = (struct json_object *)1;
        if (pxl_json_build(t, n, DEPTH, &b) != PXL_OK)
                abort();
        if (!json_object_equal(a, b))
                abort();
        /* Idempotent: number texts survive a second trip. */
        if (strcmp(serialise(b, &m), t) != 0 || m != n)
                abort();
        if (!has_object(a))
                check_numbers(s, size, t, n);

        if (!has_long_digit_run(s, size)) {
                c = tokener(s, size);
                if (!json_object_equal(a, c))
                        abort();
                json_object_put(c);
        }
        json_object_put(b);
        json_object_put(a);
        return 0;
}
