/*
 * pxl_frame.h - an outgoing WebSocket frame, encoded once and shared by
 * reference between every connection it goes to (evbuffer references
 * with a cleanup that drops one reference each).
 */
#ifndef PXL_FRAME_H
#define PXL_FRAME_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct json_object;

struct pxl_frame {
        unsigned refs; /* one worker only: a plain counter is enough */
        size_t len;    /* header + payload */
        size_t payload_len;
        uint8_t data[]; /* immutable once built */
};

/* A final, unmasked frame of opcode holding payload (copied); refs = 1. */
struct pxl_frame *pxl_frame_new(uint8_t opcode, const void *payload,
                                size_t len);
/* A text frame of obj serialised as plain JSON; refs = 1. */
struct pxl_frame *pxl_frame_json(const struct json_object *obj);
void pxl_frame_ref(struct pxl_frame *f);
void pxl_frame_unref(struct pxl_frame *f);
/* Append f to out by reference (no copy); the buffer holds one ref. */
int pxl_frame_add_to(struct evbuffer *out, struct pxl_frame *f);

#endif
