/*
 * test_ws_codec.c - unit tests for framework/pxl_ws_codec.c: the RFC 6455
 * parser rules with their exact close codes, every length form, limits,
 * splitting (one byte at a time equals all at once) and the encoders.
 * The parser keeps no input: like a connection, the tests keep the bytes
 * it did not consume and present them again with the next piece (struct
 * feeder). Frames are built by hand here; UTF-8 itself is covered by
 * test_utf8.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pxl_ws_codec.h"

#define FIN  0x80
#define RSV1 0x40
#define RSV2 0x20
#define RSV3 0x10
#define OP_C PXL_WS_OP_CONT
#define OP_T PXL_WS_OP_TEXT
#define OP_B PXL_WS_OP_BINARY
#define OP_X PXL_WS_OP_CLOSE
#define OP_P PXL_WS_OP_PING
#define OP_O PXL_WS_OP_PONG

/* Length forms for hand-built headers; MIN picks the shortest. */
enum { MIN = 0, L7 = 7, L16 = 16, L64 = 64 };

static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* ---- byte strings ---- */

struct sb {
        uint8_t *p;
        size_t len, cap;
};

static void sb_put(struct sb *b, const void *d, size_t n)
{
        if (b->len + n > b->cap) {
                size_t cap = b->cap ? b->cap : 64;

                while (cap < b->len + n)
                        cap *= 2;
                b->p = realloc(b->p, cap);
                assert_non_null(b->p);
                b->cap = cap;
        }
        if (n)
                memcpy(b->p + b->len, d, n);
        b->len += n;
}

static void sb_byte(struct sb *b, uint8_t c)
{
        sb_put(b, &c, 1);
}

/* b->p + off, also while nothing was stored yet (b->p is NULL then). */
static const uint8_t *sb_at(const struct sb *b, size_t off)
{
        return b->p ? b->p + off : (const uint8_t *)"";
}

static void sb_free(struct sb *b)
{
        free(b->p);
        memset(b, 0, sizeof(*b));
}

/* A header only; b0 is FIN|RSV|opcode as it goes on the wire. */
static void sb_header(struct sb *b, uint8_t b0, bool masked, uint64_t len,
                      int form)
{
        uint8_t mbit = masked ? 0x80 : 0;
        int i;

        if (form == MIN)
                form = len <= 125 ? L7 : len <= 0xffff ? L16 : L64;
        sb_byte(b, b0);
        if (form == L7) {
                sb_byte(b, (uint8_t)(mbit | len));
        } else if (form == L16) {
                sb_byte(b, mbit | 126);
                sb_byte(b, (uint8_t)(len >> 8));
                sb_byte(b, (uint8_t)len);
        } else {
                sb_byte(b, mbit | 127);
                for (i = 7; i >= 0; i--)
                        sb_byte(b, (uint8_t)(len >> (8 * i)));
        }
        if (masked)
                sb_put(b, key, 4);
}

/* A whole frame; the payload is masked here with a plain byte loop. */
static void sb_frame_form(struct sb *b, uint8_t b0, bool masked,
                          const void *payload, size_t len, int form)
{
        const uint8_t *s = payload;
        size_t i;

        sb_header(b, b0, masked, len, form);
        for (i = 0; i < len; i++)
                sb_byte(b, masked ? (uint8_t)(s[i] ^ key[i % 4]) : s[i]);
}

static void sb_frame(struct sb *b, uint8_t b0, bool masked, const void *payload,
                     size_t len)
{
        sb_frame_form(b, b0, masked, payload, len, MIN);
}

/* Client frames (masked) with a C string payload. */
static void sb_cf(struct sb *b, uint8_t b0, const char *s)
{
        sb_frame(b, b0, true, s, strlen(s));
}

/* ---- recording what the parser reports ---- */

#define MAX_ITEMS 512

/* One finished thing: a whole message, a control frame or the error. */
struct item {
        enum pxl_ws_event_type type;
        uint8_t opcode;
        uint16_t code;
        size_t off, len;               /* into rec.content */
        size_t reason_off, reason_len; /* CLOSE */
};

struct rec {
        struct item it[MAX_ITEMS];
        size_t n;
        struct sb content;
        struct sb msg; /* the open message, moved to content at fin */
        bool in_msg;
        uint8_t msg_op;
        size_t data_events; /* raw DATA events seen */
        size_t events;      /* all events other than NEED_MORE */
        bool dead;
        size_t left; /* bytes not consumed (kept) after the last piece */
};

static struct item *rec_push(struct rec *r, enum pxl_ws_event_type type)
{
        struct item *it;

        assert_true(r->n < MAX_ITEMS);
        it = &r->it[r->n++];
        memset(it, 0, sizeof(*it));
        it->type = type;
        return it;
}

static void rec_free(struct rec *r)
{
        sb_free(&r->content);
        sb_free(&r->msg);
}

struct run {
        uint64_t max_frame, max_msg;
        bool masked;
};

static const struct run server = {0, 0, true};

/* p[0..n) lies inside base[0..size); compared as integers on purpose. */
static bool within(const void *p, size_t n, const void *base, size_t size)
{
        uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;

        return a >= b && a + n <= b + size;
}

/*
 * A parser with the input it has not consumed yet, like a connection's
 * input buffer: every piece fed is appended to the bytes kept from the
 * last one, and the parser sees them all again.
 */
struct feeder {
        struct pxl_ws_parser p;
        uint8_t *kept;
        size_t kept_len;
};

/* The most a parser may leave unconsumed: less than a whole control frame. */
#define MAX_KEPT (PXL_WS_MAX_HEADER + PXL_WS_MAX_CONTROL - 1)

static void start(struct feeder *f, struct rec *r, const struct run *cfg)
{
        memset(f, 0, sizeof(*f));
        memset(r, 0, sizeof(*r));
        pxl_ws_parser_init(&f->p, cfg->max_frame, cfg->max_msg, cfg->masked);
}

static void feeder_free(struct feeder *f)
{
        free(f->kept);
        f->kept = NULL;
        f->kept_len = 0;
}

/*
 * Feed one piece: the kept bytes and then `in`, copied into a buffer of
 * exactly that size (so ASan sees any read past it). Records every event
 * until the parser wants more, and keeps whatever it did not consume.
 */
static void feed(struct feeder *f, struct rec *r, const uint8_t *in, size_t n)
{
        struct pxl_ws_parser *p = &f->p;
        size_t total = f->kept_len + n, off = 0;
        uint8_t *b = malloc(total ? total : 1);
        uint8_t *orig = malloc(total ? total : 1);

        assert_non_null(b);
        assert_non_null(orig);
        if (f->kept_len)
                memcpy(b, f->kept, f->kept_len);
        if (n)
                memcpy(b + f->kept_len, in, n);
        memcpy(orig, b, total);
        while (!r->dead) {
                struct pxl_ws_event ev;
                size_t used = pxl_ws_parse(p, b + off, total - off, &ev);
                const uint8_t *lo = b + off;
                struct item *it;

                assert_true(used <= total - off);
                if (ev.type == PXL_WS_EV_NEED_MORE) {
                        struct pxl_ws_event again;
                        size_t rest;

                        off += used;
                        rest = total - off;
                        /* Less than one whole control frame stays behind, */
                        assert_true(rest <= MAX_KEPT);
                        /* untouched (not unmasked), */
                        assert_memory_equal(b + off, orig + off, rest);
                        /* and shown again alone, it is still not enough. */
                        assert_int_equal(pxl_ws_parse(p, b + off, rest, &again),
                                         0);
                        assert_int_equal(again.type, PXL_WS_EV_NEED_MORE);
                        assert_memory_equal(b + off, orig + off, rest);
                        break;
                }
                r->events++;
                if (ev.type == PXL_WS_EV_ERROR) {
                        struct pxl_ws_event again;

                        it = rec_push(r, PXL_WS_EV_ERROR);
                        it->code = ev.close_code;
                        r->dead = true;
                        /* The parser stays dead and consumes nothing. */
                        assert_int_equal(
                                pxl_ws_parse(p, b + off, total - off, &again),
                                0);
                        assert_int_equal(again.type, PXL_WS_EV_ERROR);
                        assert_int_equal(again.close_code, ev.close_code);
                        break;
                }
                /* Every event but NEED_MORE/ERROR eats at least a byte. */
                assert_true(used > 0);
                if (ev.type == PXL_WS_EV_DATA) {
                        r->data_events++;
                        assert_true(ev.opcode == OP_T || ev.opcode == OP_B);
                        if (ev.len)
                                assert_true(within(ev.data, ev.len, lo, used));
                        if (!r->in_msg) {
                                r->in_msg = true;
                                r->msg_op = ev.opcode;
                                r->msg.len = 0;
                        }
                        assert_int_equal(ev.opcode, r->msg_op);
                        sb_put(&r->msg, ev.data, ev.len);
                        if (ev.fin) {
                                it = rec_push(r, PXL_WS_EV_DATA);
                                it->opcode = r->msg_op;
                                it->off = r->content.len;
                                it->len = r->msg.len;
                                sb_put(&r->content, r->msg.p, r->msg.len);
                                r->in_msg = false;
                        }
                } else {
                        assert_true(ev.len <= PXL_WS_MAX_CONTROL);
                        assert_true(ev.fin);
                        /* whole, and always in the caller's buffer */
                        if (ev.len)
                                assert_true(within(ev.data, ev.len, lo, used));
                        it = rec_push(r, ev.type);
                        it->opcode = ev.opcode;
                        it->off = r->content.len;
                        it->len = ev.len;
                        sb_put(&r->content, ev.data, ev.len);
                        if (ev.type == PXL_WS_EV_CLOSE) {
                                assert_int_equal(ev.opcode, OP_X);
                                it->code = ev.close_code;
                                it->reason_off = r->content.len;
                                it->reason_len = ev.reason_len;
                                if (ev.len >= 2)
                                        assert_ptr_equal(ev.reason,
                                                         ev.data + 2);
                                assert_int_equal(ev.reason_len,
                                                 ev.len ? ev.len - 2 : 0);
                                sb_put(&r->content, ev.reason, ev.reason_len);
                        } else {
                                assert_int_equal(ev.opcode,
                                                 ev.type == PXL_WS_EV_PING
                                                         ? OP_P
                                                         : OP_O);
                        }
                }
                off += used;
        }
        /* Keep what was not consumed for the next piece (none once dead). */
        free(f->kept);
        f->kept = NULL;
        f->kept_len = r->dead ? 0 : total - off;
        if (f->kept_len) {
                f->kept = malloc(f->kept_len);
                assert_non_null(f->kept);
                memcpy(f->kept, b + off, f->kept_len);
        }
        r->left = f->kept_len;
        free(orig);
        free(b);
}

