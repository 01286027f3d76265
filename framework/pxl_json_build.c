/*
 * pxl_json_build.c - builds json-c objects from JSON text pxl_json_valid
 * accepted (a message's data, for pxl_msg_data), keeping numbers as sent
 * where json-c's tokener saturates big integers. Validation, the envelope
 * and string decoding belong to pxl_json.c; this file walks and allocates.
 */
#include <limits.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_json.h"
#include "pxl_text.h"

#define INLINE_DEPTH 32
#define INLINE_KEY   64
#define INLINE_VAL   128

struct frame {
        struct json_object *o;
        bool obj;
};

/* A decode buffer: inline until something longer comes along. */
struct scratch {
        char *p;
        size_t cap;
};

struct builder {
        struct frame *stack; /* open containers, outermost first */
        unsigned depth, cap, max_depth;
        struct scratch key, val;
        locale_t c_locale;
        struct json_object *root;
        struct frame inline_stack[INLINE_DEPTH];
        char inline_key[INLINE_KEY];
        char inline_val[INLINE_VAL];
};

/* Room for n bytes; the old contents are not kept. */
static bool reserve(struct scratch *s, char *inl, size_t n)
{
        char *p;

        if (n <= s->cap)
                return true;
        if (n / 2 < s->cap)
                n = 2 * s->cap;
        p = malloc(n);
        if (p == NULL)
                return false;
        if (s->p != inl)
                free(s->p);
        s->p = p;
        s->cap = n;
        return true;
}

/*
 * p is at an opening quote. Returns the closing quote, or NULL if there is
 * none before end; *esc tells whether the string has escapes.
 */
static const char *string_end(const char *p, const char *end, bool *esc)
{
        const char *s = p + 1, *quote, *q;

        quote = memchr(s, '"', (size_t)(end - s));
        if (quote == NULL)
                return NULL;
        q = memchr(s, '\\', (size_t)(quote - s));
        *esc = q != NULL;
        if (q == NULL)
                return quote;
        while (q < end) {
                if (*q == '"')
                        return q;
                if (*q != '\\')
                        q++;
                else if (end - q < 2)
                        return NULL;
                else
                        q += 2;
        }
        return NULL;
}

/* Decode the string token [p, q] (quotes included) into s. */
static int decode(struct scratch *s, char *inl, const char *p, const char *q,
                  bool esc, size_t *n)
{
        size_t tok_len = (size_t)(q - p) + 1;
        ssize_t k;

        if (!reserve(s, inl, tok_len))
                return PXL_ENOMEM;
        if (!esc) {
                *n = tok_len - 2;
                memcpy(s->p, p + 1, *n);
                s->p[*n] = '\0';
                return PXL_OK;
        }
        k = pxl_json_unescape(p, tok_len, s->p, s->cap);
        if (k < 0)
                return PXL_EINVAL;
        *n = (size_t)k;
        return PXL_OK;
}

/* Returns the end of the number at p; *is_int when it has no . e E. */
static const char *number_end(const char *p, const char *end, bool *is_int)
{
        *is_int = true;
        for (; p < end; p++) {
                char c = *p;

                if ((c >= '0' && c <= '9') || c == '-')
                        continue;
                if (c == '.' || c == 'e' || c == 'E' || c == '+')
                        *is_int = false;
                else
                        break;
        }
        return p;
}

/*
 * A fraction, an exponent or an integer outside int64: a double whose
 * serialisation is the text as sent. strtod_l in the C locale, so a
 * plugin's setlocale() cannot change what "1.5" means (json-c's tokener
 * switches locales for the same reason).
 */
