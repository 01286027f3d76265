/*
 * pxl_wire.h - the messages workers exchange over Redis pub/sub (pure; no
 * I/O). One header line, then a body:
 *
 *   ORIGIN SEQ KIND ARG\n BODY
 *
 * ORIGIN is the sending worker's id, SEQ its event sequence number (0 on
 * channels other than events), KIND one letter, ARG a word ("-" for
 * none). Neither ORIGIN nor ARG contain spaces or newlines; BODY is
 * anything (JSON text, a room name, two parts split by a NUL byte).
 */
#ifndef PXL_WIRE_H
#define PXL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "pxl_str.h"

struct pxl_wire {
        const char *origin;
        size_t origin_len;
        uint64_t seq;
        char kind;
        const char *arg; /* "" (length 0) for "-" */
        size_t arg_len;
        const char *body;
        size_t body_len;
};

/*
 * Append the header line to out (the caller appends the body). PXL_EINVAL
 * when origin or arg is empty where required or holds a space or newline.
 */
int pxl_wire_head(struct pxl_str *out, const char *origin, size_t origin_len,
                  uint64_t seq, char kind, const char *arg, size_t arg_len);
/* Split msg into w (spans of msg). 0, or PXL_EPROTO when malformed. */
int pxl_wire_parse(const char *msg, size_t len, struct pxl_wire *w);
/*
 * Split a body "A\0B" into its parts; without a NUL, B is empty (NULL,
 * 0). The parts are spans of body.
 */
void pxl_wire_split(const char *body, size_t len, const char **a,
                    size_t *alen, const char **b, size_t *blen);

#endif
