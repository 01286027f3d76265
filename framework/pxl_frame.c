/*
 * pxl_frame.c - refcounted outgoing frames. Owns the frame bytes; which
 * connections get them is the senders' business (clients, rooms).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_frame.h"
#include "pxl_ws_codec.h"

struct pxl_frame *pxl_frame_new(uint8_t opcode, const void *payload,
                                size_t len)
{
        uint8_t hdr[PXL_WS_MAX_HEADER];
        size_t hlen = pxl_ws_frame_header(hdr, opcode, true, len, NULL);
        struct pxl_frame *f = malloc(sizeof(*f) + hlen + len);

        if (f == NULL)
                return NULL;
        f->refs = 1;
        f->len = hlen + len;
        f->payload_len = len;
        memcpy(f->data, hdr, hlen);
        if (len)
                memcpy(f->data + hlen, payload, len);
        return f;
}

struct pxl_frame *pxl_frame_json(const struct json_object *obj)
{
        size_t n;
        const char *json = json_object_to_json_string_length(
                (struct json_object *)obj,
                JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);

        return json ? pxl_frame_new(PXL_WS_OP_TEXT, json, n) : NULL;
}

void pxl_frame_ref(struct pxl_frame *f)
{
        f->refs++;
}

void pxl_frame_unref(struct pxl_frame *f)
{
        if (f != NULL && --f->refs == 0)
                free(f);
}

static void frame_cleanup(const void *data, size_t len, void *arg)
{
        (void)data;
        (void)len;
        pxl_frame_unref(arg);
}

int pxl_frame_add_to(struct evbuffer *out, struct pxl_frame *f)
{
        if (evbuffer_add_reference(out, f->data, f->len, frame_cleanup, f) < 0)
                return PXL_ENOMEM;
        f->refs++;
        return PXL_OK;
}