static struct json_object *new_number_text(struct builder *b, const char *p,
                                           size_t n, int *rc)
{
        struct json_object *v;
        double d;

        if (!reserve(&b->val, b->inline_val, n + 1)) {
                *rc = PXL_ENOMEM;
                return NULL;
        }
        memcpy(b->val.p, p, n);
        b->val.p[n] = '\0';
        if (b->c_locale == (locale_t)0)
                b->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        if (b->c_locale != (locale_t)0)
                d = strtod_l(b->val.p, NULL, b->c_locale);
        else
                d = strtod(b->val.p, NULL);
        v = json_object_new_double_s(d, b->val.p);
        if (v == NULL)
                *rc = PXL_ENOMEM;
        return v;
}

/*
 * Add v to the innermost open container under key (objects), or make it
 * the root. Takes v: on failure it is put here.
 */
static int attach(struct builder *b, struct json_object *v)
{
        struct frame *top;
        int r;

        if (b->depth == 0) {
                b->root = v;
                return PXL_OK;
        }
        top = &b->stack[b->depth - 1];
        if (top->obj)
                r = json_object_object_add(top->o, b->key.p, v);
        else
                r = json_object_array_add(top->o, v);
        if (r != 0) {
                json_object_put(v);
                return PXL_ENOMEM;
        }
        return PXL_OK;
}

static int push(struct builder *b, struct json_object *o, bool obj)
{
        if (b->depth == b->cap) {
                unsigned cap =
                        b->cap * 2 < b->max_depth ? b->cap * 2 : b->max_depth;
                struct frame *s = malloc(cap * sizeof(*s));

                if (s == NULL)
                        return PXL_ENOMEM;
                memcpy(s, b->stack, b->depth * sizeof(*s));
                if (b->stack != b->inline_stack)
                        free(b->stack);
                b->stack = s;
                b->cap = cap;
        }
        b->stack[b->depth].o = o;
        b->stack[b->depth].obj = obj;
        b->depth++;
        return PXL_OK;
}

/* Object or array at *p: create, attach, open. */
static int open_container(struct builder *b, const char *p)
{
        bool obj = *p == '{';
        struct json_object *o;
        int rc;

        if (b->depth >= b->max_depth)
                return PXL_EINVAL;
        o = obj ? json_object_new_object() : json_object_new_array();
        if (o == NULL)
                return PXL_ENOMEM;
        rc = attach(b, o);
        if (rc != PXL_OK)
                return rc;
        /* Attached, so the root frees o if the push fails. */
        return push(b, o, obj);
}

/* The scalar at *pp; advances *pp past it. */
static int scalar(struct builder *b, const char **pp, const char *end)
{
        const char *p = *pp, *q;
        struct json_object *v = NULL;
        int rc = PXL_OK;
        int64_t i;
        bool flag;
        size_t n;

        switch (*p) {
        case '"':
                q = string_end(p, end, &flag);
                if (q == NULL)
                        return PXL_EINVAL;
                if (!flag) {
                        n = (size_t)(q - p) - 1;
                        if (n > INT_MAX)
                                return PXL_EINVAL;
                        v = json_object_new_string_len(p + 1, (int)n);
                } else {
                        rc = decode(&b->val, b->inline_val, p, q, true, &n);
                        if (rc != PXL_OK)
                                return rc;
                        if (n > INT_MAX)
                                return PXL_EINVAL;
                        v = json_object_new_string_len(b->val.p, (int)n);
                }
                if (v == NULL)
                        return PXL_ENOMEM;
                *pp = q + 1;
                break;
        case 't':
        case 'f':
                flag = *p == 't';
                n = flag ? 4 : 5;
                if ((size_t)(end - p) < n ||
                    memcmp(p, flag ? "true" : "false", n) != 0)
                        return PXL_EINVAL;
                v = json_object_new_boolean(flag);
                if (v == NULL)
                        return PXL_ENOMEM;
                *pp = p + n;
                break;
        case 'n':
                if (end - p < 4 || memcmp(p, "null", 4) != 0)
                        return PXL_EINVAL;
                *pp = p + 4; /* v stays NULL: json-c's null */
                break;
        default:
                q = number_end(p, end, &flag);
                if (q == p)
                        return PXL_EINVAL;
                if (flag && pxl_json_int64(p, (size_t)(q - p), &i)) {
                        v = json_object_new_int64(i);
                        if (v == NULL)
                                return PXL_ENOMEM;
                } else {
                        v = new_number_text(b, p, (size_t)(q - p), &rc);
                        if (v == NULL)
                                return rc;
                }
                *pp = q;
                break;
        }
        return attach(b, v);
}

