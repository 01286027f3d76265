/*
 * pxl_json.c - one-pass strict RFC 8259 validation that also picks out the
 * top-level envelope keys (or any one top-level key), plus string
 * unescape/escape and reading an integer. Pure: no allocation, no globals,
 * no json-c; UTF-8 rules are pxl_utf8's. Building json_objects for
 * handlers and routing on the envelope belong elsewhere (pxl_router.c).
 */
#include <stdint.h>
#include <string.h>

#include "pxl_json.h"
#include "pxl_text.h"
#include "pxl_utf8.h"

/* Four hex digits at p (the caller made sure they are there), or -1. */
static long hex4(const char *p)
{
        long v = 0;

        for (int i = 0; i < 4; i++) {
                int h = pxl_hexval(p[i]);

                if (h < 0)
                        return -1;
                v = v << 4 | h;
        }
        return v;
}

#define ONES UINT64_C(0x0101010101010101)

/*
 * True when none of the 8 bytes at p is a quote, a backslash or a control
 * character; their bits are then ORed into *seen. (x - ONES * k) & ~x has
 * a high bit set exactly when some byte of x is below k (k <= 0x80).
 */
static bool plain8(const unsigned char *p, uint64_t *seen)
{
        uint64_t w, q, b;

        memcpy(&w, p, sizeof(w)); /* legal at any alignment */
        q = w ^ ONES * '"';
        b = w ^ ONES * '\\';
        if ((((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - ONES * 0x20) & ~w)) &
            ONES * 0x80)
                return false;
        *seen |= w;
        return true;
}

/*
 * p is at the opening quote; returns just past the closing one, or NULL.
 * Escapes are ASCII, so a string with any byte >= 0x80 in it is checked
 * by pxl_utf8 in one go once its closing quote is found.
 */
