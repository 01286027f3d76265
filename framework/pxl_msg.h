/*
 * pxl_msg.h - the layout behind the opaque struct pxl_msg: one received
 * message and the spans of its envelope. Plain data at the codecs'
 * level, so that both the core (router, ctx) and the outbound client
 * (pxl_wsc.c, which uses codecs and support only) can fill one in.
 * Internal: not installed; plugins see struct pxl_msg as opaque.
 */
#ifndef PXL_MSG_H
#define PXL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pxl_json.h"

struct json_object;

struct pxl_msg {
        const uint8_t *payload;
        size_t len;
        bool binary;
        const char *type; /* decoded, NUL-terminated */
        const char *action;
        struct pxl_json_span data;
        unsigned max_depth;
        /* lazily parsed data (pxl_msg_data); freed after the handler */
        struct json_object *data_obj;
        bool data_parsed;
};

#endif