/* Feed `in` cut at the given positions (ascending, each <= len). */
static void run_cuts(struct rec *r, const struct run *cfg, const uint8_t *in,
                     size_t len, const size_t *cuts, size_t ncuts)
{
        struct feeder f;
        size_t start_at = 0, i;

        start(&f, r, cfg);
        for (i = 0; i <= ncuts && !r->dead; i++) {
                size_t end = i < ncuts ? cuts[i] : len;

                feed(&f, r, in + start_at, end - start_at);
                start_at = end;
        }
        feeder_free(&f);
}

static void run_whole(struct rec *r, const struct run *cfg, const uint8_t *in,
                      size_t len)
{
        run_cuts(r, cfg, in, len, NULL, 0);
}

static void run_bytes(struct rec *r, const struct run *cfg, const uint8_t *in,
                      size_t len)
{
        struct feeder f;
        size_t i;

        start(&f, r, cfg);
        for (i = 0; i < len && !r->dead; i++)
                feed(&f, r, in + i, 1);
        feeder_free(&f);
}

static void assert_same(const struct rec *a, const struct rec *b)
{
        size_t i;

        assert_int_equal(a->n, b->n);
        /* the same incomplete tail is left over at the end */
        assert_int_equal(a->dead, b->dead);
        if (!a->dead)
                assert_int_equal(a->left, b->left);
        for (i = 0; i < a->n; i++) {
                const struct item *x = &a->it[i], *y = &b->it[i];

                assert_int_equal(x->type, y->type);
                assert_int_equal(x->opcode, y->opcode);
                assert_int_equal(x->code, y->code);
                assert_int_equal(x->len, y->len);
                assert_memory_equal(sb_at(&a->content, x->off),
                                    sb_at(&b->content, y->off), x->len);
                assert_int_equal(x->reason_len, y->reason_len);
                assert_memory_equal(sb_at(&a->content, x->reason_off),
                                    sb_at(&b->content, y->reason_off),
                                    x->reason_len);
        }
}

/*
 * Parse all at once, check it against one byte at a time, and return the
 * all-at-once record for the caller to inspect.
 */
static void parse_checked(struct rec *r, const struct run *cfg,
                          const uint8_t *in, size_t len)
{
        struct rec rb;

        run_whole(r, cfg, in, len);
        run_bytes(&rb, cfg, in, len);
        assert_same(r, &rb);
        rec_free(&rb);
}

static void expect_error(const struct run *cfg, const struct sb *s,
                         uint16_t code)
{
        struct rec r;

        parse_checked(&r, cfg, s->p, s->len);
        assert_true(r.n > 0);
        assert_int_equal(r.it[r.n - 1].type, PXL_WS_EV_ERROR);
        assert_int_equal(r.it[r.n - 1].code, code);
        rec_free(&r);
}

/* The first n bytes alone are enough for the parser to refuse them. */
static void expect_error_within(const struct run *cfg, const uint8_t *in,
                                size_t n, uint16_t code)
{
        struct pxl_ws_parser p;
        struct pxl_ws_event ev;
        uint8_t buf[64];
        size_t used;

        assert_true(n <= sizeof(buf));
        memcpy(buf, in, n);
        pxl_ws_parser_init(&p, cfg->max_frame, cfg->max_msg, cfg->masked);
        used = pxl_ws_parse(&p, buf, n, &ev);
        assert_true(used <= n);
        assert_int_equal(ev.type, PXL_WS_EV_ERROR);
        assert_int_equal(ev.close_code, code);
        if (n > 0) {
                /* ...and n-1 bytes are not (the error is not early). */
                pxl_ws_parser_init(&p, cfg->max_frame, cfg->max_msg,
                                   cfg->masked);
                memcpy(buf, in, n);
                used = pxl_ws_parse(&p, buf, n - 1, &ev);
                assert_int_not_equal(ev.type, PXL_WS_EV_ERROR);
                /* a partial header: nothing consumed, nothing changed */
                assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);
                assert_int_equal(used, 0);
                assert_memory_equal(buf, in, n);
        }
}

/* A stream of one client frame (masked, C string payload) that fails. */
static void expect_frame_error(uint8_t b0, const char *payload, uint16_t code)
{
        struct sb s = {0};

        sb_cf(&s, b0, payload);
        expect_error(&server, &s, code);
        sb_free(&s);
}

static void expect_item(const struct rec *r, size_t i,
                        enum pxl_ws_event_type type, uint8_t opcode,
                        const void *data, size_t len)
{
        assert_true(i < r->n);
        assert_int_equal(r->it[i].type, type);
        assert_int_equal(r->it[i].opcode, opcode);
        assert_int_equal(r->it[i].len, len);
        assert_memory_equal(sb_at(&r->content, r->it[i].off), data, len);
}

/* ---- RFC 6455 section 5.7 examples ---- */

static void test_rfc_single_unmasked(void **state)
{
        static const uint8_t f[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
        const struct run client = {0, 0, false};
        struct pxl_ws_parser p;
        struct pxl_ws_event ev;
        uint8_t buf[sizeof(f)];
        struct rec r;

        (void)state;
        memcpy(buf, f, sizeof(f));
        pxl_ws_parser_init(&p, 0, 0, false);
        assert_int_equal(pxl_ws_parse(&p, buf, sizeof(buf), &ev), 7);
        assert_int_equal(ev.type, PXL_WS_EV_DATA);
        assert_int_equal(ev.opcode, OP_T);
        assert_true(ev.fin);
        assert_ptr_equal(ev.data, buf + 2);
        assert_int_equal(ev.len, 5);
        assert_memory_equal(ev.data, "Hello", 5);
        assert_int_equal(pxl_ws_parse(&p, buf + 7, 0, &ev), 0);
        assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);

        parse_checked(&r, &client, f, sizeof(f));
        assert_int_equal(r.n, 1);
        expect_item(&r, 0, PXL_WS_EV_DATA, OP_T, "Hello", 5);
        rec_free(&r);
        /* A server must refuse it: clients always mask. */
        expect_error_within(&server, f, 2, 1002);
}

static void test_rfc_single_masked(void **state)
{
        static const uint8_t f[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58};
        const struct run client = {0, 0, false};
        struct pxl_ws_parser p;
        struct pxl_ws_event ev;
        uint8_t buf[sizeof(f)];
        struct rec r;

        (void)state;
        memcpy(buf, f, sizeof(f));
        pxl_ws_parser_init(&p, 0, 0, true);
        assert_int_equal(pxl_ws_parse(&p, buf, sizeof(buf), &ev), 11);
        assert_int_equal(ev.type, PXL_WS_EV_DATA);
        assert_true(ev.fin);
        /* unmasked in place, inside the caller's buffer */
        assert_ptr_equal(ev.data, buf + 6);
        assert_memory_equal(buf + 6, "Hello", 5);

        parse_checked(&r, &server, f, sizeof(f));
        assert_int_equal(r.n, 1);
        expect_item(&r, 0, PXL_WS_EV_DATA, OP_T, "Hello", 5);
        rec_free(&r);
        /* A client must refuse a masked frame from the server. */
        expect_error_within(&client, f, 2, 1002);
}

static void test_rfc_fragmented_unmasked(void **state)
{
        static const uint8_t f[] = {0x01, 0x03, 0x48, 0x65, 0x6c,
                                    0x80, 0x02, 0x6c, 0x6f};
        const struct run client = {0, 0, false};
        struct pxl_ws_parser p;
        struct pxl_ws_event ev;
        uint8_t buf[sizeof(f)];
        size_t used;
        struct rec r;

        (void)state;
        memcpy(buf, f, sizeof(f));
        pxl_ws_parser_init(&p, 0, 0, false);
        used = pxl_ws_parse(&p, buf, sizeof(buf), &ev);
        assert_int_equal(used, 5);
        assert_int_equal(ev.type, PXL_WS_EV_DATA);
        assert_int_equal(ev.opcode, OP_T);
        assert_false(ev.fin);
        assert_memory_equal(ev.data, "Hel", 3);
        used += pxl_ws_parse(&p, buf + used, sizeof(buf) - used, &ev);
        assert_int_equal(used, 9);
        assert_int_equal(ev.type, PXL_WS_EV_DATA);
        /* the continuation reports the message's opcode, never CONT */
        assert_int_equal(ev.opcode, OP_T);
        assert_true(ev.fin);
        assert_memory_equal(ev.data, "lo", 2);

        parse_checked(&r, &client, f, sizeof(f));
        assert_int_equal(r.n, 1);
        expect_item(&r, 0, PXL_WS_EV_DATA, OP_T, "Hello", 5);
        rec_free(&r);
}

static void test_rfc_ping_pong(void **state)
{
        static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65,
                                       0x6c, 0x6c, 0x6f};
        static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                       0x7f, 0x9f, 0x4d, 0x51, 0x58};
        const struct run client = {0, 0, false};
        struct rec r;

        (void)state;
        parse_checked(&r, &client, ping, sizeof(ping));
        assert_int_equal(r.n, 1);
        expect_item(&r, 0, PXL_WS_EV_PING, OP_P, "Hello", 5);
        rec_free(&r);
        parse_checked(&r, &server, pong, sizeof(pong));
        assert_int_equal(r.n, 1);
        expect_item(&r, 0, PXL_WS_EV_PONG, OP_O, "Hello", 5);
        rec_free(&r);
}

static void test_rfc_long_binary(void **state)
{
        const struct run client = {0, 0, false};
        uint8_t *pl = malloc(65536);
        struct sb s = {0};
        struct rec r;
        size_t i;

        (void)state;
        assert_non_null(pl);
        for (i = 0; i < 65536; i++)
                pl[i] = (uint8_t)(i * 7 + 3);
        /* 256 bytes: 0x82 0x7E 0x01 0x00 */
        sb_frame(&s, FIN | OP_B, false, pl, 256);
        assert_memory_equal(s.p, "\x82\x7e\x01\x00", 4);
        parse_checked(&r, &client, s.p, s.len);
        expect_item(&r, 0, PXL_WS_EV_DATA, OP_B, pl, 256);
        rec_free(&r);
        sb_free(&s);
        /* 64 KiB: 0x82 0x7F 0x0000000000010000 */
        sb_frame(&s, FIN | OP_B, false, pl, 65536);
        assert_memory_equal(s.p, "\x82\x7f\0\0\0\0\0\x01\0\0", 10);
        run_whole(&r, &client, s.p, s.len);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.data_events, 1);
        expect_item(&r, 0, PXL_WS_EV_DATA, OP_B, pl, 65536);
        rec_free(&r);
        sb_free(&s);
        free(pl);
}