/* The member name at *pp (a string, then ':') into b->key. */
static int member_key(struct builder *b, const char **pp, const char *end)
{
        const char *p = pxl_json_skip_ws(*pp, end), *q;
        bool esc;
        size_t n;
        int rc;

        if (p == end || *p != '"')
                return PXL_EINVAL;
        q = string_end(p, end, &esc);
        if (q == NULL)
                return PXL_EINVAL;
        /* json-c keys are C strings: one with U+0000 ends there. */
        rc = decode(&b->key, b->inline_key, p, q, esc, &n);
        if (rc != PXL_OK)
                return rc;
        p = pxl_json_skip_ws(q + 1, end);
        if (p == end || *p != ':')
                return PXL_EINVAL;
        *pp = p + 1;
        return PXL_OK;
}

/*
 * The walk mirrors pxl_json.c's scan: iterative, with an explicit stack of
 * open containers. Every object is attached to its parent (or is the
 * root) as soon as it exists, so putting the root frees all of it.
 */
static int walk(struct builder *b, const char *p, const char *end)
{
        struct frame *top;
        int rc;

value:
        p = pxl_json_skip_ws(p, end);
        if (p == end)
                return PXL_EINVAL;
        if (*p == '{' || *p == '[') {
                rc = open_container(b, p);
                if (rc != PXL_OK)
                        return rc;
                p = pxl_json_skip_ws(p + 1, end);
                if (p < end && *p == (b->stack[b->depth - 1].obj ? '}' : ']'))
                        goto close;
                if (b->stack[b->depth - 1].obj)
                        goto key;
                goto value;
        }
        rc = scalar(b, &p, end);
        if (rc != PXL_OK)
                return rc;
after:
        p = pxl_json_skip_ws(p, end);
        if (b->depth == 0)
                return p == end ? PXL_OK : PXL_EINVAL;
        if (p == end)
                return PXL_EINVAL;
        top = &b->stack[b->depth - 1];
        if (*p == ',') {
                p++;
                if (top->obj)
                        goto key;
                goto value;
        }
        if (*p != (top->obj ? '}' : ']'))
                return PXL_EINVAL;
close:
        p++;
        b->depth--;
        goto after;
key:
        rc = member_key(b, &p, end);
        if (rc != PXL_OK)
                return rc;
        goto value;
}

int pxl_json_build(const char *buf, size_t len, unsigned max_depth,
                   struct json_object **out)
{
        struct builder b;
        int rc;

        *out = NULL;
        if (len == 0)
                return PXL_EINVAL; /* an empty span may come as NULL, 0 */
        b.stack = b.inline_stack;
        b.depth = 0;
        b.cap = INLINE_DEPTH;
        b.max_depth =
                max_depth > PXL_JSON_DEPTH_CAP ? PXL_JSON_DEPTH_CAP : max_depth;
        b.key.p = b.inline_key;
        b.key.cap = INLINE_KEY;
        b.val.p = b.inline_val;
        b.val.cap = INLINE_VAL;
        b.c_locale = (locale_t)0;
        b.root = NULL;
        rc = walk(&b, buf, buf + len);
        if (b.stack != b.inline_stack)
                free(b.stack);
        if (b.key.p != b.inline_key)
                free(b.key.p);
        if (b.val.p != b.inline_val)
                free(b.val.p);
        if (b.c_locale != (locale_t)0)
                freelocale(b.c_locale);
        if (rc != PXL_OK) {
                json_object_put(b.root);
                return rc;
        }
        *out = b.root;
        return PXL_OK;
}
