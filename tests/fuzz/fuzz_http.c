/*
 * fuzz_http.c - libFuzzer harness for pxl_http.c: request-head parsing,
 * the upgrade check, the accept key and query parameters; and, on the
 * same bytes, response-head parsing and the 101 check the outbound
 * client makes. Checks that spans stay inside the input and that a
 * prefix of a head never parses differently from what the whole head
 * allows. Responses are formatted once per input only to run them under
 * the sanitizers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pxl_http.h"

#define MAX_HEAD 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_span(const char *buf, size_t len, struct pxl_http_span sp)
{
        if (sp.p == NULL) {
                if (sp.len != 0)
                        abort();
                return;
        }
        if (sp.p < buf || sp.len > len || (size_t)(sp.p - buf) > len - sp.len)
                abort();
}

/*
 * Parse the first k bytes from a heap copy, so ASan sees any overread:
 * as a request head into req, or else as a response head into resp.
 */
static ssize_t parse_prefix(const char *s, size_t k, size_t max_head,
                            struct pxl_http_request *req,
                            struct pxl_http_response *resp)
{
        char *b = malloc(k ? k : 1);
        ssize_t n;

        if (b == NULL)
                abort();
        memcpy(b, s, k);
        n = req != NULL ? pxl_http_parse_request(b, k, max_head, req)
                        : pxl_http_parse_response(b, k, max_head, resp);
        free(b);
        return n;
}

static void check_request(const char *s, size_t size, ssize_t n,
                          const struct pxl_http_request *r)
{
        struct pxl_http_request r2;
        char out[512], val[64];
        int st;
        ssize_t q;

        if ((size_t)n > size || (size_t)n > MAX_HEAD || n < 4 ||
            r->head_len != (size_t)n || memcmp(s + n - 4, "\r\n\r\n", 4) != 0)
                abort();
        /* The head ends at the first blank line. */
        for (ssize_t i = 0; i + 4 < n; i++)
                if (memcmp(s + i, "\r\n\r\n", 4) == 0)
                        abort();
        check_span(s, (size_t)n, r->method);
        check_span(s, (size_t)n, r->target);
        check_span(s, (size_t)n, r->query);
        if (r->path.p != NULL && !(r->path.len == 1 && r->path.p[0] == '/'))
                check_span(s, (size_t)n, r->path);
        check_span(s, (size_t)n, r->host);
        check_span(s, (size_t)n, r->upgrade);
        check_span(s, (size_t)n, r->connection);
        check_span(s, (size_t)n, r->ws_key);
        check_span(s, (size_t)n, r->ws_version);
        check_span(s, (size_t)n, r->origin);
        check_span(s, (size_t)n, r->authorization);
        if (r->method.p == NULL || r->target.p == NULL || r->path.p == NULL ||
            r->version_major < 0 || r->version_major > 9 ||
            r->version_minor < 0 || r->version_minor > 9)
                abort();

        /* Every split before the end waits for more. */
        if (parse_prefix(s, (size_t)n - 1, MAX_HEAD, &r2, NULL) !=
            PXL_HTTP_NEED_MORE)
                abort();
        if (parse_prefix(s, (size_t)(s[0] & 0x7f) % (size_t)n, MAX_HEAD, &r2,
                         NULL) != PXL_HTTP_NEED_MORE)
                abort();
        /* max_head is inclusive. */
        if (pxl_http_parse_request(s, size, (size_t)n, &r2) != n)
                abort();
        if (pxl_http_parse_request(s, size, (size_t)n - 1, &r2) !=
            PXL_HTTP_TOO_LARGE)
                abort();

        st = pxl_http_check_upgrade(r, "/ws");
        if (st != 0 && st != 400 && st != 404 && st != 426)
                abort();
        if (st == 0) {
                char key[PXL_WS_ACCEPT_LEN + 1];

                pxl_ws_accept_key(r->ws_key.p, r->ws_key.len, key);
                if (strlen(key) != PXL_WS_ACCEPT_LEN)
                        abort();
                if (pxl_http_format_101(out, sizeof(out), key) >= sizeof(out))
                        abort();
        } else if (pxl_http_format_error(out, sizeof(out), st, NULL) >=
                   sizeof(out)) {
                abort();
        }
        q = pxl_http_query_param(r->query, "token", val, sizeof(val));
        if (q < -2 || q >= (ssize_t)sizeof(val) || (q >= 0 && val[q] != '\0'))
                abort();
}

