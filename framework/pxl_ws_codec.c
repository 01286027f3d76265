/*
 * pxl_ws_codec.c - RFC 6455 frame parser, masking and frame/close encoders.
 * Owns frame syntax, fragmentation rules, size limits and the UTF-8 rule for
 * text and close reasons (through pxl_utf8.c). It does not own buffers,
 * sockets, timers, the closing handshake or extensions: pxl_conn.c does.
 */
#include "pxl_ws_codec.h"

#include <string.h>

#define CLOSE_PROTOCOL  1002
#define CLOSE_NO_STATUS 1005
#define CLOSE_BAD_DATA  1007
#define CLOSE_TOO_BIG   1009

#define B0_FIN    0x80
#define B0_RSV    0x70
#define B0_OPCODE 0x0f
#define B1_MASK   0x80
#define B1_LEN    0x7f
#define LEN_16    126
#define LEN_64    127

/* What read_header found; any other value is a close code to fail with. */
#define HDR_WHOLE 0
#define HDR_SHORT 1

/* A frame header, decoded (it still lies in the caller's buffer). */
struct frame_hdr {
        uint8_t b0, b1;
        size_t size; /* header bytes; on an error, the bytes examined */
        uint64_t len;
};

static bool is_control(uint8_t opcode)
{
        return (opcode & 0x8) != 0;
}