/* ---- lengths ---- */

static void test_length_forms(void **state)
{
        static const size_t lens[] = {0,   1,   2,     125,   126,  127,
                                      128, 300, 65535, 65536, 70000};
        static const int forms[] = {L7, L16, L64};
        uint8_t *pl = malloc(70000);
        size_t i, f, k;

        (void)state;
        assert_non_null(pl);
        for (i = 0; i < 70000; i++)
                pl[i] = (uint8_t)('a' + i % 26);
        for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                for (f = 0; f < 3; f++) {
                        struct sb s = {0};
                        struct rec r;
                        size_t cut[1];

                        if ((forms[f] == L7 && lens[i] > 125) ||
                            (forms[f] == L16 && lens[i] > 0xffff))
                                continue;
                        sb_frame_form(&s, FIN | OP_T, true, pl, lens[i],
                                      forms[f]);
                        /* non-minimal forms are accepted */
                        if (lens[i] <= 300) {
                                parse_checked(&r, &server, s.p, s.len);
                        } else {
                                run_whole(&r, &server, s.p, s.len);
                        }
                        assert_int_equal(r.n, 1);
                        expect_item(&r, 0, PXL_WS_EV_DATA, OP_T, pl, lens[i]);
                        rec_free(&r);
                        /* split inside the header at every position */
                        for (k = 0; k <= 14 && k <= s.len; k++) {
                                cut[0] = k;
                                run_cuts(&r, &server, s.p, s.len, cut, 1);
                                assert_int_equal(r.n, 1);
                                expect_item(&r, 0, PXL_WS_EV_DATA, OP_T, pl,
                                            lens[i]);
                                rec_free(&r);
                        }
                        sb_free(&s);
                }
        }
        free(pl);
}

static void test_length_top_bit(void **state)
{
        const struct run limited = {100, 100, true};
        uint8_t abc[3];
        struct sb s = {0};
        struct pxl_ws_parser p;
        struct pxl_ws_event ev;

        (void)state;
        /* 2^63: refused after the 10th byte, before the mask key */
        sb_header(&s, FIN | OP_B, true, 1ULL << 63, L64);
        expect_error_within(&server, s.p, 10, 1002);
        /* a length error is a protocol error before any size limit */
        expect_error_within(&limited, s.p, 10, 1002);
        sb_free(&s);
        sb_header(&s, FIN | OP_B, true, UINT64_MAX, L64);
        expect_error_within(&server, s.p, 10, 1002);
        sb_free(&s);
        /* 2^63 - 1 is legal; without limits the parser waits for it */
        sb_header(&s, FIN | OP_B, true, (1ULL << 63) - 1, L64);
        pxl_ws_parser_init(&p, 0, 0, true);
        assert_int_equal(pxl_ws_parse(&p, s.p, s.len, &ev), s.len);
        assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);
        memcpy(abc, "abc", 3);
        assert_int_equal(pxl_ws_parse(&p, abc, 3, &ev), 3);
        assert_int_equal(ev.type, PXL_WS_EV_DATA);
        assert_int_equal(ev.len, 3);
        assert_false(ev.fin);
        sb_free(&s);
}

/* ---- header rules ---- */

static void test_masking_rules(void **state)
{
        const struct run client = {0, 0, false};
        struct sb s = {0};

        (void)state;
        sb_frame(&s, FIN | OP_T, false, "hi", 2);
        expect_error(&server, &s, 1002);
        expect_error_within(&server, s.p, 2, 1002);
        sb_free(&s);
        sb_frame(&s, FIN | OP_P, false, "", 0);
        expect_error(&server, &s, 1002);
        sb_free(&s);
        sb_frame(&s, FIN | OP_T, true, "hi", 2);
        expect_error(&client, &s, 1002);
        expect_error_within(&client, s.p, 2, 1002);
        sb_free(&s);
        sb_frame(&s, FIN | OP_X, true, "", 0);
        expect_error(&client, &s, 1002);
        sb_free(&s);
}

static void test_rsv_bits(void **state)
{
        static const uint8_t rsv[] = {RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3};
        static const uint8_t ops[] = {OP_T, OP_B, OP_P, OP_O, OP_X};
        size_t i, j;

        (void)state;
        for (i = 0; i < sizeof(rsv); i++) {
                for (j = 0; j < sizeof(ops); j++) {
                        struct sb s = {0};
                        uint8_t b0 = (uint8_t)(FIN | rsv[i] | ops[j]);

                        sb_frame(&s, b0, true, "", 0);
                        expect_error(&server, &s, 1002);
                        expect_error_within(&server, s.p, 1, 1002);
                        sb_free(&s);
                }
        }
        /* on a continuation frame too */
        {
                struct sb s = {0};

                sb_cf(&s, OP_T, "ab");
                sb_cf(&s, FIN | RSV1 | OP_C, "cd");
                expect_error(&server, &s, 1002);
                sb_free(&s);
        }
}

static void test_reserved_opcodes(void **state)
{
        unsigned op;

        (void)state;
        for (op = 0; op < 16; op++) {
                struct sb s = {0};
                bool reserved = (op >= 3 && op <= 7) || op >= 0xb;

                if (!reserved)
                        continue;
                sb_frame(&s, (uint8_t)(FIN | op), true, "x", 1);
                expect_error(&server, &s, 1002);
                expect_error_within(&server, s.p, 1, 1002);
                sb_free(&s);
                sb_frame(&s, (uint8_t)op, true, "x", 1);
                expect_error(&server, &s, 1002);
                sb_free(&s);
                /* reserved opcode inside a fragmented message */
                sb_cf(&s, OP_T, "a");
                sb_frame(&s, (uint8_t)(FIN | op), true, "x", 1);
                expect_error(&server, &s, 1002);
                sb_free(&s);
        }
}

static void test_control_rules(void **state)
{
        static const uint8_t ops[] = {OP_P, OP_O, OP_X};
        uint8_t big[200];
        struct sb s = {0};
        struct rec r;
        size_t i;

        (void)state;
        memset(big, 'p', sizeof(big));
        for (i = 0; i < sizeof(ops); i++) {
                /* fragmented control frame */
                sb_frame(&s, ops[i], true, "\x03\xe8", 2);
                expect_error(&server, &s, 1002);
                expect_error_within(&server, s.p, 1, 1002);
                sb_free(&s);
                /* 126 bytes in the 16-bit form */
                sb_frame(&s, FIN | ops[i], true, big, 126);
                expect_error(&server, &s, 1002);
                expect_error_within(&server, s.p, 2, 1002);
                sb_free(&s);
                /* a non-minimal 16-bit length is refused for control */
                sb_frame_form(&s, FIN | ops[i], true, "\x03\xe8", 2, L16);
                expect_error(&server, &s, 1002);
                sb_free(&s);
                sb_frame_form(&s, FIN | ops[i], true, "\x03\xe8", 2, L64);
                expect_error(&server, &s, 1002);
                sb_free(&s);
        }
        /* 125 bytes is the largest control payload */
        sb_frame(&s, FIN | OP_P, true, big, 125);
        sb_frame(&s, FIN | OP_O, true, big, 125);
        parse_checked(&r, &server, s.p, s.len);
        assert_int_equal(r.n, 2);
        expect_item(&r, 0, PXL_WS_EV_PING, OP_P, big, 125);
        expect_item(&r, 1, PXL_WS_EV_PONG, OP_O, big, 125);
        rec_free(&r);
        sb_free(&s);
        /* empty ping */
        sb_frame(&s, FIN | OP_P, true, "", 0);
        parse_checked(&r, &server, s.p, s.len);
        assert_int_equal(r.n, 1);
        expect_item(&r, 0, PXL_WS_EV_PING, OP_P, "", 0);
        rec_free(&r);
        sb_free(&s);
}

static void test_continuation_without_message(void **state)
{
        struct sb s = {0};

        (void)state;
        sb_cf(&s, FIN | OP_C, "x");
        expect_error(&server, &s, 1002);
        expect_error_within(&server, s.p, 1, 1002);
        sb_free(&s);
        expect_frame_error(OP_C, "x", 1002);
        /* after a finished message there is nothing to continue */
        sb_cf(&s, FIN | OP_T, "done");
        sb_cf(&s, FIN | OP_C, "x");
        expect_error(&server, &s, 1002);
        sb_free(&s);
        sb_cf(&s, OP_B, "a");
        sb_cf(&s, FIN | OP_C, "b");
        sb_cf(&s, OP_C, "x");
        expect_error(&server, &s, 1002);
        sb_free(&s);
}

static void test_new_message_while_open(void **state)
{
        static const uint8_t first[] = {OP_T, OP_B};
        static const uint8_t second[] = {OP_T, OP_B, FIN | OP_T, FIN | OP_B};
        size_t i, j;

        (void)state;
        for (i = 0; i < 2; i++) {
                for (j = 0; j < 4; j++) {
                        struct sb s = {0};

                        sb_cf(&s, first[i], "ab");
                        sb_cf(&s, second[j], "cd");
                        expect_error(&server, &s, 1002);
                        sb_free(&s);
                        /* also after a control frame in between */
                        sb_cf(&s, first[i], "ab");
                        sb_cf(&s, FIN | OP_P, "");
                        sb_cf(&s, OP_C, "cd");
                        sb_cf(&s, second[j], "ef");
                        expect_error(&server, &s, 1002);
                        sb_free(&s);
                }
        }
}

/* ---- fragmentation ---- */