static const char *scan_string(const char *s, const char *end)
{
        const unsigned char *b = (const unsigned char *)s + 1, *p = b;
        const unsigned char *e = (const unsigned char *)end;
        uint64_t seen = 0;

        while (p < e) {
                unsigned c;

                if (e - p >= 8 && plain8(p, &seen)) {
                        p += 8;
                        continue;
                }
                c = *p;
                if (c == '"') {
                        if ((seen & ONES * 0x80) != 0 &&
                            !pxl_utf8_valid(b, (size_t)(p - b)))
                                return NULL;
                        return (const char *)p + 1;
                }
                if (c == '\\') {
                        if (e - p < 2)
                                return NULL;
                        switch (p[1]) {
                        case '"':
                        case '\\':
                        case '/':
                        case 'b':
                        case 'f':
                        case 'n':
                        case 'r':
                        case 't':
                                p += 2;
                                break;
                        case 'u':
                                if (e - p < 6 || hex4((const char *)p + 2) < 0)
                                        return NULL;
                                p += 6;
                                break;
                        default:
                                return NULL;
                        }
                } else if (c < 0x20) {
                        return NULL;
                } else {
                        seen |= c;
                        p++;
                }
        }
        return NULL;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static const char *scan_number(const char *p, const char *end)
{
        if (*p == '-')
                p++;
        if (p == end)
                return NULL;
        if (*p == '0')
                p++;
        else if (*p >= '1' && *p <= '9')
                while (p < end && pxl_is_digit(*p))
                        p++;
        else
                return NULL;
        if (p < end && *p == '.') {
                p++;
                if (p == end || !pxl_is_digit(*p))
                        return NULL;
                while (p < end && pxl_is_digit(*p))
                        p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                        p++;
                if (p == end || !pxl_is_digit(*p))
                        return NULL;
                while (p < end && pxl_is_digit(*p))
                        p++;
        }
        return p;
}

static const char *scan_literal(const char *p, const char *end, const char *lit,
                                size_t n)
{
        if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
                return NULL;
        return p + n;
}

/*
 * Where the value of a top-level key goes (the key decoded: k[0..n)), or
 * NULL when the caller does not want it.
 */
typedef struct pxl_json_span *pick_fn(const char *k, size_t n, void *arg);

/* The slot for the key token tok[0..tok_len), quotes included. */
static struct pxl_json_span *slot_for(const char *tok, size_t tok_len,
                                      pick_fn *pick, void *arg)
{
        char k[PXL_JSON_KEY_MAX + 1];
        ssize_t n;

        /* Most keys have no escapes: their bytes are their text. */
        if (memchr(tok, '\\', tok_len) == NULL)
                return pick(tok + 1, tok_len - 2, arg);
        n = pxl_json_unescape(tok, tok_len, k, sizeof(k));
        return n < 0 ? NULL : pick(k, (size_t)n, arg);
}

/*
 * The single pass behind pxl_json_valid, pxl_json_envelope and
 * pxl_json_find. It keeps one bit per open container (1 = object) instead
 * of recursing, so a deep document costs no C stack beyond the fixed
 * bitmap. With pick, members of the top-level object that it wants are
 * recorded on the way.
 */
static bool scan(const char *buf, size_t len, unsigned max_depth, pick_fn *pick,
                 void *arg, enum pxl_json_kind *top)
{
        uint64_t objs[PXL_JSON_DEPTH_CAP / 64];
        const char *p = buf, *end, *k;
        struct pxl_json_span *slot = NULL;
        enum pxl_json_kind kind;
        unsigned depth = 0;

        if (len == 0)
                return false; /* an empty frame may come as NULL, 0 */
        end = buf + len;
        if (max_depth > PXL_JSON_DEPTH_CAP)
                max_depth = PXL_JSON_DEPTH_CAP;
value:
        p = pxl_json_skip_ws(p, end);
        if (p == end)
                return false;
        k = p;
        switch (*p) {
        case '{':
        case '[':
                if (depth == max_depth)
                        return false;
                kind = *p == '{' ? PXL_JSON_OBJECT : PXL_JSON_ARRAY;
                if (depth % 64 == 0)
                        objs[depth / 64] = 0; /* a word's first use */
                if (kind == PXL_JSON_OBJECT)
                        objs[depth / 64] |= UINT64_C(1) << depth % 64;
                else
                        objs[depth / 64] &= ~(UINT64_C(1) << depth % 64);
                break;
        case '"':
                kind = PXL_JSON_STRING;
                p = scan_string(p, end);
                break;
        case 't':
                kind = PXL_JSON_TRUE;
                p = scan_literal(p, end, "true", 4);
                break;
        case 'f':
                kind = PXL_JSON_FALSE;
                p = scan_literal(p, end, "false", 5);
                break;
        case 'n':
                kind = PXL_JSON_NULL;
                p = scan_literal(p, end, "null", 4);
                break;
        default:
                kind = PXL_JSON_NUMBER;
                p = scan_number(p, end);
                break;
        }
        if (p == NULL)
                return false;
        if (depth == 0)
                *top = kind;
        else if (depth == 1 && slot != NULL) {
                slot->p = k;
                slot->kind = kind;
        }
        if (kind == PXL_JSON_OBJECT || kind == PXL_JSON_ARRAY) {
                depth++;
                p = pxl_json_skip_ws(p + 1, end);
                if (p < end && *p == (kind == PXL_JSON_OBJECT ? '}' : ']'))
                        goto close;
                if (kind == PXL_JSON_OBJECT)
                        goto key;
                goto value;
        }
after:
        if (depth == 1 && slot != NULL) {
                slot->len = (size_t)(p - slot->p);
                slot = NULL;
        }
        p = pxl_json_skip_ws(p, end);
        if (depth == 0)
                return p == end;
        if (p == end)
                return false;
        if (objs[(depth - 1) / 64] & UINT64_C(1) << (depth - 1) % 64) {
                if (*p == '}')
                        goto close;
                if (*p != ',')
                        return false;
                p++;
                goto key;
        }
        if (*p == ']')
                goto close;
        if (*p != ',')
                return false;
        p++;
        goto value;
close:
        p++;
        depth--;
        goto after;
key:
        p = pxl_json_skip_ws(p, end);
        if (p == end || *p != '"')
                return false;
        k = p;
        p = scan_string(p, end);
        if (p == NULL)
                return false;
        if (pick != NULL && depth == 1)
                slot = slot_for(k, (size_t)(p - k), pick, arg);
        p = pxl_json_skip_ws(p, end);
        if (p == end || *p != ':')
                return false;
        p++;
        goto value;
}

bool pxl_json_valid(const char *buf, size_t len, unsigned max_depth)
{
        enum pxl_json_kind top;

        return scan(buf, len, max_depth, NULL, NULL, &top);
}

static struct pxl_json_span *envelope_slot(const char *k, size_t n, void *arg)
{
        struct pxl_envelope *env = arg;

        if (n == 4 && memcmp(k, "type", 4) == 0)
                return &env->type;
        if (n == 6 && memcmp(k, "action", 6) == 0)
                return &env->action;
        if (n == 4 && memcmp(k, "data", 4) == 0)
                return &env->data;
        if (n == 9 && memcmp(k, "requestId", 9) == 0)
                return &env->request_id;
        if (n == 8 && memcmp(k, "response", 8) == 0)
                return &env->response;
        return NULL;
}

static bool nonempty_string(const struct pxl_json_span *s)
{
        return s->kind == PXL_JSON_STRING && s->len > 2;
}

enum pxl_envelope_status pxl_json_envelope(const char *buf, size_t len,
                                           unsigned max_depth,
                                           struct pxl_envelope *env)
{
        enum pxl_json_kind top = PXL_JSON_NONE;

        memset(env, 0, sizeof(*env));
        if (!scan(buf, len, max_depth, envelope_slot, env, &top)) {
                memset(env, 0, sizeof(*env));
                return PXL_ENV_PARSE_ERROR;
        }
        if (top != PXL_JSON_OBJECT)
                return PXL_ENV_NOT_OBJECT;
        /* PROTOCOL.md: only strings and numbers are echoed back. */
        if (env->request_id.kind != PXL_JSON_STRING &&
            env->request_id.kind != PXL_JSON_NUMBER)
                memset(&env->request_id, 0, sizeof(env->request_id));
        if (!nonempty_string(&env->type))
                return PXL_ENV_NO_TYPE;
        if (!nonempty_string(&env->action))
                return PXL_ENV_NO_ACTION;
        return PXL_ENV_OK;
}

struct find {
        const char *key;
        size_t len;
        struct pxl_json_span *out;
};

static struct pxl_json_span *find_slot(const char *k, size_t n, void *arg)
{
        const struct find *f = arg;

        return n == f->len && memcmp(k, f->key, n) == 0 ? f->out : NULL;
}

bool pxl_json_find(const char *buf, size_t len, const char *key,
                   struct pxl_json_span *out)
{
        struct find f = {key, strlen(key), out};
        enum pxl_json_kind top = PXL_JSON_NONE;

        memset(out, 0, sizeof(*out));
        if (!scan(buf, len, PXL_JSON_DEPTH_CAP, find_slot, &f, &top) ||
            top != PXL_JSON_OBJECT) {
                memset(out, 0, sizeof(*out));
                return false;
        }
        return out->kind != PXL_JSON_NONE;
}

bool pxl_json_int64(const char *p, size_t len, int64_t *v)
{
        bool neg = len > 0 && p[0] == '-';
        uint64_t m = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX;
        size_t i = neg ? 1 : 0;

        if (i == len)
                return false;
        for (; i < len; i++) {
                unsigned d = (unsigned)(p[i] - '0');

                if (d > 9 || m > (lim - d) / 10)
                        return false;
                m = m * 10 + d;
        }
        *v = !neg ? (int64_t)m : m == 0 ? 0 : -(int64_t)(m - 1) - 1;
        return true;
}

/* Append k bytes, keeping room for the final NUL. */
static bool put(char *out, size_t cap, size_t *n, const char *b, size_t k)
{
        if (cap - *n <= k)
                return false;
        memcpy(out + *n, b, k);
        *n += k;
        return true;
}

static size_t utf8_encode(unsigned long cp, char b[4])
{
        if (cp < 0x80) {
                b[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                b[0] = (char)(0xc0 | cp >> 6);
                b[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                b[0] = (char)(0xe0 | cp >> 12);
                b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                b[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        b[0] = (char)(0xf0 | cp >> 18);
        b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

/*
 * The token is supposed to be validated; should it not be, the decoding
 * is lenient (a bad escape yields its characters) but never reads past
 * tok_len, so a caller's mistake cannot become an overread.
 */
ssize_t pxl_json_unescape(const char *tok, size_t tok_len, char *out,
                          size_t cap)
{
        const char *p = tok, *end;
        size_t n = 0;

        if (cap == 0)
                return -1;
        if (tok_len == 0) {
                out[0] = '\0';
                return 0;
        }
        end = tok + tok_len;
        if (tok_len >= 2 && tok[0] == '"' && tok[tok_len - 1] == '"') {
                p++;
                end--;
        }
        while (p < end) {
                const char *run = p;
                char b[4];
                size_t k;
                long cp;

                while (p < end && *p != '\\')
                        p++;
                if (!put(out, cap, &n, run, (size_t)(p - run)))
                        return -1;
                if (p == end)
                        break;
                if (end - p < 2) {
                        b[0] = *p++;
                        k = 1;
                } else if (p[1] != 'u') {
                        static const char from[] = "\"\\/bfnrt";
                        static const char to[] = "\"\\/\b\f\n\r\t";
                        const char *f = memchr(from, p[1], sizeof(from) - 1);

                        b[0] = f != NULL ? to[f - from] : p[1];
                        k = 1;
                        p += 2;
                } else if (end - p < 6 || (cp = hex4(p + 2)) < 0) {
                        b[0] = *p++;
                        k = 1;
                } else {
                        p += 6;
                        if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 &&
                            p[0] == '\\' && p[1] == 'u') {
                                long lo = hex4(p + 2);

                                if (lo >= 0xdc00 && lo <= 0xdfff) {
                                        cp = 0x10000 + ((cp - 0xd800) << 10) +
                                             (lo - 0xdc00);
                                        p += 6;
                                }
                        }
                        /* Whatever is still a surrogate was unpaired. */
                        if (cp >= 0xd800 && cp <= 0xdfff)
                                cp = 0xfffd;
                        k = utf8_encode((unsigned long)cp, b);
                }
                if (!put(out, cap, &n, b, k))
                        return -1;
        }
        out[n] = '\0';
        return (ssize_t)n;
}

static void emit(char *out, size_t cap, size_t *n, const char *b, size_t k)
{
        for (size_t i = 0; i < k; i++, (*n)++)
                if (*n < cap)
                        out[*n] = b[i];
}

size_t pxl_json_escape(char *out, size_t cap, const char *s, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        size_t n = 0;

        emit(out, cap, &n, "\"", 1);
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                const char *e = NULL;
                char u[6];

                switch (c) {
                case '"':
                        e = "\\\"";
                        break;
                case '\\':
                        e = "\\\\";
                        break;
                case '\b':
                        e = "\\b";
                        break;
                case '\f':
                        e = "\\f";
                        break;
                case '\n':
                        e = "\\n";
                        break;
                case '\r':
                        e = "\\r";
                        break;
                case '\t':
                        e = "\\t";
                        break;
                default:
                        break;
                }
                if (e != NULL) {
                        emit(out, cap, &n, e, 2);
                } else if (c < 0x20) {
                        memcpy(u, "\\u00", 4);
                        u[4] = hex[c >> 4];
                        u[5] = hex[c & 0xf];
                        emit(out, cap, &n, u, 6);
                } else {
                        emit(out, cap, &n, s + i, 1);
                }
        }
        emit(out, cap, &n, "\"", 1);
        if (cap > 0)
                out[n < cap ? n : cap - 1] = '\0';
        return n;
}