static uint32_t limit32(uint64_t v)
{
        return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void pxl_ws_parser_init(struct pxl_ws_parser *p, uint64_t max_frame_size,
                        uint64_t max_message_size, bool expect_masked)
{
        memset(p, 0, sizeof(*p));
        p->max_frame_size = limit32(max_frame_size);
        p->max_message_size = limit32(max_message_size);
        p->expect_masked = expect_masked;
        pxl_utf8_init(&p->utf8);
}

static size_t fail(struct pxl_ws_parser *p, struct pxl_ws_event *ev,
                   uint16_t code, size_t used)
{
        p->error_code = code;
        memset(ev, 0, sizeof(*ev));
        ev->type = PXL_WS_EV_ERROR;
        ev->close_code = code;
        return used;
}

/* Bytes of extended length that follow byte 1 (0, 2 or 8). */
static size_t ext_len_size(uint8_t b1)
{
        uint8_t l7 = b1 & B1_LEN;

        return l7 == LEN_16 ? 2 : l7 == LEN_64 ? 8 : 0;
}

/* The payload length; the extended length bytes must be there. */
static uint64_t payload_len(const uint8_t *b)
{
        size_t ext = ext_len_size(b[1]);
        uint64_t len = 0;
        size_t i;

        if (ext == 0)
                return b[1] & B1_LEN;
        for (i = 0; i < ext; i++)
                len = len << 8 | b[2 + i];
        return len;
}

/*
 * Everything byte 0 can tell on its own. Checked as soon as the byte
 * arrives so that garbage is refused before we wait for more of it.
 */
static uint16_t check_byte0(const struct pxl_ws_parser *p, uint8_t b)
{
        uint8_t op = b & B0_OPCODE;

        /* No extension is ever negotiated, so no RSV bit has a meaning. */
        if (b & B0_RSV)
                return CLOSE_PROTOCOL;
        switch (op) {
        case PXL_WS_OP_CONT:
                return p->msg_opcode ? 0 : CLOSE_PROTOCOL;
        case PXL_WS_OP_TEXT:
        case PXL_WS_OP_BINARY:
                return p->msg_opcode ? CLOSE_PROTOCOL : 0;
        case PXL_WS_OP_CLOSE:
        case PXL_WS_OP_PING:
        case PXL_WS_OP_PONG:
                return (b & B0_FIN) ? 0 : CLOSE_PROTOCOL;
        default:
                return CLOSE_PROTOCOL;
        }
}

static uint16_t check_byte1(const struct pxl_ws_parser *p, uint8_t b0,
                            uint8_t b1)
{
        uint8_t op = b0 & B0_OPCODE;
        uint8_t l7 = b1 & B1_LEN;

        if (((b1 & B1_MASK) != 0) != p->expect_masked)
                return CLOSE_PROTOCOL;
        /*
         * Control payloads must fit the 7-bit form; we also refuse a
         * non-minimal 16/64-bit length there, so that a whole control
         * frame is never more than 2 + 4 + 125 bytes.
         */
        if (is_control(op) && l7 > PXL_WS_MAX_CONTROL)
                return CLOSE_PROTOCOL;
        /* A close payload is empty or starts with a 2-byte code. */
        if (op == PXL_WS_OP_CLOSE && l7 == 1)
                return CLOSE_PROTOCOL;
        return 0;
}

/*
 * Limits are checked once the length is known, before the mask key and
 * long before the payload, so an oversized frame costs us nothing.
 */
static uint16_t check_length(const struct pxl_ws_parser *p, uint8_t op,
                             uint64_t len)
{
        uint64_t have = op == PXL_WS_OP_CONT ? p->msg_size : 0;

        if (len >> 63)
                return CLOSE_PROTOCOL;
        if (is_control(op))
                return 0;
        if (p->max_frame_size && len > p->max_frame_size)
                return CLOSE_TOO_BIG;
        /* have <= max_message_size here, so the subtraction is safe. */
        if (p->max_message_size && len > p->max_message_size - have)
                return CLOSE_TOO_BIG;
        return 0;
}

/*
 * Decode the header at b[0..have), have >= 1, applying each rule as soon
 * as the bytes that decide it are there, whether or not the rest of the
 * header has arrived. Nothing is stored: the caller consumes the header
 * only once it is whole.
 */
static uint16_t read_header(const struct pxl_ws_parser *p, const uint8_t *b,
                            size_t have, struct frame_hdr *h)
{
        uint16_t code;

        h->b0 = b[0];
        h->size = 1;
        if ((code = check_byte0(p, h->b0)) != 0)
                return code;
        if (have < 2)
                return HDR_SHORT;
        h->b1 = b[1];
        h->size = 2;
        if ((code = check_byte1(p, h->b0, h->b1)) != 0)
                return code;
        h->size += ext_len_size(h->b1);
        if (have < h->size)
                return HDR_SHORT;
        h->len = payload_len(b);
        if ((code = check_length(p, h->b0 & B0_OPCODE, h->len)) != 0)
                return code;
        if (h->b1 & B1_MASK)
                h->size += 4;
        return have < h->size ? HDR_SHORT : HDR_WHOLE;
}

/* The masking key of the next payload byte, `n` bytes further on. */
static void rotate_mask(uint8_t mask[4], size_t n)
{
        uint8_t m[4];
        size_t i;

        for (i = 0; i < 4; i++)
                m[i] = mask[(i + n) & 3];
        memcpy(mask, m, sizeof(m));
}

/* A whole data frame header d[0..h->size) is being consumed. */
static void start_data_frame(struct pxl_ws_parser *p, const struct frame_hdr *h,
                             const uint8_t *d)
{
        uint8_t op = h->b0 & B0_OPCODE;

        p->frame_fin = (h->b0 & B0_FIN) != 0;
        if (h->b1 & B1_MASK)
                memcpy(p->mask, d + h->size - 4, 4);
        p->frame_left = h->len;
        p->in_payload = true;
        if (op != PXL_WS_OP_CONT) {
                p->msg_opcode = op;
                p->msg_size = 0;
                pxl_utf8_init(&p->utf8);
        }
        /* check_length kept msg_size + len within the 32-bit limit. */
        if (p->max_message_size)
                p->msg_size += (uint32_t)h->len;
}

/*
 * A whole control frame: header h at d, payload right after it; `used`
 * counts the bytes consumed up to its end.
 */
static size_t control_event(struct pxl_ws_parser *p, struct pxl_ws_event *ev,
                            const struct frame_hdr *h, uint8_t *d, size_t used)
{
        uint8_t op = h->b0 & B0_OPCODE;
        uint8_t *pl = d + h->size;
        size_t n = (size_t)h->len;
        unsigned code;

        if (h->b1 & B1_MASK)
                pxl_ws_mask(pl, n, d + h->size - 4, 0);
        ev->opcode = op;
        ev->fin = true;
        ev->data = pl;
        ev->len = n;
        if (op == PXL_WS_OP_PING) {
                ev->type = PXL_WS_EV_PING;
                return used;
        }
        if (op == PXL_WS_OP_PONG) {
                ev->type = PXL_WS_EV_PONG;
                return used;
        }
        ev->type = PXL_WS_EV_CLOSE;
        ev->reason = pl;
        if (n == 0) {
                ev->close_code = CLOSE_NO_STATUS;
                return used;
        }
        /* n == 1 was refused in the header. */
        code = (unsigned)pl[0] << 8 | pl[1];
        if (!pxl_ws_close_code_valid(code))
                return fail(p, ev, CLOSE_PROTOCOL, used);
        if (!pxl_utf8_valid(pl + 2, n - 2))
                return fail(p, ev, CLOSE_BAD_DATA, used);
        ev->close_code = (uint16_t)code;
        ev->reason = pl + 2;
        ev->reason_len = n - 2;
        return used;
}

/* A data chunk d[0..n) has been consumed, used = bytes consumed so far. */
static size_t data_event(struct pxl_ws_parser *p, struct pxl_ws_event *ev,
                         uint8_t *d, size_t n, size_t used)
{
        uint8_t op = p->msg_opcode;

        ev->type = PXL_WS_EV_DATA;
        ev->opcode = op;
        ev->data = d;
        ev->len = n;
        if (p->frame_left == 0) {
                p->in_payload = false;
                if (p->frame_fin) {
                        /* A character cut off by the end of the message. */
                        if (op == PXL_WS_OP_TEXT &&
                            !pxl_utf8_complete(&p->utf8))
                                return fail(p, ev, CLOSE_BAD_DATA, used);
                        ev->fin = true;
                        p->msg_opcode = 0;
                        p->msg_size = 0;
                }
        }
        return used;
}

size_t pxl_ws_parse(struct pxl_ws_parser *p, uint8_t *buf, size_t len,
                    struct pxl_ws_event *ev)
{
        size_t pos = 0;

        memset(ev, 0, sizeof(*ev));
        if (p->error_code)
                return fail(p, ev, p->error_code, 0);
        while (pos < len) {
                uint8_t *d = buf + pos;
                size_t n = len - pos;

                if (!p->in_payload) {
                        struct frame_hdr h;
                        uint16_t code = read_header(p, d, n, &h);

                        if (code == HDR_SHORT)
                                break;
                        if (code != HDR_WHOLE)
                                return fail(p, ev, code, pos + h.size);
                        if (is_control(h.b0 & B0_OPCODE)) {
                                /* h.len <= 125: whole, or not consumed. */
                                if (n - h.size < h.len)
                                        break;
                                return control_event(p, ev, &h, d,
                                                     pos + h.size +
                                                             (size_t)h.len);
                        }
                        start_data_frame(p, &h, d);
                        pos += h.size;
                        if (p->frame_left > 0)
                                continue;
                        /* Empty payload: the frame is complete already. */
                        if (p->frame_fin)
                                return data_event(p, ev, buf + pos, 0, pos);
                        /* An empty non-final fragment carries nothing. */
                        p->in_payload = false;
                        continue;
                }

                if ((uint64_t)n > p->frame_left)
                        n = (size_t)p->frame_left;
                if (p->expect_masked) {
                        pxl_ws_mask(d, n, p->mask, 0);
                        rotate_mask(p->mask, n);
                }
                pos += n;
                p->frame_left -= n;
                /* Fail fast: do not hand out a chunk that holds a bad byte. */
                if (p->msg_opcode == PXL_WS_OP_TEXT &&
                    pxl_utf8_feed(&p->utf8, d, n) < 0)
                        return fail(p, ev, CLOSE_BAD_DATA, pos);
                return data_event(p, ev, d, n, pos);
        }
        /* All consumed, or a header / control frame still incomplete. */
        ev->type = PXL_WS_EV_NEED_MORE;
        return pos;
}

bool pxl_ws_close_code_valid(unsigned code)
{
        /*
         * 1004 is reserved, 1005/1006/1015 are local-only pseudo codes,
         * 1016..2999 are reserved for the RFC and its extensions, and
         * 3000..4999 belong to registered libraries and applications.
         */
        return (code >= 1000 && code <= 1003) ||
               (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

size_t pxl_ws_frame_header(uint8_t *out, uint8_t opcode, bool fin,
                           uint64_t payload_len, const uint8_t *mask)
{
        size_t n = 2;
        int i;

        out[0] = (uint8_t)((fin ? B0_FIN : 0) | (opcode & B0_OPCODE));
        if (payload_len <= PXL_WS_MAX_CONTROL) {
                out[1] = (uint8_t)payload_len;
        } else if (payload_len <= 0xffff) {
                out[1] = LEN_16;
                out[2] = (uint8_t)(payload_len >> 8);
                out[3] = (uint8_t)payload_len;
                n = 4;
        } else {
                out[1] = LEN_64;
                for (i = 0; i < 8; i++)
                        out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
                n = 10;
        }
        if (mask) {
                out[1] |= B1_MASK;
                memcpy(out + n, mask, 4);
                n += 4;
        }
        return n;
}

void pxl_ws_mask(uint8_t *buf, size_t len, const uint8_t mask[4],
                 uint64_t offset)
{
        uint8_t key[8];
        uint64_t kw;
        size_t i;

        /*
         * The key rotated to `offset` and repeated twice, so one 64-bit XOR
         * covers 8 payload bytes; byte order does not matter because the
         * key is laid out in memory exactly like the payload.
         */
        for (i = 0; i < 8; i++)
                key[i] = mask[(offset + i) & 3];
        memcpy(&kw, key, sizeof(kw));
        for (i = 0; len - i >= 8; i += 8) {
                uint64_t w;

                memcpy(&w, buf + i, sizeof(w));
                w ^= kw;
                memcpy(buf + i, &w, sizeof(w));
        }
        for (; i < len; i++)
                buf[i] ^= key[i & 7];
}

size_t pxl_ws_close_payload(uint8_t *out, uint16_t code, const char *reason)
{
        const size_t room = PXL_WS_MAX_CONTROL - 2;
        size_t n = 0;

        /*
         * RFC 6455 7.4.1: 1005, 1006 and 1015 must never be sent, and 0 is
         * no code at all; all of them mean "close without a status", which
         * is the empty payload. This lets a caller echo ev.close_code.
         */
        if (code == 0 || code == CLOSE_NO_STATUS || code == 1006 ||
            code == 1015)
                return 0;
        out[0] = (uint8_t)(code >> 8);
        out[1] = (uint8_t)code;
        if (reason) {
                while (n <= room && reason[n] != '\0')
                        n++;
        }
        if (n > room) {
                /* Back off to the lead byte of the character we would cut. */
                n = room;
                while (n > 0 && ((uint8_t)reason[n] & 0xc0) == 0x80)
                        n--;
        }
        if (n)
                memcpy(out + 2, reason, n);
        return 2 + n;
}