static void test_interleaved_control(void **state)
{
        struct pxl_ws_parser p;
        struct pxl_ws_event ev;
        struct sb s = {0};
        struct rec r;
        size_t off = 0;

        (void)state;
        sb_cf(&s, OP_T, "Hel");
        sb_cf(&s, FIN | OP_P, "ping!");
        sb_cf(&s, OP_C, "l");
        sb_cf(&s, FIN | OP_O, "");
        sb_cf(&s, FIN | OP_C, "o");
        sb_frame(&s, FIN | OP_B, true, "\xff\x00", 2);
        parse_checked(&r, &server, s.p, s.len);
        assert_int_equal(r.n, 4);
        expect_item(&r, 0, PXL_WS_EV_PING, OP_P, "ping!", 5);
        expect_item(&r, 1, PXL_WS_EV_PONG, OP_O, "", 0);
        expect_item(&r, 2, PXL_WS_EV_DATA, OP_T, "Hello", 5);
        expect_item(&r, 3, PXL_WS_EV_DATA, OP_B, "\xff\x00", 2);
        rec_free(&r);

        /* the exact event sequence, all at once */
        pxl_ws_parser_init(&p, 0, 0, true);
        off += pxl_ws_parse(&p, s.p + off, s.len - off, &ev);
        assert_int_equal(ev.type, PXL_WS_EV_DATA);
        assert_false(ev.fin);
        assert_memory_equal(ev.data, "Hel", 3);
        off += pxl_ws_parse(&p, s.p + off, s.len - off, &ev);
        assert_int_equal(ev.type, PXL_WS_EV_PING);
        assert_memory_equal(ev.data, "ping!", 5);
        off += pxl_ws_parse(&p, s.p + off, s.len - off, &ev);
        assert_int_equal(ev.type, PXL_WS_EV_DATA);
        assert_int_equal(ev.opcode, OP_T);
        assert_false(ev.fin);
        off += pxl_ws_parse(&p, s.p + off, s.len - off, &ev);
        assert_int_equal(ev.type, PXL_WS_EV_PONG);
        assert_int_equal(ev.len, 0);
        off += pxl_ws_parse(&p, s.p + off, s.len - off, &ev);
        assert_int_equal(ev.type, PXL_WS_EV_DATA);
        assert_true(ev.fin);
        assert_memory_equal(ev.data, "o", 1);
        off += pxl_ws_parse(&p, s.p + off, s.len - off, &ev);
        assert_int_equal(ev.type, PXL_WS_EV_DATA);
        assert_int_equal(ev.opcode, OP_B);
        assert_true(ev.fin);
        assert_int_equal(off, s.len);
        assert_int_equal(pxl_ws_parse(&p, s.p + off, 0, &ev), 0);
        assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);
        sb_free(&s);

        /* a close in the middle of a message is delivered too */
        sb_cf(&s, OP_T, "a");
        sb_cf(&s, FIN | OP_X,
              "\x03\xe8"
              "bye");
        parse_checked(&r, &server, s.p, s.len);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.it[0].type, PXL_WS_EV_CLOSE);
        assert_int_equal(r.it[0].code, 1000);
        rec_free(&r);
        sb_free(&s);
}

static void test_zero_length_frames(void **state)
{
        struct pxl_ws_parser p;
        struct pxl_ws_event ev;
        struct sb s = {0};
        struct rec r;
        size_t used;

        (void)state;
        /* one empty final frame: one DATA event, len 0, fin */
        sb_cf(&s, FIN | OP_T, "");
        pxl_ws_parser_init(&p, 0, 0, true);
        used = pxl_ws_parse(&p, s.p, s.len, &ev);
        assert_int_equal(used, 6);
        assert_int_equal(ev.type, PXL_WS_EV_DATA);
        assert_int_equal(ev.opcode, OP_T);
        assert_int_equal(ev.len, 0);
        assert_true(ev.fin);
        assert_int_equal(pxl_ws_parse(&p, s.p + used, 0, &ev), 0);
        assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);
        parse_checked(&r, &server, s.p, s.len);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.data_events, 1);
        expect_item(&r, 0, PXL_WS_EV_DATA, OP_T, "", 0);
        rec_free(&r);
        sb_free(&s);

        /* empty fragments around real ones */
        sb_cf(&s, OP_B, "");
        sb_cf(&s, OP_C, "");
        sb_cf(&s, OP_C, "abc");
        sb_cf(&s, OP_C, "");
        sb_cf(&s, FIN | OP_C, "");
        sb_cf(&s, OP_T, "");
        sb_cf(&s, FIN | OP_C, "");
        parse_checked(&r, &server, s.p, s.len);
        assert_int_equal(r.n, 2);
        expect_item(&r, 0, PXL_WS_EV_DATA, OP_B, "abc", 3);
        expect_item(&r, 1, PXL_WS_EV_DATA, OP_T, "", 0);
        rec_free(&r);
        sb_free(&s);
}

/* ---- limits ---- */

static void test_frame_limit(void **state)
{
        static const uint64_t maxes[] = {1,   100,   125,   126,
                                         300, 65535, 65536, 70000};
        uint8_t *pl = calloc(1, 70001);
        size_t i;

        (void)state;
        assert_non_null(pl);
        for (i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
                const struct run cfg = {maxes[i], 0, true};
                size_t m = (size_t)maxes[i];
                struct sb s = {0};
                struct rec r;
                size_t hl;

                /* exactly max is fine */
                sb_frame(&s, FIN | OP_B, true, pl, m);
                run_whole(&r, &cfg, s.p, s.len);
                assert_int_equal(r.n, 1);
                expect_item(&r, 0, PXL_WS_EV_DATA, OP_B, pl, m);
                rec_free(&r);
                sb_free(&s);
                /* max + 1 is refused from the length alone */
                sb_header(&s, FIN | OP_B, true, m + 1, MIN);
                hl = s.len - 4;
                expect_error_within(&cfg, s.p, hl, 1009);
                sb_free(&s);
                /* also as a continuation frame */
                sb_cf(&s, OP_T, "a");
                sb_header(&s, FIN | OP_C, true, m + 1, MIN);
                expect_error(&cfg, &s, 1009);
                sb_free(&s);
        }
        {
                /* the limit is per frame: fragments may add up past it */
                const struct run cfg = {10, 0, true};
                struct sb s = {0};
                struct rec r;

                sb_cf(&s, OP_T, "0123456789");
                sb_cf(&s, FIN | OP_P, "a ping longer than ten bytes");
                sb_cf(&s, FIN | OP_C, "0123456789");
                parse_checked(&r, &cfg, s.p, s.len);
                assert_int_equal(r.n, 2);
                expect_item(&r, 1, PXL_WS_EV_DATA, OP_T, "01234567890123456789",
                            20);
                rec_free(&r);
                sb_free(&s);
        }
        free(pl);
}

static void test_message_limit(void **state)
{
        const struct run cfg = {0, 100, true};
        uint8_t pl[101];
        struct sb s = {0};
        struct rec r;
        size_t len_before;

        (void)state;
        memset(pl, 'm', sizeof(pl));
        /* one frame of exactly max, then one of max + 1 */
        sb_frame(&s, FIN | OP_T, true, pl, 100);
        sb_frame(&s, FIN | OP_B, true, pl, 100);
        parse_checked(&r, &cfg, s.p, s.len);
        assert_int_equal(r.n, 2);
        rec_free(&r);
        sb_free(&s);
        sb_header(&s, FIN | OP_T, true, 101, MIN);
        expect_error_within(&cfg, s.p, 2, 1009);
        sb_free(&s);

        /* fragments adding up to exactly max, with control in between */
        sb_frame(&s, OP_T, true, pl, 40);
        sb_cf(&s, FIN | OP_P, "control frames do not count");
        sb_frame(&s, OP_C, true, pl, 0);
        sb_frame(&s, OP_C, true, pl, 59);
        sb_frame(&s, FIN | OP_C, true, pl, 1);
        /* the count starts again with the next message */
        sb_frame(&s, FIN | OP_T, true, pl, 100);
        parse_checked(&r, &cfg, s.p, s.len);
        assert_int_equal(r.n, 3);
        expect_item(&r, 1, PXL_WS_EV_DATA, OP_T, pl, 100);
        expect_item(&r, 2, PXL_WS_EV_DATA, OP_T, pl, 100);
        rec_free(&r);
        sb_free(&s);

        /* one byte too many: refused at the header of the last fragment */
        sb_frame(&s, OP_B, true, pl, 60);
        sb_frame(&s, OP_C, true, pl, 40);
        len_before = s.len;
        sb_header(&s, FIN | OP_C, true, 1, MIN);
        expect_error(&cfg, &s, 1009);
        {
                struct pxl_ws_parser p;
                struct pxl_ws_event ev;
                uint8_t *b = malloc(s.len);
                size_t off = 0;

                assert_non_null(b);
                memcpy(b, s.p, s.len);
                pxl_ws_parser_init(&p, 0, 100, true);
                do {
                        off += pxl_ws_parse(&p, b + off, len_before + 2 - off,
                                            &ev);
                } while (ev.type == PXL_WS_EV_DATA);
                assert_int_equal(ev.type, PXL_WS_EV_ERROR);
                assert_int_equal(ev.close_code, 1009);
                free(b);
        }
        sb_free(&s);
}

static void test_limits_unlimited(void **state)
{
        struct pxl_ws_parser p;
        struct pxl_ws_event ev;
        struct sb s = {0};

        (void)state;
        sb_header(&s, OP_B, true, 1ULL << 40, MIN);
        sb_header(&s, FIN | OP_C, true, 1ULL << 40, MIN);
        pxl_ws_parser_init(&p, 0, 0, true);
        assert_int_equal(pxl_ws_parse(&p, s.p, 14, &ev), 14);
        assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);
        sb_free(&s);
        /* a limit of 1 still allows empty and 1-byte frames */
        {
                const struct run cfg = {1, 1, true};
                struct rec r;

                sb_cf(&s, FIN | OP_T, "");
                sb_cf(&s, FIN | OP_T, "x");
                sb_cf(&s, OP_T, "");
                sb_cf(&s, FIN | OP_C, "y");
                parse_checked(&r, &cfg, s.p, s.len);
                assert_int_equal(r.n, 3);
                rec_free(&r);
                sb_cf(&s, FIN | OP_T, "xy");
                expect_error(&cfg, &s, 1009);
                sb_free(&s);
        }
}

/* ---- UTF-8 in text messages ---- */

