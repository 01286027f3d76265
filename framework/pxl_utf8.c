/*
 * pxl_utf8.c - incremental UTF-8 validation as a small DFA over byte classes.
 * Owns only the validity rules of RFC 3629 (no overlongs, no surrogates,
 * nothing above U+10FFFF). It does not decode code points, normalise or
 * know about WebSocket framing; pxl_ws_codec.c drives it per text message.
 */
#include "pxl_utf8.h"

#include <string.h>

/*
 * Byte classes. The classes split the continuation range 80..BF into the
 * three pieces that the lead bytes E0, ED, F0 and F4 restrict, so that a
 * single table lookup catches overlongs, surrogates and values above
 * U+10FFFF on the second byte instead of after decoding.
 */
enum {
        C_ASCII, /* 00..7F */
        C_CONT1, /* 80..8F */
        C_CONT2, /* 90..9F */
        C_CONT3, /* A0..BF */
        C_BAD,   /* C0, C1, F5..FF: never valid */
        C_LEAD2, /* C2..DF */
        C_E0,    /* E0: second byte A0..BF (else overlong) */
        C_LEAD3, /* E1..EC, EE, EF */
        C_ED,    /* ED: second byte 80..9F (else surrogate) */
        C_F0,    /* F0: second byte 90..BF (else overlong) */
        C_LEAD4, /* F1..F3 */
        C_F4,    /* F4: second byte 80..8F (else > U+10FFFF) */
        C_COUNT
};

/*
 * States. 0 must be "at a boundary" (the header promises it); S_REJECT
 * is sticky. The names say how many continuation bytes are still owed and
 * which range the next one must fall in.
 */
enum {
        S_ACCEPT = 0,
        S_NEED1,  /* 1 more, any 80..BF */
        S_NEED2,  /* 2 more, any 80..BF */
        S_E0,     /* 2 more, next A0..BF */
        S_ED,     /* 2 more, next 80..9F */
        S_F0,     /* 3 more, next 90..BF */
        S_NEED3,  /* 3 more, any 80..BF */
        S_F4,     /* 3 more, next 80..8F */
        S_REJECT, /* sticky */
        S_COUNT
};

/* One letter per class so that each row of the table is one 16-byte run. */
#define A C_ASCII
#define X C_CONT1
#define Y C_CONT2
#define Z C_CONT3
#define B C_BAD
#define L C_LEAD2
#define E C_E0
#define T C_LEAD3
#define D C_ED
#define F C_F0
#define Q C_LEAD4
#define G C_F4
static const uint8_t utf8_class[256] = {
        A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, /* 00 */
        A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, /* 10 */
        A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, /* 20 */
        A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, /* 30 */
        A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, /* 40 */
        A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, /* 50 */
        A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, /* 60 */
        A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, A, /* 70 */
        X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, /* 80 */
        Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, /* 90 */
        Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, /* A0 */
        Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, /* B0 */
        B, B, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* C0 */
        L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* D0 */
        E, T, T, T, T, T, T, T, T, T, T, T, T, D, T, T, /* E0 */
        F, Q, Q, Q, G, B, B, B, B, B, B, B, B, B, B, B, /* F0 */
};

/*
 * The transitions in "shift" form: utf8_step[class] packs, for each state
 * s, the next state times 6 at bits 6s..6s+5. A step is then
 * s = utf8_step[utf8_class[byte]] >> s & 63 (s kept times 6): neither load
 * depends on the state, so the chain from byte to byte is a shift and a
 * mask rather than a table lookup. Columns are the states in enum order:
 * ACCEPT NEED1 NEED2 E0 ED F0 NEED3 F4 REJECT.
 */
#define R S_REJECT
#define ROW(a, n1, n2, e0, ed, f0, n3, f4)                                     \
        ((uint64_t)(a)*6 | (uint64_t)(n1)*6 << 6 | (uint64_t)(n2)*6 << 12 |    \
         (uint64_t)(e0)*6 << 18 | (uint64_t)(ed)*6 << 24 |                     \
         (uint64_t)(f0)*6 << 30 | (uint64_t)(n3)*6 << 36 |                     \
         (uint64_t)(f4)*6 << 42 | (uint64_t)R * 6 << 48)
static const uint64_t utf8_step[C_COUNT] = {
        [C_ASCII] = ROW(S_ACCEPT, R, R, R, R, R, R, R),
        [C_CONT1] = ROW(R, S_ACCEPT, S_NEED1, R, S_NEED1, R, S_NEED2, S_NEED2),
        [C_CONT2] = ROW(R, S_ACCEPT, S_NEED1, R, S_NEED1, S_NEED2, S_NEED2, R),
        [C_CONT3] = ROW(R, S_ACCEPT, S_NEED1, S_NEED1, R, S_NEED2, S_NEED2, R),
        [C_BAD] = ROW(R, R, R, R, R, R, R, R),
        [C_LEAD2] = ROW(S_NEED1, R, R, R, R, R, R, R),
        [C_E0] = ROW(S_E0, R, R, R, R, R, R, R),
        [C_LEAD3] = ROW(S_NEED2, R, R, R, R, R, R, R),
        [C_ED] = ROW(S_ED, R, R, R, R, R, R, R),
        [C_F0] = ROW(S_F0, R, R, R, R, R, R, R),
        [C_LEAD4] = ROW(S_NEED3, R, R, R, R, R, R, R),
        [C_F4] = ROW(S_F4, R, R, R, R, R, R, R),
};
#undef ROW
#undef R
#undef A
#undef X
#undef Y
#undef Z
#undef B
#undef L
#undef E
#undef T
#undef D
#undef F
#undef Q
#undef G

#define HIGH_BITS 0x8080808080808080ULL

static uint64_t step(uint64_t s, uint8_t byte)
{
        return utf8_step[utf8_class[byte]] >> s & 63;
}

int pxl_utf8_feed(struct pxl_utf8 *u, const uint8_t *buf, size_t len)
{
        uint64_t s = (uint64_t)u->state * 6;
        size_t i = 0;

        if (u->state >= S_REJECT)
                return -1;
        /*
         * 8 bytes a step. Chat traffic is mostly ASCII: at a boundary, 8
         * ASCII bytes are skipped with one test (memcpy keeps the load
         * legal at any alignment). Otherwise the 8 steps run without a
         * branch; REJECT is sticky, so checking once after them is enough.
         */
        while (len - i >= 8) {
                uint64_t w;

                memcpy(&w, buf + i, sizeof(w));
                if (s != 0 || (w & HIGH_BITS) != 0) {
                        for (int k = 0; k < 8; k++)
                                s = step(s, buf[i + k]);
                        if (s == S_REJECT * 6)
                                break;
                }
                i += 8;
        }
        for (; i < len && s != S_REJECT * 6; i++)
                s = step(s, buf[i]);
        u->state = (uint32_t)(s / 6);
        return s == S_REJECT * 6 ? -1 : 0;
}

bool pxl_utf8_complete(const struct pxl_utf8 *u)
{
        return u->state == S_ACCEPT;
}

bool pxl_utf8_valid(const uint8_t *buf, size_t len)
{
        struct pxl_utf8 u;

        pxl_utf8_init(&u);
        return pxl_utf8_feed(&u, buf, len) == 0 && pxl_utf8_complete(&u);
}
