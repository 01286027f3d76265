/*
 * fuzz_json.c - libFuzzer harness for pxl_json.c. Cross-checks
 * pxl_json_valid against json-c's strict mode, checks that envelope spans
 * lie inside the input and are valid JSON themselves, that pxl_json_find
 * agrees with the envelope, that pxl_json_int64 agrees with strtoll, and
 * round-trips strings through unescape and escape. Not a test of json-c
 * itself.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "pxl_json.h"

#define DEPTH 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* json-c strict verdict: 1 accepted, 0 rejected, -1 "continue" at end. */
static int jsonc_verdict(const char *s, size_t len)
{
        /*
         * json-c counts nesting differently (an object member can take
         * two levels): give it room, and compare only inputs whose
         * nesting is well inside both limits (see shallow()).
         */
        struct json_tokener *tok = json_tokener_new_ex(DEPTH * 2);
        struct json_object *o;
        enum json_tokener_error e;
        int v;

        if (tok == NULL)
                abort();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, s, (int)len);
        e = json_tokener_get_error(tok);
        if (e == json_tokener_success)
                v = json_tokener_get_parse_end(tok) == len ? 1 : 0;
        else if (e == json_tokener_continue)
                v = -1;
        else
                v = 0;
        json_object_put(o);
        json_tokener_free(tok);
        return v;
}

/* True when no value nests anywhere near DEPTH containers. */
static bool shallow(const char *s, size_t len)
{
        size_t openers = 0;

        for (size_t i = 0; i < len; i++)
                openers += s[i] == '[' || s[i] == '{';
        return openers < DEPTH - 2;
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/*
 * Inputs on which json-c strict and RFC 8259 should agree: no single
 * quotes, no N/I (NaN, Infinity), no control bytes (raw tabs in strings),
 * ASCII only, no "0" followed by a digit and no '.' without a digit on
 * both sides: json-c 0.16 strict takes "00", "[-01]", "-.5", "1." and
 * "0.e1" (it refuses only a plain "01", "+1" and ".5").
 */
static bool plain_alphabet(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c < 0x20)
                        return false;
                if (c >= 0x7f || c == '\'' || c == 'N' || c == 'I' || c == 'i')
                        return false;
                if (c == '0' && i + 1 < len && is_digit(s[i + 1]))
                        return false;
                if (c == '.' && (i == 0 || !is_digit(s[i - 1]) ||
                                 i + 1 == len || !is_digit(s[i + 1])))
                        return false;
        }
        return true;
}

static void check_span(const char *buf, size_t len,
                       const struct pxl_json_span *sp)
{
        if (sp->kind == PXL_JSON_NONE) {
                if (sp->p != NULL || sp->len != 0)
                        abort();
                return;
        }
        if (sp->p < buf || sp->len == 0 || sp->len > len ||
            (size_t)(sp->p - buf) > len - sp->len)
                abort();
        /* A member's value is a JSON document of its own. */
        if (!pxl_json_valid(sp->p, sp->len, DEPTH))
                abort();
        if ((sp->kind == PXL_JSON_STRING) != (sp->p[0] == '"'))
                abort();
        if ((sp->kind == PXL_JSON_OBJECT) != (sp->p[0] == '{'))
                abort();
        if ((sp->kind == PXL_JSON_ARRAY) != (sp->p[0] == '['))
                abort();
}

/* unescape, escape, unescape again: same bytes; the escape is valid. */
static void round_trip(const char *tok, size_t len)
{
        char *a = malloc(len), *b = malloc(len), *esc;
        ssize_t n, m;
        size_t e;

        if (a == NULL || b == NULL)
                abort();
        n = pxl_json_unescape(tok, len, a, len);
        if (n < 0 || (size_t)n >= len || a[n] != '\0')
                abort();
        e = pxl_json_escape(NULL, 0, a, (size_t)n);
        esc = malloc(e + 1);
        if (esc == NULL)
                abort();
        if (pxl_json_escape(esc, e + 1, a, (size_t)n) != e || esc[e] != '\0')
                abort();
        if (!pxl_json_valid(esc, e, 0))
                abort();
        m = pxl_json_unescape(esc, e, b, len);
        if (m != n || memcmp(a, b, (size_t)n) != 0)
                abort();
        free(esc);
        free(a);
        free(b);
}