static void test_text_utf8(void **state)
{
        const struct run frag_limit = {4, 0, true};
        struct pxl_ws_parser p;
        struct pxl_ws_event ev;
        struct sb s = {0};
        struct rec r;

        (void)state;
        expect_frame_error(FIN | OP_T, "ok \xff", 1007);
        /* overlong, surrogate, too big */
        expect_frame_error(FIN | OP_T, "\xc0\xaf", 1007);
        expect_frame_error(FIN | OP_T, "\xed\xa0\x80", 1007);
        expect_frame_error(FIN | OP_T, "\xf4\x90\x80\x80", 1007);
        /* a character split across fragments, with a ping between */
        sb_cf(&s, OP_T, "\xce");
        sb_cf(&s, FIN | OP_P, "");
        sb_cf(&s, OP_C, "\xba\xe1");
        sb_cf(&s, FIN | OP_C, "\xbd\xb9");
        parse_checked(&r, &frag_limit, s.p, s.len);
        assert_int_equal(r.n, 2);
        expect_item(&r, 1, PXL_WS_EV_DATA, OP_T, "\xce\xba\xe1\xbd\xb9", 5);
        rec_free(&r);
        sb_free(&s);
        /* broken across fragments */
        sb_cf(&s, OP_T, "\xce");
        sb_cf(&s, FIN | OP_C, "a");
        expect_error(&server, &s, 1007);
        sb_free(&s);
        /* incomplete at the end of the message */
        expect_frame_error(FIN | OP_T, "abc\xe2\x82", 1007);
        sb_cf(&s, OP_T, "abc\xe2\x82");
        sb_cf(&s, FIN | OP_C, "");
        expect_error(&server, &s, 1007);
        sb_free(&s);
        /* ...but not at the end of a non-final fragment */
        sb_cf(&s, OP_T, "abc\xe2\x82");
        sb_cf(&s, FIN | OP_C, "\xac");
        parse_checked(&r, &server, s.p, s.len);
        expect_item(&r, 0, PXL_WS_EV_DATA, OP_T, "abc\xe2\x82\xac", 6);
        rec_free(&r);
        sb_free(&s);
        /* binary is not checked */
        sb_cf(&s, FIN | OP_B, "\xff\xfe\xc0\x80\xed\xa0\x80\xe2");
        parse_checked(&r, &server, s.p, s.len);
        assert_int_equal(r.n, 1);
        rec_free(&r);
        sb_free(&s);

        /* fail fast: the frame says 20 bytes, 3 arrive, one is bad */
        sb_header(&s, FIN | OP_T, true, 20, MIN);
        sb_byte(&s, 'a' ^ key[0]);
        sb_byte(&s, 0xff ^ key[1]);
        sb_byte(&s, 'b' ^ key[2]);
        pxl_ws_parser_init(&p, 0, 0, true);
        (void)pxl_ws_parse(&p, s.p, s.len, &ev);
        assert_int_equal(ev.type, PXL_WS_EV_ERROR);
        assert_int_equal(ev.close_code, 1007);
        sb_free(&s);
}

/* The brief's example as two fragments: the error comes at ED A0. */
static void test_text_fail_fast_position(void **state)
{
        static const char a[] = "\xce\xba\xe1\xbd";
        static const char b[] = "\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80";
        struct feeder f;
        struct rec r;
        struct sb s = {0};
        size_t i, second, err_at = 0;

        (void)state;
        sb_cf(&s, OP_T, a);
        second = s.len;
        sb_cf(&s, FIN | OP_C, b);
        expect_error(&server, &s, 1007);

        start(&f, &r, &server);
        for (i = 0; i < s.len; i++) {
                feed(&f, &r, s.p + i, 1);
                if (r.dead) {
                        err_at = i;
                        break;
                }
        }
        /* second frame: 2 + 4 header bytes, then A0 is payload byte 8 */
        assert_int_equal(err_at, second + 6 + 8);
        assert_int_equal(r.it[r.n - 1].type, PXL_WS_EV_ERROR);
        assert_int_equal(r.it[r.n - 1].code, 1007);
        feeder_free(&f);
        rec_free(&r);
        sb_free(&s);
}

/* ---- close frames ---- */

static void test_close_frames(void **state)
{
        char reason[125];
        struct sb s = {0};
        struct rec r;

        (void)state;
        sb_cf(&s, FIN | OP_X, "");
        parse_checked(&r, &server, s.p, s.len);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.it[0].type, PXL_WS_EV_CLOSE);
        assert_int_equal(r.it[0].code, 1005);
        assert_int_equal(r.it[0].reason_len, 0);
        rec_free(&r);
        sb_free(&s);

        sb_cf(&s, FIN | OP_X,
              "\x03\xe8"
              "bye");
        parse_checked(&r, &server, s.p, s.len);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.it[0].code, 1000);
        assert_int_equal(r.it[0].len, 5);
        assert_int_equal(r.it[0].reason_len, 3);
        assert_memory_equal(r.content.p + r.it[0].reason_off, "bye", 3);
        rec_free(&r);
        sb_free(&s);

        /* code only; and the longest reason */
        sb_cf(&s, FIN | OP_X, "\x0f\xa0");
        memset(reason, 'r', sizeof(reason));
        memcpy(reason, "\x13\x87", 2);
        sb_frame(&s, FIN | OP_X, true, reason, 125);
        parse_checked(&r, &server, s.p, s.len);
        assert_int_equal(r.n, 2);
        assert_int_equal(r.it[0].code, 4000);
        assert_int_equal(r.it[0].reason_len, 0);
        assert_int_equal(r.it[1].code, 4999);
        assert_int_equal(r.it[1].reason_len, 123);
        rec_free(&r);
        sb_free(&s);

        /* a 1-byte payload is refused from the header */
        sb_frame(&s, FIN | OP_X, true, "\x03", 1);
        expect_error(&server, &s, 1002);
        expect_error_within(&server, s.p, 2, 1002);
        sb_free(&s);
        /* bad code, bad reason, both (the code is checked first) */
        expect_frame_error(FIN | OP_X, "\x03\xed", 1002);
        expect_frame_error(FIN | OP_X, "\x03\xe8\xff", 1007);
        expect_frame_error(FIN | OP_X, "\x03\xe8\xce", 1007);
        expect_frame_error(FIN | OP_X, "\x03\xedz\xff", 1002);
        sb_cf(&s, FIN | OP_X,
              "\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc"
              "\xce\xb5");
        parse_checked(&r, &server, s.p, s.len);
        assert_int_equal(r.it[0].code, 1000);
        assert_int_equal(r.it[0].reason_len, 11);
        rec_free(&r);
        sb_free(&s);
}

static bool code_rule(unsigned c)
{
        if (c < 1000 || c >= 5000)
                return false;
        if (c == 1004 || c == 1005 || c == 1006)
                return false;
        if (c >= 1015 && c <= 2999)
                return false;
        return true;
}

static void test_close_code_table(void **state)
{
        struct pxl_ws_parser p;
        unsigned c;

        (void)state;
        for (c = 0; c <= 5100; c++) {
                uint8_t f[8] = {FIN | OP_X,        0x82,      0, 0, 0, 0,
                                (uint8_t)(c >> 8), (uint8_t)c};
                struct pxl_ws_event ev;
                size_t used;

                if (pxl_ws_close_code_valid(c) != code_rule(c))
                        fail_msg("close code %u", c);
                pxl_ws_parser_init(&p, 0, 0, true);
                used = pxl_ws_parse(&p, f, sizeof(f), &ev);
                assert_true(used <= sizeof(f));
                if (code_rule(c)) {
                        assert_int_equal(ev.type, PXL_WS_EV_CLOSE);
                        assert_int_equal(ev.close_code, c);
                        assert_int_equal(used, sizeof(f));
                } else {
                        assert_int_equal(ev.type, PXL_WS_EV_ERROR);
                        assert_int_equal(ev.close_code, 1002);
                }
        }
        for (c = 5101; c <= 0xffff; c++)
                assert_false(pxl_ws_close_code_valid(c));
        assert_false(pxl_ws_close_code_valid(0x10000 + 1000));
        assert_false(pxl_ws_close_code_valid(UINT_MAX));
}

/* ---- splitting ---- */

static void test_control_split(void **state)
{
        uint8_t pl[125];
        struct feeder f;
        struct rec r;
        struct sb s = {0};
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(pl); i++)
                pl[i] = (uint8_t)(i * 13);
        sb_frame(&s, FIN | OP_P, true, pl, sizeof(pl));
        start(&f, &r, &server);
        for (i = 0; i + 1 < s.len; i++) {
                feed(&f, &r, s.p + i, 1);
                /* nothing consumed yet: every byte so far is kept */
                assert_int_equal(r.events, 0);
                assert_int_equal(f.kept_len, i + 1);
        }
        feed(&f, &r, s.p + i, 1);
        assert_int_equal(r.n, 1);
        expect_item(&r, 0, PXL_WS_EV_PING, OP_P, pl, sizeof(pl));
        assert_int_equal(f.kept_len, 0);
        feeder_free(&f);
        rec_free(&r);
        sb_free(&s);

        /* a close whose reason arrives in two pieces */
        sb_cf(&s, FIN | OP_X,
              "\x03\xe9"
              "going \xe2\x82\xac away");
        start(&f, &r, &server);
        feed(&f, &r, s.p, 12);
        assert_int_equal(r.events, 0);
        assert_int_equal(f.kept_len, 12);
        feed(&f, &r, s.p + 12, s.len - 12);
        assert_int_equal(f.kept_len, 0);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.it[0].type, PXL_WS_EV_CLOSE);
        assert_int_equal(r.it[0].code, 1001);
        assert_int_equal(r.it[0].reason_len, 14);
        assert_memory_equal(r.content.p + r.it[0].reason_off,
                            "going \xe2\x82\xac away", 14);
        feeder_free(&f);
        rec_free(&r);
        sb_free(&s);
}

static void test_data_split_mask_offset(void **state)
{
        uint8_t pl[1000];
        struct sb s = {0};
        struct rec r;
        size_t i, j, cut[2];

        (void)state;
        for (i = 0; i < sizeof(pl); i++)
                pl[i] = (uint8_t)(i * 31 + (i >> 8));
        sb_frame(&s, FIN | OP_B, true, pl, sizeof(pl));
        for (i = 0; i <= s.len; i++) {
                cut[0] = i;
                run_cuts(&r, &server, s.p, s.len, cut, 1);
                assert_int_equal(r.n, 1);
                expect_item(&r, 0, PXL_WS_EV_DATA, OP_B, pl, sizeof(pl));
                assert_true(r.data_events <= 2);
                rec_free(&r);
        }
        for (i = 0; i <= 40; i++) {
                for (j = i; j <= 40; j++) {
                        cut[0] = i;
                        cut[1] = j;
                        run_cuts(&r, &server, s.p, s.len, cut, 2);
                        expect_item(&r, 0, PXL_WS_EV_DATA, OP_B, pl,
                                    sizeof(pl));
                        rec_free(&r);
                }
        }
        run_bytes(&r, &server, s.p, s.len);
        expect_item(&r, 0, PXL_WS_EV_DATA, OP_B, pl, sizeof(pl));
        assert_int_equal(r.data_events, sizeof(pl));
        rec_free(&r);
        sb_free(&s);
}

/* ---- the parser keeps nothing: partial headers and control frames ---- */

/*
 * pre (whole frames) and then the first k bytes of frame, in one buffer:
 * for every k < need the parser consumes exactly pre and leaves those k
 * bytes unconsumed and unchanged; with k == need it takes them all.
 */