static void check_response(const char *s, size_t size, ssize_t n,
                           const struct pxl_http_response *r)
{
        struct pxl_http_response r2;
        char accept[PXL_WS_ACCEPT_LEN + 1];
        int v;

        if ((size_t)n > size || (size_t)n > MAX_HEAD || n < 16 ||
            r->head_len != (size_t)n || memcmp(s + n - 4, "\r\n\r\n", 4) != 0 ||
            memcmp(s, "HTTP/1.", 7) != 0)
                abort();
        /* The head ends at the first blank line. */
        for (ssize_t i = 0; i + 4 < n; i++)
                if (memcmp(s + i, "\r\n\r\n", 4) == 0)
                        abort();
        if (r->status < 0 || r->status > 999 || r->reason.p == NULL)
                abort();
        check_span(s, (size_t)n, r->reason);
        check_span(s, (size_t)n, r->upgrade);
        check_span(s, (size_t)n, r->accept);
        check_span(s, (size_t)n, r->extensions);
        check_span(s, (size_t)n, r->protocol);
        if (!r->has_content_length && r->content_length != 0)
                abort();

        /* Every split before the end waits for more. */
        if (parse_prefix(s, (size_t)n - 1, MAX_HEAD, NULL, &r2) !=
            PXL_HTTP_NEED_MORE)
                abort();
        if (parse_prefix(s, (size_t)(s[0] & 0x7f) % (size_t)n, MAX_HEAD, NULL,
                         &r2) != PXL_HTTP_NEED_MORE)
                abort();
        /* max_head is inclusive; one byte less is too large. */
        if (pxl_http_parse_response(s, size, (size_t)n, &r2) != n)
                abort();
        if (pxl_http_parse_response(s, size, (size_t)n - 1, &r2) !=
            PXL_HTTP_TOO_LARGE)
                abort();

        /* The accept the client would expect if the reason were its key. */
        pxl_ws_accept_key(r->reason.p,
                          r->reason.len < 128 ? r->reason.len : 128, accept);
        v = pxl_http_check_101(r, accept);
        if (v < PXL_HTTP_101_OK || v > PXL_HTTP_101_EXTENSION)
                abort();
        if ((v == PXL_HTTP_101_REFUSED) != (r->status != 101))
                abort();
        if (v == PXL_HTTP_101_OK &&
            (!r->connection_upgrade || r->accept.len != PXL_WS_ACCEPT_LEN ||
             r->extensions.p != NULL || r->protocol.p != NULL))
                abort();
        /* A made-up accept can match only by a 2^-168 chance. */
        if (pxl_http_check_101(r, "0000000000000000000000000000") ==
                    PXL_HTTP_101_OK &&
            memcmp(r->accept.p, "0000000000000000000000000000", 28) != 0)
                abort();
}

/* The same bytes as an answer to the outbound client's upgrade. */
static void fuzz_response(const char *s, size_t size)
{
        struct pxl_http_response r, r2;
        ssize_t n = pxl_http_parse_response(s, size, MAX_HEAD, &r);

        if (n > 0) {
                check_response(s, size, n, &r);
        } else if (n == PXL_HTTP_NEED_MORE) {
                if (size >= MAX_HEAD)
                        abort();
        } else if (n == PXL_HTTP_TOO_LARGE) {
                if (size < MAX_HEAD)
                        abort();
        } else if (n == PXL_HTTP_BAD) {
                /* A prefix of a bad head is never a good head. */
                if (size > 0 && parse_prefix(s, (size_t)(s[0] & 0x7f) % size,
                                             MAX_HEAD, NULL, &r2) > 0)
                        abort();
        } else {
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *s = (const char *)data;
        struct pxl_http_request r, r2;
        struct pxl_http_span all = {s, size};
        char val[16];
        ssize_t n = pxl_http_parse_request(s, size, MAX_HEAD, &r);

        if (n > 0) {
                check_request(s, size, n, &r);
        } else if (n == PXL_HTTP_NEED_MORE) {
                if (size > MAX_HEAD)
                        abort();
        } else if (n == PXL_HTTP_TOO_LARGE) {
                if (size <= MAX_HEAD)
                        abort();
        } else if (n == PXL_HTTP_BAD) {
                /* A prefix of a bad head is never a good head. */
                if (size > 0 && parse_prefix(s, (size_t)(s[0] & 0x7f) % size,
                                             MAX_HEAD, &r2, NULL) > 0)
                        abort();
        } else {
                abort();
        }

        fuzz_response(s, size);

        /* Raw bytes as header values and query strings. */
        (void)pxl_http_has_token(all, "upgrade");
        (void)pxl_http_query_param(all, "token", val, sizeof(val));
        (void)pxl_http_query_param(all, "", val, sizeof(val));
        return 0;
}
