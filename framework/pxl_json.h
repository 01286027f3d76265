/*
 * pxl_json.h - strict JSON checks and the message envelope (pure).
 * One pass validates a whole message as RFC 8259 JSON (json-c's strict
 * mode lets single quotes, NaN, Infinity and raw control characters
 * through) and finds the top-level "type", "action", "data" and
 * "requestId" without building objects. Building json_objects happens
 * only for what a handler asks for, in pxl_json_build (pxl_json_build.c,
 * the one function here that allocates).
 */
#ifndef PXL_JSON_H
#define PXL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum pxl_json_kind {
        PXL_JSON_NONE = 0, /* absent */
        PXL_JSON_STRING,
        PXL_JSON_NUMBER,
        PXL_JSON_OBJECT,
        PXL_JSON_ARRAY,
        PXL_JSON_TRUE,
        PXL_JSON_FALSE,
        PXL_JSON_NULL,
};

/* A value's raw text inside the caller's buffer (strings include quotes). */
struct pxl_json_span {
        const char *p;
        size_t len;
        enum pxl_json_kind kind;
};

/*
 * The validator keeps its container stack on the C stack, one bit per
 * level, so a max_depth above this cap acts as this cap.
 */
#define PXL_JSON_DEPTH_CAP 4096

/*
 * Strict RFC 8259 check of a complete document: one value, optional
 * whitespace around it, nothing after. Depth counts containers (the outer
 * object or array is depth 1); more than max_depth is invalid. Strings
 * must be valid UTF-8. Returns true when valid.
 */
bool pxl_json_valid(const char *buf, size_t len, unsigned max_depth);

/* Outcome of pxl_json_envelope, in PROTOCOL.md's order of checks. */
enum pxl_envelope_status {
        PXL_ENV_OK = 0,
        PXL_ENV_PARSE_ERROR, /* "Failed to parse JSON" */
        PXL_ENV_NOT_OBJECT,  /* "Invalid WebSocket message" */
        PXL_ENV_NO_TYPE,     /* "Missing WebSocket message type" */
        PXL_ENV_NO_ACTION,   /* "Missing WebSocket message action" */
};

struct pxl_envelope {
        struct pxl_json_span type; /* kind STRING when status >= NO_ACTION */
        struct pxl_json_span action;
        struct pxl_json_span data;       /* kind NONE when absent */
        struct pxl_json_span request_id; /* kind NONE unless string or number */
        struct pxl_json_span response;   /* a reply's; kind NONE when absent */
};

/*
 * Validate buf strictly (as pxl_json_valid) and fill env with the spans
 * of the top-level keys (the last one wins when a key repeats; a key
 * spelt with escapes counts as its decoded text). The server routes on
 * type, action, data and requestId; the outbound client reads replies,
 * which carry "response" instead of "data". Returns
 * the first failing check: PARSE_ERROR, NOT_OBJECT, NO_TYPE (missing,
 * not a string, or ""), NO_ACTION (same), else OK. request_id is filled
 * whenever the document is an object, so error replies can echo it.
 */
enum pxl_envelope_status pxl_json_envelope(const char *buf, size_t len,
                                           unsigned max_depth,
                                           struct pxl_envelope *env);

/* A key written with escapes is decoded; one that decodes longer matches no
 * key given to pxl_json_find (keys written without escapes always can). */
#define PXL_JSON_KEY_MAX 127

/*
 * Find the top-level member `key` (compared after decoding the document's
 * key token, see PXL_JSON_KEY_MAX) of the object buf[0..len), which is
 * validated as pxl_json_valid does (depth up to PXL_JSON_DEPTH_CAP) in
 * the same pass. The last occurrence wins. Returns true and fills *out
 * (strings keep their quotes) when found; false, with *out cleared, when
 * absent, when buf is not an object, or when it is not valid JSON.
 */
bool pxl_json_find(const char *buf, size_t len, const char *key,
                   struct pxl_json_span *out);

/*
 * Read the JSON integer text p[0..len), -?[0-9]+, into *v. Returns false
 * for anything else (a fraction, an exponent, a string, "") and for a
 * value outside int64.
 */
bool pxl_json_int64(const char *p, size_t len, int64_t *v);

/*
 * Decode a JSON string token (with its quotes, already validated) into
 * out, NUL-terminated. Lone surrogate escapes become U+FFFD. The result
 * may contain NUL bytes. cap >= tok_len always suffices. Returns the
 * decoded length, or -1 if it does not fit.
 */
ssize_t pxl_json_unescape(const char *tok, size_t tok_len, char *out,
                          size_t cap);

/*
 * Write s (len bytes of UTF-8) as a JSON string literal with quotes into
 * out. Escapes '"', '\\' and control characters (and nothing else).
 * Returns the length the literal needs (snprintf rules: writes at most
 * cap bytes, NUL-terminates when room is left).
 */
size_t pxl_json_escape(char *out, size_t cap, const char *s, size_t len);

struct json_object;

/*
 * Build json-c objects from buf, which pxl_json_valid(buf, len, max_depth)
 * accepted. Returns PXL_OK with *out a new reference the caller puts (NULL
 * for JSON null), or PXL_ENOMEM, or PXL_EINVAL (not valid JSON after all,
 * deeper than max_depth, capped at PXL_JSON_DEPTH_CAP, or a string over
 * INT_MAX bytes); on failure *out is NULL and nothing stays allocated.
 * Unlike json-c's tokener it keeps numbers as sent: an integer that fits
 * int64 is an int64 ("-0" is 0); any other number (fraction, exponent,
 * or integer beyond int64) is a double, correctly rounded or +-inf, that
 * serialises as its original text. Strings decode as pxl_json_unescape
 * (NUL bytes kept); a key is cut at its first U+0000 (json-c keys are C
 * strings); when a key repeats, the last value wins. Input that
 * pxl_json_valid rejects is never read outside buf.
 */
int pxl_json_build(const char *buf, size_t len, unsigned max_depth,
                   struct json_object **out);

#endif
