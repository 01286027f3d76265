/*
 * fuzz_ws_codec.c - libFuzzer harness for the frame parser in
 * framework/pxl_ws_codec.c. Input: 2 bytes choosing a split point, 1 byte
 * choosing small limits, then the wire bytes. It checks the parser's
 * invariants and that a split feed and a byte-by-byte feed agree. The
 * parser keeps no input, so each feed presents the bytes it did not
 * consume again, followed by the new ones, as a connection does. The
 * encoders and the UTF-8 DFA alone are not fuzzed here (see fuzz_utf8.c).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pxl_ws_codec.h"
#include "ref_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a peer finished: whole messages, control frames, the error. */
struct trace {
        uint8_t *p;
        size_t len, cap;
};

static void trace_put(struct trace *t, const void *d, size_t n)
{
        CHECK(t->len + n <= t->cap);
        if (n)
                memcpy(t->p + t->len, d, n);
        t->len += n;
}

static void trace_item(struct trace *t, uint8_t type, uint8_t opcode,
                       uint16_t code, const uint8_t *d, size_t n)
{
        uint8_t h[4 + sizeof(size_t)];

        h[0] = type;
        h[1] = opcode;
        h[2] = (uint8_t)(code >> 8);
        h[3] = (uint8_t)code;
        memcpy(h + 4, &n, sizeof(n));
        trace_put(t, h, sizeof(h));
        trace_put(t, d, n);
}

struct cfg {
        uint64_t max_frame, max_msg;
        bool masked;
};

struct state {
        struct pxl_ws_parser p;
        struct trace *t;
        uint8_t *msg; /* the open message so far */
        size_t msg_len;
        size_t msg_ok; /* msg[0..msg_ok) is whole valid characters */
        bool in_msg;
        uint8_t msg_op;
        bool dead;
        const struct cfg *cfg;
        uint8_t *kept; /* bytes not consumed yet, shown again next time */
        size_t kept_len;
};

/* The most a parser may leave unconsumed: less than a whole control frame. */
#define MAX_KEPT (PXL_WS_MAX_HEADER + PXL_WS_MAX_CONTROL - 1)

static bool within(const void *p, size_t n, const void *base, size_t size)
{
        uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;

        return a >= b && a + n <= b + size;
}

static void on_data(struct state *s, const struct pxl_ws_event *ev)
{
        CHECK(ev->opcode == PXL_WS_OP_TEXT || ev->opcode == PXL_WS_OP_BINARY);
        if (!s->in_msg) {
                s->in_msg = true;
                s->msg_op = ev->opcode;
                s->msg_len = 0;
                s->msg_ok = 0;
        }
        CHECK(ev->opcode == s->msg_op);
        if (ev->len)
                memcpy(s->msg + s->msg_len, ev->data, ev->len);
        s->msg_len += ev->len;
        if (s->cfg->max_msg)
                CHECK(s->msg_len <= s->cfg->max_msg);
        /* Fail fast: no text chunk is handed out with a bad byte in it. */
        if (s->msg_op == PXL_WS_OP_TEXT)
                CHECK(ref_walk(s->msg, s->msg_len, &s->msg_ok));
        if (!ev->fin)
                return;
        if (s->msg_op == PXL_WS_OP_TEXT) {
                CHECK(s->msg_ok == s->msg_len);
                CHECK(ref_valid(s->msg, s->msg_len));
        }
        trace_item(s->t, PXL_WS_EV_DATA, s->msg_op, 0, s->msg, s->msg_len);
        s->in_msg = false;
}

static void on_control(struct state *s, const struct pxl_ws_event *ev)
{
        static const uint8_t op_of[] = {
                [PXL_WS_EV_PING] = PXL_WS_OP_PING,
                [PXL_WS_EV_PONG] = PXL_WS_OP_PONG,
                [PXL_WS_EV_CLOSE] = PXL_WS_OP_CLOSE,
        };

        CHECK(ev->fin);
        CHECK(ev->opcode == op_of[ev->type]);
        CHECK(ev->len <= PXL_WS_MAX_CONTROL);
        if (ev->type == PXL_WS_EV_CLOSE) {
                if (ev->len == 0) {
                        CHECK(ev->close_code == 1005);
                        CHECK(ev->reason_len == 0);
                } else {
                        unsigned c = (unsigned)ev->data[0] << 8 | ev->data[1];

                        CHECK(ev->len >= 2);
                        CHECK(ev->close_code == c);
                        CHECK(pxl_ws_close_code_valid(c));
                        CHECK((c >= 1000 && c <= 1003) ||
                              (c >= 1007 && c <= 1014) ||
                              (c >= 3000 && c <= 4999));
                        CHECK(ev->reason == ev->data + 2);
                        CHECK(ev->reason_len == ev->len - 2);
                        CHECK(ref_valid(ev->reason, ev->reason_len));
                }
        }
        trace_item(s->t, (uint8_t)ev->type, ev->opcode, ev->close_code,
                   ev->data, ev->len);
}