static void expect_prefixes_kept(const struct run *cfg, const struct sb *pre,
                                 const struct sb *frame, size_t need)
{
        size_t k;

        assert_true(need <= frame->len);
        for (k = 0; k <= need; k++) {
                size_t total = pre->len + k, off = 0;
                uint8_t *b = malloc(total ? total : 1);
                struct pxl_ws_parser p;
                struct pxl_ws_event ev;

                assert_non_null(b);
                if (pre->len)
                        memcpy(b, pre->p, pre->len);
                if (k)
                        memcpy(b + pre->len, frame->p, k);
                pxl_ws_parser_init(&p, cfg->max_frame, cfg->max_msg,
                                   cfg->masked);
                do {
                        off += pxl_ws_parse(&p, b + off, total - off, &ev);
                        assert_int_not_equal(ev.type, PXL_WS_EV_ERROR);
                } while (ev.type != PXL_WS_EV_NEED_MORE);
                if (k < need) {
                        assert_int_equal(off, pre->len);
                        assert_memory_equal(b + pre->len, frame->p, k);
                } else {
                        assert_int_equal(off, total);
                }
                free(b);
        }
}

static void test_partial_header_need_more(void **state)
{
        static const struct {
                uint8_t b0;
                size_t len;
                int form;
        } data[] = {
                {FIN | OP_T, 0, L7},      {FIN | OP_T, 5, L7},
                {OP_B, 125, L7},          {FIN | OP_B, 5, L16},
                {FIN | OP_B, 300, L16},   {FIN | OP_B, 3, L64},
                {FIN | OP_B, 70000, L64}, {OP_T, 0, L64},
        };
        static const uint8_t ctrl[] = {FIN | OP_P, FIN | OP_O, FIN | OP_X};
        static const size_t ctrl_len[] = {0, 2, 7, 125};
        const struct run client = {0, 0, false};
        const struct run *sides[2] = {&server, &client};
        uint8_t *pl = calloc(1, 70000);
        struct sb pre = {0}, f = {0};
        size_t i, j, side;

        (void)state;
        assert_non_null(pl);
        memcpy(pl, "\x03\xe8", 2);
        for (side = 0; side < 2; side++) {
                const struct run *cfg = sides[side];

                /* a data header: kept until whole, then consumed alone */
                for (i = 0; i < sizeof(data) / sizeof(data[0]); i++) {
                        sb_frame_form(&f, data[i].b0, cfg->masked, pl,
                                      data[i].len, data[i].form);
                        expect_prefixes_kept(cfg, &pre, &f,
                                             f.len - data[i].len);
                        sb_free(&f);
                }
                /* a control frame: kept until its last payload byte */
                for (i = 0; i < sizeof(ctrl); i++) {
                        for (j = 0; j < sizeof(ctrl_len) / sizeof(size_t);
                             j++) {
                                sb_frame(&f, ctrl[i], cfg->masked, pl,
                                         ctrl_len[j]);
                                expect_prefixes_kept(cfg, &pre, &f, f.len);
                                sb_free(&f);
                        }
                }
        }

        /* the same inside an open message, after a consumed control frame
         * and after an empty fragment that is consumed without an event */
        sb_cf(&pre, OP_T, "ab");
        sb_cf(&pre, FIN | OP_P, "p");
        sb_cf(&pre, OP_C, "");
        sb_cf(&f, FIN | OP_C, "cd");
        expect_prefixes_kept(&server, &pre, &f, 6);
        sb_free(&f);
        sb_frame(&f, OP_C, true, pl + 2, 300);
        expect_prefixes_kept(&server, &pre, &f, 8);
        sb_free(&f);
        sb_cf(&f, FIN | OP_P, "x");
        expect_prefixes_kept(&server, &pre, &f, f.len);
        sb_free(&f);
        sb_cf(&f, FIN | OP_X,
              "\x03\xe8"
              "bye");
        expect_prefixes_kept(&server, &pre, &f, f.len);
        sb_free(&f);
        sb_free(&pre);

        /* the exact calls: 0 consumed until whole, then all of it */
        {
                struct pxl_ws_parser p;
                struct pxl_ws_event ev;
                uint8_t buf[16];

                sb_cf(&f, FIN | OP_X, "\x03\xe8");
                assert_int_equal(f.len, 8);
                memcpy(buf, f.p, f.len);
                pxl_ws_parser_init(&p, 0, 0, true);
                assert_int_equal(pxl_ws_parse(&p, buf, 1, &ev), 0);
                assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);
                assert_int_equal(pxl_ws_parse(&p, buf, 6, &ev), 0);
                assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);
                assert_int_equal(pxl_ws_parse(&p, buf, 7, &ev), 0);
                assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);
                assert_memory_equal(buf, f.p, f.len);
                assert_int_equal(pxl_ws_parse(&p, buf, 8, &ev), 8);
                assert_int_equal(ev.type, PXL_WS_EV_CLOSE);
                assert_int_equal(ev.close_code, 1000);
                assert_ptr_equal(ev.data, buf + 6);
                sb_free(&f);
                sb_header(&f, FIN | OP_B, true, 300, MIN);
                assert_int_equal(f.len, 8);
                memcpy(buf, f.p, f.len);
                pxl_ws_parser_init(&p, 0, 0, true);
                assert_int_equal(pxl_ws_parse(&p, buf, 7, &ev), 0);
                assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);
                assert_int_equal(pxl_ws_parse(&p, buf, 8, &ev), 8);
                assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);
                sb_free(&f);
        }
        free(pl);
}

/* Control frames between fragments, the stream cut anywhere. */
static void test_control_split_anywhere(void **state)
{
        uint8_t pl[125];
        size_t ends[3], e = 0, i, j, n_ctrl;
        struct sb s = {0};
        struct rec whole, r;
        struct feeder f;

        (void)state;
        for (i = 0; i < sizeof(pl); i++)
                pl[i] = (uint8_t)(255 - i);
        sb_cf(&s, OP_T, "Hel");
        sb_frame(&s, FIN | OP_P, true, pl, sizeof(pl));
        ends[e++] = s.len;
        sb_cf(&s, OP_C, "l");
        sb_cf(&s, FIN | OP_O, "");
        ends[e++] = s.len;
        sb_cf(&s, FIN | OP_C, "o");
        sb_cf(&s, FIN | OP_X,
              "\x03\xe8"
              "bye");
        ends[e++] = s.len;

        run_whole(&whole, &server, s.p, s.len);
        assert_int_equal(whole.n, 4);
        expect_item(&whole, 0, PXL_WS_EV_PING, OP_P, pl, sizeof(pl));
        expect_item(&whole, 1, PXL_WS_EV_PONG, OP_O, "", 0);
        expect_item(&whole, 2, PXL_WS_EV_DATA, OP_T, "Hello", 5);
        expect_item(&whole, 3, PXL_WS_EV_CLOSE, OP_X,
                    "\x03\xe8"
                    "bye",
                    5);
        assert_int_equal(whole.it[3].code, 1000);
        assert_int_equal(whole.left, 0);

        /* every two- and three-way split gives the same, whole frames */
        for (i = 0; i <= s.len; i++) {
                for (j = i; j <= s.len; j++) {
                        size_t cut[2] = {i, j};

                        run_cuts(&r, &server, s.p, s.len, cut, 2);
                        assert_same(&whole, &r);
                        rec_free(&r);
                }
        }

        /* byte by byte, each control frame comes with its last byte */
        start(&f, &r, &server);
        for (i = 0, n_ctrl = 0; i < s.len; i++) {
                size_t before = r.n;

                feed(&f, &r, s.p + i, 1);
                assert_true(r.n <= before + 1);
                if (r.n > before && r.it[before].type != PXL_WS_EV_DATA) {
                        assert_true(n_ctrl < e);
                        assert_int_equal(i + 1, ends[n_ctrl]);
                        n_ctrl++;
                }
        }
        assert_int_equal(n_ctrl, e);
        assert_same(&whole, &r);
        feeder_free(&f);
        rec_free(&r);
        rec_free(&whole);
        sb_free(&s);
}

/*
 * in[0..n): whole frames, then the first `hdr` bytes of a header whose
 * last byte condemns it. All n bytes fail with `code`; one byte less
 * waits, keeping hdr - 1 bytes unconsumed.
 */
static void expect_refused_at(const struct run *cfg, const uint8_t *in,
                              size_t n, size_t hdr, uint16_t code)
{
        struct feeder f;
        struct rec r;

        assert_true(hdr >= 1 && hdr <= n);
        start(&f, &r, cfg);
        feed(&f, &r, in, n);
        assert_true(r.dead);
        assert_int_equal(r.it[r.n - 1].type, PXL_WS_EV_ERROR);
        assert_int_equal(r.it[r.n - 1].code, code);
        feeder_free(&f);
        rec_free(&r);

        start(&f, &r, cfg);
        feed(&f, &r, in, n - 1);
        assert_false(r.dead);
        assert_int_equal(f.kept_len, hdr - 1);
        feeder_free(&f);
        rec_free(&r);
}

static void test_fail_fast_first_byte(void **state)
{
        static const uint8_t bad[] = {
                FIN | RSV1 | OP_T,
                RSV2 | OP_B,
                FIN | RSV3 | OP_P,
                RSV1 | OP_C,
                FIN | 0x3,
                0x7,
                FIN | 0xb,
                FIN | 0xf,
                OP_P,
                OP_O,
                OP_X,
                FIN | OP_C,
                OP_C,
        };
        static const uint8_t in_msg[] = {OP_T, OP_B, FIN | OP_T, FIN | OP_B,
                                         FIN | RSV1 | OP_C};
        const struct run client = {0, 0, false};
        struct sb s = {0};
        size_t i;

        (void)state;
        /* one byte, alone in a buffer of exactly one byte */
        for (i = 0; i < sizeof(bad); i++) {
                struct pxl_ws_parser p;
                struct pxl_ws_event ev;
                uint8_t *b = malloc(1);

                assert_non_null(b);
                b[0] = bad[i];
                pxl_ws_parser_init(&p, 0, 0, true);
                assert_int_equal(pxl_ws_parse(&p, b, 1, &ev), 1);
                assert_int_equal(ev.type, PXL_WS_EV_ERROR);
                assert_int_equal(ev.close_code, 1002);
                pxl_ws_parser_init(&p, 100, 100, false);
                assert_int_equal(pxl_ws_parse(&p, b, 1, &ev), 1);
                assert_int_equal(ev.type, PXL_WS_EV_ERROR);
                assert_int_equal(ev.close_code, 1002);
                free(b);
                expect_refused_at(&server, &bad[i], 1, 1, 1002);
                expect_refused_at(&client, &bad[i], 1, 1, 1002);
        }
        /* a new data frame while a message is open, after other frames */
        for (i = 0; i < sizeof(in_msg); i++) {
                sb_cf(&s, OP_T, "ab");
                sb_cf(&s, FIN | OP_P, "");
                sb_cf(&s, OP_C, "");
                sb_byte(&s, in_msg[i]);
                expect_refused_at(&server, s.p, s.len, 1, 1002);
                sb_free(&s);
        }
        /* after a finished message, a continuation fails at byte 0 */
        sb_cf(&s, FIN | OP_T, "done");
        sb_byte(&s, FIN | OP_C);
        expect_refused_at(&server, s.p, s.len, 1, 1002);
        sb_free(&s);
}

