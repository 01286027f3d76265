/*
 * pxl_ws_codec.h - RFC 6455 framing (pure; no I/O, no globals).
 * The parser turns bytes into events (data chunks, control frames,
 * errors with a close code); the encoder writes frame headers. Sockets,
 * buffers and timers belong to pxl_conn.c, not here.
 */
#ifndef PXL_WS_CODEC_H
#define PXL_WS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pxl_utf8.h"

enum pxl_ws_opcode {
        PXL_WS_OP_CONT = 0x0,
        PXL_WS_OP_TEXT = 0x1,
        PXL_WS_OP_BINARY = 0x2,
        PXL_WS_OP_CLOSE = 0x8,
        PXL_WS_OP_PING = 0x9,
        PXL_WS_OP_PONG = 0xA,
};

#define PXL_WS_MAX_HEADER  14 /* 2 + 8 (length) + 4 (mask) */
#define PXL_WS_MAX_CONTROL 125

enum pxl_ws_event_type {
        PXL_WS_EV_NEED_MORE = 0, /* feed more; see pxl_ws_parse for what */
        PXL_WS_EV_DATA,          /* payload bytes of the current data message */
        PXL_WS_EV_PING,          /* a complete ping; data/len = its payload */
        PXL_WS_EV_PONG,          /* a complete pong */
        PXL_WS_EV_CLOSE,         /* a complete, valid close frame */
        PXL_WS_EV_ERROR,         /* protocol violation; parser is now dead */
};

struct pxl_ws_event {
        enum pxl_ws_event_type type;
        /*
         * DATA: opcode of the message (TEXT or BINARY, never CONT);
         * data/len point at unmasked payload bytes (inside the caller's
         * buffer, unmasked in place); fin is true on the event that ends the
         * message (it may have len 0). A message arrives as one or more DATA
         * events; text is UTF-8 checked across all of them.
         * PING/PONG/CLOSE: data/len = the whole control payload, always
         * inside the caller's buffer (unmasked in place; valid as long as
         * those bytes are).
         * CLOSE: close_code = the peer's code, or 1005 when the payload is
         * empty; reason/reason_len = the UTF-8 reason.
         * ERROR: close_code = the code to close with (1002, 1007, 1009).
         */
        uint8_t opcode;
        bool fin;
        uint8_t *data;
        size_t len;
        uint16_t close_code;
        const uint8_t *reason;
        size_t reason_len;
};

/*
 * The parser never copies input: between calls it keeps only the state of
 * the frame being streamed (32 bytes on LP64). Everything in it is private
 * to pxl_ws_codec.c; set it up with pxl_ws_parser_init.
 */
struct pxl_ws_parser {
        uint64_t frame_left;       /* payload bytes of the data frame to come */
        uint32_t max_frame_size;   /* inclusive; 0 = no limit */
        uint32_t max_message_size; /* inclusive; 0 = no limit */
        uint32_t msg_size;         /* the open message so far (with a limit) */
        struct pxl_utf8 utf8;      /* the open text message so far */
        uint8_t mask[4];           /* key, rotated to the next payload byte */
        uint16_t error_code;       /* 0; once dead, the close code */
        uint8_t msg_opcode;        /* TEXT/BINARY while a message is open */
        bool expect_masked : 1;    /* server side: true; client side: false */
        bool in_payload : 1;       /* inside a data frame's payload */
        bool frame_fin : 1;        /* that frame ends its message */
};

/*
 * Limits above UINT32_MAX act as UINT32_MAX (4 GiB - 1): a limit is never
 * loosened, and the server's configuration allows at most 2^31 anyway.
 */
void pxl_ws_parser_init(struct pxl_ws_parser *p, uint64_t max_frame_size,
                        uint64_t max_message_size, bool expect_masked);

/*
 * Consume bytes from buf (unmasking payload in place) until one event is
 * ready. Returns the number of bytes consumed and fills *ev. Call again
 * with the rest of the buffer until it returns PXL_WS_EV_NEED_MORE.
 *
 * The parser never buffers input. A frame header is consumed only once
 * it is whole, and a control frame (PING/PONG/CLOSE) only once the header
 * and the whole payload are there (at most PXL_WS_MAX_HEADER +
 * PXL_WS_MAX_CONTROL bytes); its event then points into buf. Until then
 * pxl_ws_parse returns PXL_WS_EV_NEED_MORE having consumed none of those
 * bytes (and left them unchanged): the caller keeps every byte that was
 * not consumed and presents it again, followed by more input, on the next
 * call. So NEED_MORE may consume less than len; the bytes left over are
 * fewer than PXL_WS_MAX_HEADER + PXL_WS_MAX_CONTROL. Data payload is not
 * held back: DATA events stream it as it arrives.
 *
 * Errors are still found as early as possible: whatever the first bytes
 * of a header decide (RSV bits, opcode, FIN on control frames, the mask
 * bit, the length form, the 64-bit top bit, the frame and message
 * limits, a 1-byte close payload) is refused as soon as those bytes are
 * given, even while the header is incomplete. A text payload is refused
 * at its first invalid UTF-8 byte.
 *
 * After PXL_WS_EV_ERROR every call returns ERROR again, consuming nothing.
 */
size_t pxl_ws_parse(struct pxl_ws_parser *p, uint8_t *buf, size_t len,
                    struct pxl_ws_event *ev);

/* True when a close code received from a peer is allowed (RFC 6455 7.4). */
bool pxl_ws_close_code_valid(unsigned code);

/*
 * Write a frame header into out (at least PXL_WS_MAX_HEADER bytes),
 * using the minimal length form. mask NULL = unmasked (server frames).
 * Returns the header length.
 */
size_t pxl_ws_frame_header(uint8_t *out, uint8_t opcode, bool fin,
                           uint64_t payload_len, const uint8_t *mask);

/* XOR buf with mask, starting at byte `offset` of the payload. */
void pxl_ws_mask(uint8_t *buf, size_t len, const uint8_t mask[4],
                 uint64_t offset);

/*
 * Build a close payload (code in network order + reason, truncated to fit
 * 125 bytes at a UTF-8 boundary) into out[PXL_WS_MAX_CONTROL]. Returns its
 * length.
 */
size_t pxl_ws_close_payload(uint8_t *out, uint16_t code, const char *reason);

#endif