/*
 * Feed one chunk after the bytes kept from the last one, in a buffer of
 * exactly their size, until NEED_MORE/ERROR; keep what is not consumed.
 */
static void feed(struct state *s, const uint8_t *in, size_t n)
{
        size_t total = s->kept_len + n, off = 0;
        uint8_t *b = malloc(total ? total : 1);
        uint8_t *orig = malloc(total ? total : 1);

        CHECK(b != NULL && orig != NULL);
        if (s->kept_len)
                memcpy(b, s->kept, s->kept_len);
        if (n)
                memcpy(b + s->kept_len, in, n);
        memcpy(orig, b, total);
        while (!s->dead) {
                struct pxl_ws_event ev;
                size_t used = pxl_ws_parse(&s->p, b + off, total - off, &ev);

                CHECK(used <= total - off);
                if (ev.type == PXL_WS_EV_NEED_MORE) {
                        struct pxl_ws_event again;
                        size_t rest;

                        off += used;
                        rest = total - off;
                        /* Less than a control frame is left, untouched. */
                        CHECK(rest <= MAX_KEPT);
                        CHECK(memcmp(b + off, orig + off, rest) == 0);
                        /* Shown again alone, it is still not enough. */
                        CHECK(pxl_ws_parse(&s->p, b + off, rest, &again) == 0);
                        CHECK(again.type == PXL_WS_EV_NEED_MORE);
                        CHECK(memcmp(b + off, orig + off, rest) == 0);
                        break;
                }
                if (ev.type == PXL_WS_EV_ERROR) {
                        struct pxl_ws_event again;

                        CHECK(ev.close_code == 1002 || ev.close_code == 1007 ||
                              ev.close_code == 1009);
                        CHECK(pxl_ws_parse(&s->p, b + off, total - off,
                                           &again) == 0);
                        CHECK(again.type == PXL_WS_EV_ERROR);
                        CHECK(again.close_code == ev.close_code);
                        trace_item(s->t, PXL_WS_EV_ERROR, 0, ev.close_code,
                                   NULL, 0);
                        s->dead = true;
                        break;
                }
                /* progress: every real event eats input */
                CHECK(used > 0);
                /* payloads, control ones too, lie in the caller's buffer */
                if (ev.len)
                        CHECK(within(ev.data, ev.len, b + off, used));
                if (ev.type == PXL_WS_EV_DATA)
                        on_data(s, &ev);
                else
                        on_control(s, &ev);
                off += used;
        }
        free(s->kept);
        s->kept = NULL;
        s->kept_len = s->dead ? 0 : total - off;
        if (s->kept_len) {
                s->kept = malloc(s->kept_len);
                CHECK(s->kept != NULL);
                memcpy(s->kept, b + off, s->kept_len);
        }
        free(orig);
        free(b);
}

/* step 0 = one split at `cut`; step 1 = one byte at a time. */
static void run(const struct cfg *cfg, const uint8_t *in, size_t n, size_t cut,
                int step, struct trace *t, uint8_t *msgbuf)
{
        struct state s;
        size_t i;

        memset(&s, 0, sizeof(s));
        s.t = t;
        s.msg = msgbuf;
        s.cfg = cfg;
        pxl_ws_parser_init(&s.p, cfg->max_frame, cfg->max_msg, cfg->masked);
        if (step == 0) {
                feed(&s, in, cut);
                feed(&s, in + cut, n - cut);
        } else {
                for (i = 0; i < n && !s.dead; i++)
                        feed(&s, in + i, 1);
        }
        /* Both ways leave the same incomplete tail behind. */
        if (!s.dead)
                trace_item(t, 0xff, 0, (uint16_t)s.kept_len, NULL, 0);
        free(s.kept);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct trace a, b;
        struct cfg cfg;
        const uint8_t *in;
        uint8_t *msgbuf;
        size_t n, cut, cap;
        int m;

        if (size < 3)
                return 0;
        in = data + 3;
        n = size - 3;
        cut = ((size_t)data[0] << 8 | data[1]) % (n + 1);
        /* Small limits, 0 (none) included, so the 1009 paths get hit. */
        cfg.max_frame = (data[2] & 0x0f) * 9u;
        cfg.max_msg = (data[2] >> 4) * 17u;

        /*
         * Each item costs at least 2 input bytes, plus the error or the
         * tail at the end; content <= n per run.
         */
        cap = (n / 2 + 2) * (4 + sizeof(size_t)) + n + 1;
        a.p = malloc(cap);
        b.p = malloc(cap);
        msgbuf = malloc(n + 1);
        CHECK(a.p && b.p && msgbuf);
        a.cap = b.cap = cap;
        for (m = 0; m < 2; m++) {
                cfg.masked = m == 0;
                a.len = b.len = 0;
                run(&cfg, in, n, cut, 0, &a, msgbuf);
                run(&cfg, in, n, 0, 1, &b, msgbuf);
                CHECK(a.len == b.len);
                CHECK(memcmp(a.p, b.p, a.len) == 0);
        }
        free(msgbuf);
        free(b.p);
        free(a.p);
        return 0;
}