/* Rules decided by byte 1 or the length bytes: no mask key needed. */
static void test_fail_fast_length(void **state)
{
        const struct run client = {0, 0, false};
        const struct run frame100 = {100, 0, true};
        const struct run msg100 = {0, 100, true};
        const struct run both = {100, 100, true};
        uint8_t pl[60];
        struct sb s = {0};
        size_t pre;

        (void)state;
        memset(pl, 'x', sizeof(pl));
        /* byte 1: the mask bit, for either side */
        sb_header(&s, FIN | OP_T, false, 5, L7);
        expect_refused_at(&server, s.p, 2, 2, 1002);
        sb_free(&s);
        sb_header(&s, FIN | OP_T, true, 5, L7);
        expect_refused_at(&client, s.p, 2, 2, 1002);
        sb_free(&s);
        /* byte 1: a control length over 125 or in an extended form */
        sb_header(&s, FIN | OP_P, true, 126, MIN);
        expect_refused_at(&server, s.p, 2, 2, 1002);
        sb_free(&s);
        sb_header(&s, FIN | OP_O, true, 2, L16);
        expect_refused_at(&server, s.p, 2, 2, 1002);
        sb_free(&s);
        sb_header(&s, FIN | OP_X, true, 2, L64);
        expect_refused_at(&server, s.p, 2, 2, 1002);
        sb_free(&s);
        /* byte 1: a 1-byte close payload */
        sb_header(&s, FIN | OP_X, true, 1, L7);
        expect_refused_at(&server, s.p, 2, 2, 1002);
        sb_free(&s);
        /* the 64-bit top bit, before any limit, after 10 bytes */
        sb_header(&s, FIN | OP_B, true, 1ULL << 63, L64);
        expect_refused_at(&server, s.p, 10, 10, 1002);
        expect_refused_at(&both, s.p, 10, 10, 1002);
        sb_free(&s);
        sb_header(&s, FIN | OP_B, false, UINT64_MAX, L64);
        expect_refused_at(&client, s.p, 10, 10, 1002);
        sb_free(&s);
        /* the frame limit, in each length form */
        sb_header(&s, FIN | OP_B, true, 101, L7);
        expect_refused_at(&frame100, s.p, 2, 2, 1009);
        sb_free(&s);
        sb_header(&s, FIN | OP_B, true, 101, L16);
        expect_refused_at(&frame100, s.p, 4, 4, 1009);
        sb_free(&s);
        sb_header(&s, FIN | OP_T, true, 70000, L64);
        expect_refused_at(&frame100, s.p, 10, 10, 1009);
        sb_free(&s);
        sb_header(&s, FIN | OP_T, true, 1ULL << 40, L64);
        expect_refused_at(&both, s.p, 10, 10, 1009);
        sb_free(&s);
        /* the message limit, from a continuation's length */
        sb_frame(&s, OP_B, true, pl, 60);
        sb_cf(&s, FIN | OP_P, "not counted");
        pre = s.len;
        sb_header(&s, FIN | OP_C, true, 41, L7);
        expect_refused_at(&msg100, s.p, pre + 2, 2, 1009);
        sb_free(&s);
        sb_frame(&s, OP_B, true, pl, 60);
        pre = s.len;
        sb_header(&s, OP_C, true, 41, L16);
        expect_refused_at(&msg100, s.p, pre + 4, 4, 1009);
        sb_free(&s);
        sb_frame(&s, OP_T, true, pl, 60);
        sb_frame(&s, OP_C, true, pl, 40);
        pre = s.len;
        sb_header(&s, FIN | OP_C, true, 1, L64);
        expect_refused_at(&msg100, s.p, pre + 10, 10, 1009);
        sb_free(&s);
        /* a first frame over the message limit */
        sb_header(&s, OP_T, true, 101, L16);
        expect_refused_at(&msg100, s.p, 4, 4, 1009);
        sb_free(&s);
}

/* A stream with a bit of everything, valid to the end. */
static void build_mixed_stream(struct sb *s)
{
        static uint8_t big[70000];
        size_t i;

        for (i = 0; i < sizeof(big); i++)
                big[i] = (uint8_t)(i ^ (i >> 7));
        sb_cf(s, FIN | OP_T, "Hello");
        sb_cf(s, FIN | OP_P, "");
        sb_cf(s, OP_T, "\xce\xba\xe1");
        sb_cf(s, FIN | OP_P, "are you there?");
        sb_cf(s, OP_C, "");
        sb_cf(s, OP_C, "\xbd\xb9\xcf");
        sb_cf(s, FIN | OP_O, "yes");
        sb_cf(s, FIN | OP_C, "\x83\xce\xbc\xce\xb5");
        sb_frame_form(s, FIN | OP_B, true, big, 130, L16);
        sb_frame_form(s, FIN | OP_B, true, big, 3, L64);
        sb_frame(s, OP_B, true, big, 300);
        sb_frame(s, FIN | OP_C, true, big + 300, 7);
        sb_cf(s, FIN | OP_T, "");
        sb_frame(s, FIN | OP_B, true, big, sizeof(big));
        sb_cf(s, FIN | OP_X,
              "\x03\xe8"
              "done");
        sb_cf(s, FIN | OP_T, "after close");
}

static void test_split_equivalence(void **state)
{
        struct sb s = {0};
        struct rec whole_r, r;
        uint32_t seed = 12345;
        size_t i, k;

        (void)state;
        build_mixed_stream(&s);
        run_whole(&whole_r, &server, s.p, s.len);
        assert_int_equal(whole_r.n, 12);
        assert_false(whole_r.dead);
        expect_item(&whole_r, 4, PXL_WS_EV_DATA, OP_T,
                    "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11);
        run_bytes(&r, &server, s.p, s.len);
        assert_same(&whole_r, &r);
        rec_free(&r);
        /* every two-way split over the first frames (the small ones) */
        for (i = 0; i <= 400; i++) {
                size_t cut[1] = {i};

                run_cuts(&r, &server, s.p, s.len, cut, 1);
                assert_same(&whole_r, &r);
                rec_free(&r);
        }
        /* random chunkings */
        for (k = 0; k < 50; k++) {
                size_t cuts[64], n = 0, pos = 0;

                while (n < 64) {
                        seed = seed * 1103515245u + 12345u;
                        pos += (seed >> 16) % (k % 2 ? 97 : 5000);
                        if (pos > s.len)
                                break;
                        cuts[n++] = pos;
                }
                run_cuts(&r, &server, s.p, s.len, cuts, n);
                assert_same(&whole_r, &r);
                rec_free(&r);
        }
        rec_free(&whole_r);
        sb_free(&s);
}

static void test_events_one_buffer(void **state)
{
        struct pxl_ws_parser p;
        struct pxl_ws_event ev;
        struct sb s = {0};
        size_t used;

        (void)state;
        sb_cf(&s, FIN | OP_T, "Hello");
        sb_cf(&s, FIN | OP_P, "hi");
        sb_cf(&s, FIN | OP_X, "");
        pxl_ws_parser_init(&p, 0, 0, true);
        used = pxl_ws_parse(&p, s.p, s.len, &ev);
        assert_int_equal(used, 11);
        assert_int_equal(ev.type, PXL_WS_EV_DATA);
        used += pxl_ws_parse(&p, s.p + used, s.len - used, &ev);
        assert_int_equal(used, 19);
        assert_int_equal(ev.type, PXL_WS_EV_PING);
        assert_memory_equal(ev.data, "hi", 2);
        assert_ptr_equal(ev.data, s.p + 17);
        used += pxl_ws_parse(&p, s.p + used, s.len - used, &ev);
        assert_int_equal(used, s.len);
        assert_int_equal(ev.type, PXL_WS_EV_CLOSE);
        assert_int_equal(ev.close_code, 1005);
        assert_int_equal(pxl_ws_parse(&p, s.p + used, 0, &ev), 0);
        assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);
        /* empty input, even NULL, just asks for more */
        assert_int_equal(pxl_ws_parse(&p, NULL, 0, &ev), 0);
        assert_int_equal(ev.type, PXL_WS_EV_NEED_MORE);
        sb_free(&s);
}

static void test_dead_after_error(void **state)
{
        struct pxl_ws_parser p;
        struct pxl_ws_event ev;
        struct sb s = {0};
        int i;

        (void)state;
        sb_frame(&s, FIN | RSV2 | OP_T, true, "x", 1);
        sb_cf(&s, FIN | OP_T, "valid");
        pxl_ws_parser_init(&p, 0, 0, true);
        assert_int_equal(pxl_ws_parse(&p, s.p, s.len, &ev), 1);
        assert_int_equal(ev.type, PXL_WS_EV_ERROR);
        assert_int_equal(ev.close_code, 1002);
        for (i = 0; i < 3; i++) {
                assert_int_equal(pxl_ws_parse(&p, s.p + 7, s.len - 7, &ev), 0);
                assert_int_equal(ev.type, PXL_WS_EV_ERROR);
                assert_int_equal(ev.close_code, 1002);
                assert_int_equal(pxl_ws_parse(&p, NULL, 0, &ev), 0);
                assert_int_equal(ev.type, PXL_WS_EV_ERROR);
        }
        /* init revives it */
        pxl_ws_parser_init(&p, 0, 0, true);
        assert_int_equal(pxl_ws_parse(&p, s.p + 7, s.len - 7, &ev), s.len - 7);
        assert_int_equal(ev.type, PXL_WS_EV_DATA);
        sb_free(&s);
}

/* ---- encoders ---- */