static bool same_span(const struct pxl_json_span *a,
                      const struct pxl_json_span *b)
{
        return a->p == b->p && a->len == b->len && a->kind == b->kind;
}

/* The one-key lookup finds what the envelope found, in the same pass. */
static void check_find(const char *s, size_t size,
                       const struct pxl_envelope *env)
{
        struct pxl_json_span f;

        if (pxl_json_find(s, size, "type", &f) !=
                    (env->type.kind != PXL_JSON_NONE) ||
            !same_span(&f, &env->type))
                abort();
        if (pxl_json_find(s, size, "response", &f) !=
                    (env->response.kind != PXL_JSON_NONE) ||
            !same_span(&f, &env->response))
                abort();
        if (pxl_json_find(s, size, "data", &f) !=
                    (env->data.kind != PXL_JSON_NONE) ||
            !same_span(&f, &env->data))
                abort();
}

/* pxl_json_int64 takes exactly -?[0-9]+ within int64, as strtoll reads it. */
static void check_int64(const char *s, size_t size)
{
        char *z = malloc(size + 1), *end;
        bool digits = size > 0;
        long long ll;
        int64_t v;
        bool ok;

        if (z == NULL)
                abort();
        memcpy(z, s, size);
        z[size] = '\0';
        for (size_t i = 0; i < size; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (i == 0 && s[i] == '-')))
                        digits = false;
        if (size == 1 && s[0] == '-')
                digits = false;
        ok = pxl_json_int64(s, size, &v);
        errno = 0;
        ll = digits ? strtoll(z, &end, 10) : 0;
        if (ok != (digits && errno == 0))
                abort();
        if (ok && (end != z + size || ll != v))
                abort();
        free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *s = (const char *)data;
        struct pxl_envelope env;
        enum pxl_envelope_status st;
        bool ok = pxl_json_valid(s, size, DEPTH);
        int jc;

        if (size > (1u << 20))
                return 0;
        if (!shallow(s, size))
                goto envelope; /* the two depth limits are not comparable */
        jc = jsonc_verdict(s, size);
        if (ok && jc == 0)
                abort(); /* we accepted what json-c strict refuses */
        if (ok && jc < 0) {
                /* Only a complete scalar may leave json-c wanting more. */
                size_t i = 0;

                while (i < size && strchr(" \t\r\n", s[i]) != NULL)
                        i++;
                if (i == size || s[i] == '{' || s[i] == '[')
                        abort();
        }
        if (!ok && jc == 1 && plain_alphabet(s, size))
                abort(); /* we refused plain RFC 8259 that json-c took */
envelope:
        st = pxl_json_envelope(s, size, DEPTH, &env);
        if ((st == PXL_ENV_PARSE_ERROR) == ok)
                abort();
        check_span(s, size, &env.type);
        check_span(s, size, &env.action);
        check_span(s, size, &env.data);
        check_span(s, size, &env.request_id);
        if (st == PXL_ENV_OK || st == PXL_ENV_NO_ACTION) {
                if (env.type.kind != PXL_JSON_STRING || env.type.len < 3)
                        abort();
        }
        if (st == PXL_ENV_OK) {
                if (env.action.kind != PXL_JSON_STRING || env.action.len < 3)
                        abort();
                round_trip(env.type.p, env.type.len);
                round_trip(env.action.p, env.action.len);
        }
        if (env.request_id.kind != PXL_JSON_NONE &&
            env.request_id.kind != PXL_JSON_STRING &&
            env.request_id.kind != PXL_JSON_NUMBER)
                abort();
        check_span(s, size, &env.response);
        if (ok)
                check_find(s, size, &env);
        if (env.request_id.kind == PXL_JSON_NUMBER)
                check_int64(env.request_id.p, env.request_id.len);
        if (size <= 32)
                check_int64(s, size);
        if (ok && s[0] == '"' && s[size - 1] == '"')
                round_trip(s, size);

        /* The unescaper must be safe on any bytes, validated or not. */
        {
                char *out = malloc(size + 1);

                if (out == NULL)
                        abort();
                if (pxl_json_unescape(s, size, out, size + 1) < 0)
                        abort();
                free(out);
        }
        return 0;
}
