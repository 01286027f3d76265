/*
 * fuzz_auth.c - libFuzzer harness for pxl_auth.c. The first byte picks
 * what the rest is: 'P' claims JSON and 'H' header JSON, signed here with
 * the verifier's HS256 key so the checks after the signature see fuzzed
 * input; 'Q' an Authorization value, a newline and a query string for
 * pxl_auth_token; anything else is a token as sent. Every verification
 * must keep the contract in pxl_auth.h: a userId and an object payload,
 * or a known reason and no outputs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pxl/pxl.h"
#include "pxl_auth.h"

#define SECRET "fuzz-secret"
#define NOW    ((time_t)1700000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pxl_auth *plain, *strict;

static struct pxl_auth *make(const char *issuer, const char *audience,
                             unsigned leeway)
{
        struct pxl_auth_conf c = {0};
        struct pxl_auth *a;

        c.enabled = true;
        c.algorithm = (char *)"HS256";
        c.secret = (char *)SECRET;
        c.issuer = (char *)issuer;
        c.audience = (char *)audience;
        c.leeway = leeway;
        a = pxl_auth_new(&c, "fuzz.cfg", NULL);
        if (a == NULL)
                abort();
        return a;
}

static const char *const reasons[] = {
        "invalid token",   "token expired", "token not yet valid",
        "wrong algorithm", "wrong issuer",  "wrong audience",
        "invalid sub",
};

/* A numeric userId must come from an integer sub or its exact digits. */
static void check_user(struct json_object *uid, struct json_object *payload)
{
        struct json_object *sub;
        char digits[32];

        if (!json_object_object_get_ex(payload, "sub", &sub))
                abort();
        if (json_object_is_type(uid, json_type_int)) {
                int64_t v = json_object_get_int64(uid);

                if (json_object_is_type(sub, json_type_int)) {
                        if (json_object_get_int64(sub) != v)
                                abort();
                        return;
                }
                snprintf(digits, sizeof(digits), "%" PRId64, v);
                if (!json_object_is_type(sub, json_type_string) ||
                    strcmp(json_object_get_string(sub), digits) != 0)
                        abort();
                return;
        }
        if (!json_object_is_type(uid, json_type_string) ||
            !json_object_is_type(sub, json_type_string) ||
            json_object_get_string_len(uid) == 0 ||
            json_object_get_string_len(uid) !=
                    json_object_get_string_len(sub) ||
            memcmp(json_object_get_string(uid), json_object_get_string(sub),
                   (size_t)json_object_get_string_len(uid)) != 0)
                abort();
        /* A string userId is never the canonical form of an int64. */
        {
                const char *s = json_object_get_string(uid);
                char *end;
                long long v;

                errno = 0;
                v = strtoll(s, &end, 10);
                if (errno == 0 && *end == '\0' && end != s) {
                        snprintf(digits, sizeof(digits), "%lld", v);
                        if (strcmp(digits, s) == 0)
                                abort();
                }
        }
}

static void verify(const struct pxl_auth *a, const char *tok)
{
        struct json_object *uid = (void *)1, *payload = (void *)1;
        const char *reason = NULL;
        int rc = pxl_auth_verify(a, tok, NOW, &uid, &payload, &reason);
        size_t i;

        if (rc == 0) {
                if (uid == NULL || payload == NULL ||
                    !json_object_is_type(payload, json_type_object))
                        abort();
                check_user(uid, payload);
                json_object_put(uid);
                json_object_put(payload);
                return;
        }
        if (uid != NULL || payload != NULL || reason == NULL)
                abort();
        if (rc == PXL_ENOMEM)
                return;
        if (rc != PXL_EDECLINED)
                abort();
        for (i = 0; i < sizeof(reasons) / sizeof(*reasons); i++)
                if (reason == reasons[i] || strcmp(reason, reasons[i]) == 0)
                        break;
        if (i == sizeof(reasons) / sizeof(*reasons))
                abort();
}

/* base64url without padding of len bytes, appended at out. */
static char *b64url_put(char *out, const uint8_t *in, size_t len)
{
        static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz0123456789-_";
        uint32_t acc = 0;
        int bits = 0;

        for (size_t i = 0; i < len; i++) {
                acc = acc << 8 | in[i];
                bits += 8;
                while (bits >= 6) {
                        bits -= 6;
                        *out++ = al[(acc >> bits) & 63];
                }
        }
        if (bits > 0)
                *out++ = al[(acc << (6 - bits)) & 63];
        *out = '\0';
        return out;
}

/* header.payload.HMAC-SHA256 under SECRET. */
static char *sign(const uint8_t *hdr, size_t hlen, const uint8_t *pl,
                  size_t plen)
{
        char *tok = malloc((hlen + plen) * 4 / 3 + 100);
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        char *p;

        if (tok == NULL)
                abort();
        p = b64url_put(tok, hdr, hlen);
        *p++ = '.';
        p = b64url_put(p, pl, plen);
        if (HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
                 (const unsigned char *)tok, (size_t)(p - tok), mac,
                 &mac_len) == NULL)
                abort();
        *p++ = '.';
        b64url_put(p, mac, mac_len);
        return tok;
}

static void fuzz_token_source(const char *s, size_t len)
{
        const char *nl = memchr(s, '\n', len);
        struct pxl_http_request r;
        char *tok = (char *)1;
        int rc;

        memset(&r, 0, sizeof(r));
        if (nl != NULL) {
                r.authorization.p = s;
                r.authorization.len = (size_t)(nl - s);
                r.query.p = nl + 1;
                r.query.len = len - (size_t)(nl - s) - 1;
        } else {
                r.query.p = s;
                r.query.len = len;
        }
        rc = pxl_auth_token(&r, &tok);
        if (rc == 1) {
                if (tok == NULL || strlen(tok) == 0 || strlen(tok) > len)
                        abort();
                verify(plain, tok);
                free(tok);
        } else if (tok != NULL ||
                   (rc != 0 && rc != PXL_EINVAL && rc != PXL_ENOMEM)) {
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
        static const char body[] = "{\"sub\":1}";
        char *tok;

        if (plain == NULL) {
                plain = make(NULL, NULL, 0);
                strict = make("pxl-fuzz", "pxl", 30);
        }
        if (size > 0 && data[0] == 'P') {
                tok = sign((const uint8_t *)hdr, strlen(hdr), data + 1,
                           size - 1);
                verify(plain, tok);
                verify(strict, tok);
                free(tok);
        } else if (size > 0 && data[0] == 'H') {
                tok = sign(data + 1, size - 1, (const uint8_t *)body,
                           strlen(body));
                verify(plain, tok);
                free(tok);
        } else if (size > 0 && data[0] == 'Q') {
                fuzz_token_source((const char *)data + 1, size - 1);
        } else {
                tok = malloc(size + 1);
                if (tok == NULL)
                        abort();
                memcpy(tok, data, size);
                tok[size] = '\0';
                verify(plain, tok);
                verify(strict, tok);
                free(tok);
        }
        return 0;
}