static void test_frame_header(void **state)
{
        static const struct {
                uint64_t len;
                size_t hlen;
                const char *bytes;
        } t[] = {
                {0, 2, "\x81\x00"},
                {5, 2, "\x81\x05"},
                {125, 2, "\x81\x7d"},
                {126, 4, "\x81\x7e\x00\x7e"},
                {65535, 4, "\x81\x7e\xff\xff"},
                {65536, 10, "\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"},
                {0x0102030405060708ULL, 10,
                 "\x81\x7f\x01\x02\x03\x04\x05\x06\x07\x08"},
                {(1ULL << 63) - 1, 10,
                 "\x81\x7f\x7f\xff\xff\xff\xff\xff\xff\xff"},
        };
        uint8_t out[PXL_WS_MAX_HEADER + 2];
        size_t i, n;

        (void)state;
        for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                memset(out, 0xee, sizeof(out));
                n = pxl_ws_frame_header(out, OP_T, true, t[i].len, NULL);
                assert_int_equal(n, t[i].hlen);
                assert_memory_equal(out, t[i].bytes, n);
                assert_int_equal(out[n], 0xee);
                n = pxl_ws_frame_header(out, OP_T, true, t[i].len, key);
                assert_int_equal(n, t[i].hlen + 4);
                assert_int_equal(out[1], (uint8_t)t[i].bytes[1] | 0x80);
                assert_memory_equal(out + 2, t[i].bytes + 2, t[i].hlen - 2);
                assert_memory_equal(out + t[i].hlen, key, 4);
                assert_int_equal(out[n], 0xee);
        }
        n = pxl_ws_frame_header(out, OP_B, false, 3, NULL);
        assert_int_equal(n, 2);
        assert_int_equal(out[0], 0x02);
        n = pxl_ws_frame_header(out, OP_X, true, 2, NULL);
        assert_int_equal(out[0], 0x88);
        n = pxl_ws_frame_header(out, OP_P, true, 0, NULL);
        assert_int_equal(out[0], 0x89);
        assert_int_equal(out[1], 0x00);
}

/* Encode with the codec's own encoder (masked), parse it back. */
static void test_encode_roundtrip(void **state)
{
        static const size_t lens[] = {0,   1,     7,     125,   126,
                                      127, 65535, 65536, 100003};
        static const uint8_t masks[][4] = {
                {0, 0, 0, 0}, {0x37, 0xfa, 0x21, 0x3d}, {0xff, 1, 0x80, 7}};
        uint8_t *pl = malloc(100003);
        uint8_t *frame = malloc(100003 + PXL_WS_MAX_HEADER);
        size_t i, m;

        (void)state;
        assert_non_null(pl);
        assert_non_null(frame);
        for (i = 0; i < 100003; i++)
                pl[i] = (uint8_t)('A' + i % 50);
        for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                for (m = 0; m < 3; m++) {
                        struct rec r;
                        size_t h = pxl_ws_frame_header(frame, OP_T, true,
                                                       lens[i], masks[m]);

                        memcpy(frame + h, pl, lens[i]);
                        pxl_ws_mask(frame + h, lens[i], masks[m], 0);
                        run_whole(&r, &server, frame, h + lens[i]);
                        assert_int_equal(r.n, 1);
                        expect_item(&r, 0, PXL_WS_EV_DATA, OP_T, pl, lens[i]);
                        rec_free(&r);
                        /* unmasked, to a client parser */
                        {
                                const struct run client = {0, 0, false};

                                h = pxl_ws_frame_header(frame, OP_B, true,
                                                        lens[i], NULL);
                                memcpy(frame + h, pl, lens[i]);
                                run_whole(&r, &client, frame, h + lens[i]);
                                expect_item(&r, 0, PXL_WS_EV_DATA, OP_B, pl,
                                            lens[i]);
                                rec_free(&r);
                        }
                }
        }
        /* a close built by pxl_ws_close_payload, masked, parses back */
        {
                uint8_t cp[PXL_WS_MAX_CONTROL];
                size_t n = pxl_ws_close_payload(cp, 4001, "heartbeat timeout");
                size_t h = pxl_ws_frame_header(frame, OP_X, true, n, key);
                struct rec r;

                memcpy(frame + h, cp, n);
                pxl_ws_mask(frame + h, n, key, 0);
                run_whole(&r, &server, frame, h + n);
                assert_int_equal(r.n, 1);
                assert_int_equal(r.it[0].type, PXL_WS_EV_CLOSE);
                assert_int_equal(r.it[0].code, 4001);
                assert_int_equal(r.it[0].reason_len, 17);
                rec_free(&r);
        }
        free(frame);
        free(pl);
}

static void test_mask(void **state)
{
        uint8_t mem[64 + 8], ref[64];
        size_t len, off, al, i;

        (void)state;
        for (al = 0; al < 8; al++) {
                for (len = 0; len <= 64; len++) {
                        for (off = 0; off < 10; off++) {
                                uint8_t *b = mem + al;

                                for (i = 0; i < len; i++) {
                                        b[i] = (uint8_t)(i * 5 + len);
                                        ref[i] = (uint8_t)(b[i] ^
                                                           key[(off + i) % 4]);
                                }
                                pxl_ws_mask(b, len, key, off);
                                assert_memory_equal(b, ref, len);
                                pxl_ws_mask(b, len, key, off);
                                for (i = 0; i < len; i++)
                                        assert_int_equal(
                                                b[i], (uint8_t)(i * 5 + len));
                        }
                }
        }
        /* masking in two pieces equals masking at once */
        for (i = 0; i <= 64; i++) {
                for (len = 0; len < 64; len++)
                        mem[len] = ref[len] = (uint8_t)len;
                pxl_ws_mask(mem, i, key, 0);
                pxl_ws_mask(mem + i, 64 - i, key, i);
                pxl_ws_mask(ref, 64, key, 0);
                assert_memory_equal(mem, ref, 64);
        }
        /* offsets beyond 32 bits */
        mem[0] = 0;
        pxl_ws_mask(mem, 1, key, (1ULL << 40) + 2);
        assert_int_equal(mem[0], key[2]);
        pxl_ws_mask(NULL, 0, key, 0);
}

static void test_close_payload(void **state)
{
        static const struct {
                const char *prefix, *ch;
                size_t count, kept;
        } cuts[] = {
                /* 2-byte characters: 61 of them (122 bytes), not 61.5 */
                {"", "\xc3\xa9", 70, 122},
                /* 3-byte characters: exactly 41 fit */
                {"", "\xe2\x82\xac", 50, 123},
                /* 4-byte characters: 30 of them (120 bytes) */
                {"", "\xf0\x9f\x98\x80", 40, 120},
                /* a 4-byte character straddling 123 after one ASCII byte */
                {"x", "\xf0\x9f\x98\x80", 40, 121},
        };
        uint8_t out[PXL_WS_MAX_CONTROL + 8];
        char in[400];
        size_t n, i, k;

        (void)state;
        n = pxl_ws_close_payload(out, 1000, "bye");
        assert_int_equal(n, 5);
        assert_memory_equal(out,
                            "\x03\xe8"
                            "bye",
                            5);
        n = pxl_ws_close_payload(out, 4000, NULL);
        assert_int_equal(n, 2);
        assert_memory_equal(out, "\x0f\xa0", 2);
        n = pxl_ws_close_payload(out, 1002, "");
        assert_int_equal(n, 2);
        /* codes that never go on the wire give the empty payload */
        assert_int_equal(pxl_ws_close_payload(out, 1005, "x"), 0);
        assert_int_equal(pxl_ws_close_payload(out, 1006, "x"), 0);
        assert_int_equal(pxl_ws_close_payload(out, 1015, "x"), 0);
        assert_int_equal(pxl_ws_close_payload(out, 0, "x"), 0);

        /* ASCII: 123 fits, 124 and more are cut to 123 */
        memset(in, 'a', sizeof(in));
        in[123] = '\0';
        assert_int_equal(pxl_ws_close_payload(out, 1000, in), 125);
        memset(in, 'a', sizeof(in));
        in[124] = '\0';
        assert_int_equal(pxl_ws_close_payload(out, 1000, in), 125);
        in[399] = '\0';
        memset(out, 0xee, sizeof(out));
        assert_int_equal(pxl_ws_close_payload(out, 1000, in), 125);
        assert_int_equal(out[125], 0xee);

        /* Longer non-ASCII reasons are cut at a character boundary. */
        for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
                strcpy(in, cuts[i].prefix);
                for (k = 0; k < cuts[i].count; k++)
                        strcat(in, cuts[i].ch);
                n = pxl_ws_close_payload(out, 1000, in);
                assert_int_equal(n, 2 + cuts[i].kept);
                assert_true(pxl_utf8_valid(out + 2, n - 2));
        }
        /* a short non-ASCII reason is kept whole */
        n = pxl_ws_close_payload(out, 1001, "\xe2\x82\xac");
        assert_int_equal(n, 5);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rfc_single_unmasked),
                cmocka_unit_test(test_rfc_single_masked),
                cmocka_unit_test(test_rfc_fragmented_unmasked),
                cmocka_unit_test(test_rfc_ping_pong),
                cmocka_unit_test(test_rfc_long_binary),
                cmocka_unit_test(test_length_forms),
                cmocka_unit_test(test_length_top_bit),
                cmocka_unit_test(test_masking_rules),
                cmocka_unit_test(test_rsv_bits),
                cmocka_unit_test(test_reserved_opcodes),
                cmocka_unit_test(test_control_rules),
                cmocka_unit_test(test_continuation_without_message),
                cmocka_unit_test(test_new_message_while_open),
                cmocka_unit_test(test_interleaved_control),
                cmocka_unit_test(test_zero_length_frames),
                cmocka_unit_test(test_frame_limit),
                cmocka_unit_test(test_message_limit),
                cmocka_unit_test(test_limits_unlimited),
                cmocka_unit_test(test_text_utf8),
                cmocka_unit_test(test_text_fail_fast_position),
                cmocka_unit_test(test_close_frames),
                cmocka_unit_test(test_close_code_table),
                cmocka_unit_test(test_control_split),
                cmocka_unit_test(test_data_split_mask_offset),
                cmocka_unit_test(test_partial_header_need_more),
                cmocka_unit_test(test_control_split_anywhere),
                cmocka_unit_test(test_fail_fast_first_byte),
                cmocka_unit_test(test_fail_fast_length),
                cmocka_unit_test(test_split_equivalence),
                cmocka_unit_test(test_events_one_buffer),
                cmocka_unit_test(test_dead_after_error),
                cmocka_unit_test(test_frame_header),
                cmocka_unit_test(test_encode_roundtrip),
                cmocka_unit_test(test_mask),
                cmocka_unit_test(test_close_payload),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
