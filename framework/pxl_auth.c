/*
 * pxl_auth.c - JWT bearer tokens for upgrade requests: where the token is,
 * whether it verifies under the one configured algorithm and key, and the
 * userId its `sub` gives. libjwt 1.10.2 only checks signatures; algorithm
 * pinning, exp/nbf, iss/aud and sub are ours. Answering 401, logging and
 * storing the user on the connection belong to pxl_conn.c.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "pxl/pxl.h"
#include "pxl_auth.h"

/* Longest decoded ?token= value; a real JWT is far shorter. */
#define QUERY_TOKEN_MAX 8192
/* A PEM public key is a few KiB; anything much bigger is the wrong file. */
#define PEM_FILE_MAX ((size_t)64 * 1024)
/* Nesting allowed in header and claims: limits.max_json_depth's default. */
#define CLAIMS_MAX_DEPTH 64

enum key_family { FAMILY_HMAC, FAMILY_RSA, FAMILY_EC };

struct alg_info {
        const char *name; /* as in the JOSE header, case-sensitive */
        jwt_alg_t alg;
        enum key_family family;
        int curve_nid; /* EC only */
        const char *curve_name;
};

static const struct alg_info alg_table[] = {
        {"HS256", JWT_ALG_HS256, FAMILY_HMAC, 0, NULL},
        {"HS384", JWT_ALG_HS384, FAMILY_HMAC, 0, NULL},
        {"HS512", JWT_ALG_HS512, FAMILY_HMAC, 0, NULL},
        {"RS256", JWT_ALG_RS256, FAMILY_RSA, 0, NULL},
        {"RS384", JWT_ALG_RS384, FAMILY_RSA, 0, NULL},
        {"RS512", JWT_ALG_RS512, FAMILY_RSA, 0, NULL},
        {"ES256", JWT_ALG_ES256, FAMILY_EC, NID_X9_62_prime256v1, "P-256"},
        {"ES384", JWT_ALG_ES384, FAMILY_EC, NID_secp384r1, "P-384"},
        {"ES512", JWT_ALG_ES512, FAMILY_EC, NID_secp521r1, "P-521"},
};

struct pxl_auth {
        const struct alg_info *alg;
        unsigned char *key; /* HMAC secret bytes, or the PEM text */
        size_t key_len;
        bool required;
        char *issuer;   /* NULL: not checked */
        char *audience; /* NULL: not checked */
        unsigned leeway;
};

/* One "FILE: auth.jwt.KEY: text" line; key is the whole key name. */
static void PXL_PRINTF(4, 5) add_error(struct pxl_str *errors, const char *file,
                                       const char *key, const char *fmt, ...)
{
        va_list ap;

        if (errors == NULL)
                return;
        va_start(ap, fmt);
        (void)pxl_str_vreport(errors, file, 0, key, fmt, ap);
        va_end(ap);
}

/* RFC 4648 section 5 alphabet; -1 for anything else. */
static int b64url_val(unsigned char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '-')
                return 62;
        if (c == '_')
                return 63;
        return -1;
}

/*
 * Decode base64url into out (room for len * 3 / 4 + 1 bytes). Padding is
 * optional but, when present, must be the exact RFC 4648 padding. Unused
 * low bits of the last character are ignored, as Node's decoder does, so
 * a secret Node accepts decodes to the same bytes here. Returns the
 * decoded length or -1.
 */
static ssize_t b64url_decode(const char *s, size_t len, unsigned char *out)
{
        uint32_t acc = 0;
        size_t n = 0, bits = 0;

        if (len % 4 == 0 && len > 0 && s[len - 1] == '=') {
                len--;
                if (s[len - 1] == '=')
                        len--;
        }
        if (len % 4 == 1)
                return -1;
        for (size_t i = 0; i < len; i++) {
                int v = b64url_val((unsigned char)s[i]);

                if (v < 0)
                        return -1;
                acc = (acc << 6 | (uint32_t)v) & 0xffffff;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (unsigned char)(acc >> bits);
                }
        }
        return (ssize_t)n;
}

static const struct alg_info *find_alg(const char *name)
{
        for (size_t i = 0; i < sizeof(alg_table) / sizeof(*alg_table); i++)
                if (strcmp(name, alg_table[i].name) == 0)
                        return &alg_table[i];
        return NULL;
}

static int load_secret(struct pxl_auth *a, const struct pxl_auth_conf *conf,
                       const char *file, struct pxl_str *errors)
{
        size_t len;
        ssize_t n;

        if (conf->secret == NULL || conf->secret[0] == '\0') {
                add_error(errors, file, "auth.jwt.secret", "%s needs a secret",
                          a->alg->name);
                return PXL_EINVAL;
        }
        len = strlen(conf->secret);
        a->key = malloc(len + 1);
        if (a->key == NULL) {
                add_error(errors, file, "auth.jwt.secret", "out of memory");
                return PXL_ENOMEM;
        }
        if (!conf->secret_base64url) {
                memcpy(a->key, conf->secret, len);
                a->key_len = len;
                return PXL_OK;
        }
        n = b64url_decode(conf->secret, len, a->key);
        if (n <= 0) {
                add_error(errors, file, "auth.jwt.secret",
                          "not valid base64url (RFC 4648 section 5: A-Z a-z "
                          "0-9 - _, padding optional), but secret_encoding "
                          "is \"base64url\"");
                return PXL_EINVAL;
        }
        a->key_len = (size_t)n;
        return PXL_OK;
}

/* The whole file, NUL-terminated, or NULL with errno set (EFBIG: too big). */
static char *read_small_file(const char *path, size_t *len)
{
        FILE *f = fopen(path, "re");
        char *buf;
        size_t n;
        int err;

        if (f == NULL)
                return NULL;
        buf = malloc(PEM_FILE_MAX + 1);
        if (buf == NULL) {
                fclose(f);
                errno = ENOMEM;
                return NULL;
        }
        errno = 0;
        n = fread(buf, 1, PEM_FILE_MAX + 1, f);
        /* fread keeps read(2)'s errno: EISDIR for a directory. */
        if (ferror(f))
                err = errno != 0 ? errno : EIO;
        else
                err = n > PEM_FILE_MAX ? EFBIG : 0;
        fclose(f);
        if (err != 0) {
                free(buf);
                errno = err;
                return NULL;
        }
        buf[n] = '\0';
        *len = n;
        return buf;
}

/* Does pkey suit a->alg? NULL if so, else what is wrong (into why). */
static const char *key_mismatch(const struct pxl_auth *a, EVP_PKEY *pkey,
                                char *why, size_t cap)
{
        const char *type = EVP_PKEY_get0_type_name(pkey);
        char group[80];
        int nid;

        if (type == NULL)
                type = "unknown";
        if (a->alg->family == FAMILY_RSA) {
                /* Plain RSA only: an RSA-PSS key cannot sign RS256. */
                if (EVP_PKEY_is_a(pkey, "RSA"))
                        return NULL;
                snprintf(why, cap, "key type %s, but %s needs an RSA key", type,
                         a->alg->name);
                return why;
        }
        if (!EVP_PKEY_is_a(pkey, "EC")) {
                snprintf(why, cap, "key type %s, but %s needs an EC %s key",
                         type, a->alg->name, a->alg->curve_name);
                return why;
        }
        if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL))
                snprintf(group, sizeof(group), "an unnamed curve");
        nid = OBJ_sn2nid(group);
        if (nid == a->alg->curve_nid)
                return NULL;
        snprintf(why, cap, "EC key on %s, but %s needs %s", group, a->alg->name,
                 a->alg->curve_name);
        return why;
}

/*
 * Keep the PEM text itself: libjwt parses the key from it on every
 * verification. It is parsed here once with the call libjwt uses
 * (PEM_read_bio_PUBKEY), so a key that passes here is one libjwt reads.
 */
static int load_public_key(struct pxl_auth *a, const struct pxl_auth_conf *conf,
                           const char *file, struct pxl_str *errors)
{
        const char *path = conf->public_key;
        char why[256];
        const char *bad;
        EVP_PKEY *pkey;
        size_t len = 0;
        char *pem;
        BIO *bio;

        if (path == NULL || path[0] == '\0') {
                add_error(errors, file, "auth.jwt.public_key",
                          "%s needs a public_key", a->alg->name);
                return PXL_EINVAL;
        }
        pem = read_small_file(path, &len);
        if (pem == NULL) {
                int err = errno;

                if (err == EFBIG)
                        add_error(errors, file, "auth.jwt.public_key",
                                  "\"%s\": larger than %zu KiB, not a PEM "
                                  "public key",
                                  path, PEM_FILE_MAX / 1024);
                else
                        add_error(errors, file, "auth.jwt.public_key",
                                  "\"%s\": %s", path, strerror(err));
                return err == ENOMEM ? PXL_ENOMEM : PXL_EINVAL;
        }
        bio = BIO_new_mem_buf(pem, (int)len);
        if (bio == NULL) {
                free(pem);
                add_error(errors, file, "auth.jwt.public_key", "out of memory");
                return PXL_ENOMEM;
        }
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (pkey == NULL) {
                ERR_clear_error();
                free(pem);
                add_error(errors, file, "auth.jwt.public_key",
                          "\"%s\": no PEM public key (-----BEGIN PUBLIC "
                          "KEY-----) in it",
                          path);
                return PXL_EINVAL;
        }
        bad = key_mismatch(a, pkey, why, sizeof(why));
        EVP_PKEY_free(pkey);
        if (bad != NULL) {
                free(pem);
                add_error(errors, file, "auth.jwt.public_key", "\"%s\": %s",
                          path, bad);
                return PXL_EINVAL;
        }
        a->key = (unsigned char *)pem;
        a->key_len = len;
        return PXL_OK;
}

static int copy_opt(char **dst, const char *src)
{
        *dst = NULL;
        if (src == NULL)
                return PXL_OK;
        *dst = strdup(src);
        return *dst != NULL ? PXL_OK : PXL_ENOMEM;
}

struct pxl_auth *pxl_auth_new(const struct pxl_auth_conf *conf,
                              const char *app_file, struct pxl_str *errors)
{
        struct pxl_auth *a;
        int rc;

        assert(conf->enabled);
        a = calloc(1, sizeof(*a));
        if (a == NULL) {
                add_error(errors, app_file, "auth.jwt.algorithm",
                          "out of memory");
                return NULL;
        }
        a->alg = find_alg(conf->algorithm != NULL ? conf->algorithm : "HS256");
        if (a->alg == NULL) {
                add_error(errors, app_file, "auth.jwt.algorithm",
                          "\"%s\" is not one of HS256, HS384, HS512, RS256, "
                          "RS384, RS512, ES256, ES384, ES512",
                          conf->algorithm);
                goto fail;
        }
        a->required = conf->required;
        a->leeway = conf->leeway;
        if (a->alg->family == FAMILY_HMAC)
                rc = load_secret(a, conf, app_file, errors);
        else
                rc = load_public_key(a, conf, app_file, errors);
        if (rc < 0)
                goto fail;
        if (copy_opt(&a->issuer, conf->issuer) < 0 ||
            copy_opt(&a->audience, conf->audience) < 0) {
                add_error(errors, app_file, "auth.jwt.issuer", "out of memory");
                goto fail;
        }
        return a;
fail:
        pxl_auth_free(a);
        return NULL;
}

void pxl_auth_free(struct pxl_auth *a)
{
        if (a == NULL)
                return;
        /* The HMAC secret should not linger in freed heap memory. */
        if (a->key != NULL)
                OPENSSL_cleanse(a->key, a->key_len);
        free(a->key);
        free(a->issuer);
        free(a->audience);
        free(a);
}

bool pxl_auth_required(const struct pxl_auth *a)
{
        return a != NULL && a->required;
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t';
}

static bool bearer_ieq(const char *p)
{
        static const char want[] = "bearer";

        for (size_t i = 0; i < sizeof(want) - 1; i++) {
                char c = p[i];

                if (c >= 'A' && c <= 'Z')
                        c = (char)(c - 'A' + 'a');
                if (c != want[i])
                        return false;
        }
        return true;
}

/* The credentials of "Bearer T", or false for another scheme or no T. */
static bool bearer_token(struct pxl_http_span v, const char **tok, size_t *len)
{
        const char *p = v.p, *end;
        const char *s;

        if (p == NULL)
                return false;
        end = p + v.len;
        while (p < end && is_space(*p))
                p++;
        s = p;
        while (p < end && !is_space(*p))
                p++;
        if (p - s != 6 || !bearer_ieq(s))
                return false;
        while (p < end && is_space(*p))
                p++;
        while (end > p && is_space(end[-1]))
                end--;
        if (p == end)
                return false;
        *tok = p;
        *len = (size_t)(end - p);
        return true;
}

int pxl_auth_token(const struct pxl_http_request *req, char **token)
{
        const char *p;
        size_t len, cap;
        ssize_t n;
        char *buf;

        *token = NULL;
        if (bearer_token(req->authorization, &p, &len)) {
                /* A NUL would cut the token short of what was sent (the
                   HTTP parser lets none through; spans may come from
                   elsewhere). */
                if (memchr(p, '\0', len) != NULL)
                        return PXL_EINVAL;
                *token = strndup(p, len);
                return *token != NULL ? 1 : PXL_ENOMEM;
        }
        if (req->query.p == NULL)
                return 0;
        /* Decoding never lengthens, so the raw length bounds the buffer. */
        cap = req->query.len < QUERY_TOKEN_MAX ? req->query.len
                                               : QUERY_TOKEN_MAX;
        buf = malloc(cap + 1);
        if (buf == NULL)
                return PXL_ENOMEM;
        n = pxl_http_query_param(req->query, "token", buf, cap + 1);
        if (n <= 0 || memchr(buf, '\0', (size_t)n) != NULL) {
                free(buf);
                /* -1 absent, 0 empty (= absent), -2 bad or too long; a
                   raw NUL (the HTTP parser lets none through) is bad. */
                return n == -1 || n == 0 ? 0 : PXL_EINVAL;
        }
        *token = buf;
        return 1;
}

/*
 * One JSON object filling exactly s[0..len), strict RFC 8259 as far as
 * json-c goes (what jansson wrote, or a header we decoded); else NULL.
 */
static struct json_object *parse_object(const char *s, size_t len)
{
        struct json_tokener *tok;
        struct json_object *o;

        if (len > INT32_MAX)
                return NULL;
        tok = json_tokener_new_ex(CLAIMS_MAX_DEPTH);
        if (tok == NULL)
                return NULL;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, s, (int)len);
        if (o != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
                          json_tokener_get_parse_end(tok) != len ||
                          !json_object_is_type(o, json_type_object))) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

enum verdict {
        V_OK = 0,
        V_INVALID,
        V_ALG,
        V_EXPIRED,
        V_NOT_YET,
        V_ISSUER,
        V_AUDIENCE,
        V_SUB,
        V_CRIT,
        V_NOMEM,
};

static const char *const verdict_text[] = {
        [V_OK] = "ok",
        [V_INVALID] = "invalid token",
        [V_ALG] = "wrong algorithm",
        [V_EXPIRED] = "token expired",
        [V_NOT_YET] = "token not yet valid",
        [V_ISSUER] = "wrong issuer",
        [V_AUDIENCE] = "wrong audience",
        [V_SUB] = "invalid sub",
        [V_CRIT] = "unsupported critical header",
        [V_NOMEM] = "out of memory",
};

/*
 * Check the compact form before libjwt sees it: exactly three base64url
 * segments (no padding, RFC 7515 section 2), the first two non-empty, and
 * a header whose alg is exactly ours. libjwt alone would take an HS512
 * token under an HS256 key, or an HS256 token "signed" with an RS
 * verifier's PEM text. The signature may only be empty for alg "none",
 * which is refused as the wrong algorithm, so that is checked last.
 * "crit" names extensions the token needs understood (RFC 7515 4.1.11);
 * we understand none, so any "crit" at all is refused.
 */
static enum verdict check_header(const struct pxl_auth *a, const char *token)
{
        const char *dot1 = NULL, *dot2 = NULL, *p;
        struct json_object *hdr, *alg;
        enum verdict v = V_ALG;
        unsigned char *raw;
        size_t hlen;
        ssize_t n;

        for (p = token; *p != '\0'; p++) {
                if (*p == '.') {
                        if (dot2 != NULL)
                                return V_INVALID;
                        if (dot1 == NULL)
                                dot1 = p;
                        else
                                dot2 = p;
                } else if (b64url_val((unsigned char)*p) < 0) {
                        return V_INVALID;
                }
        }
        if (dot2 == NULL || dot1 == token || dot2 == dot1 + 1)
                return V_INVALID;
        hlen = (size_t)(dot1 - token);
        raw = malloc(hlen * 3 / 4 + 1);
        if (raw == NULL)
                return V_NOMEM;
        n = b64url_decode(token, hlen, raw);
        hdr = n > 0 ? parse_object((const char *)raw, (size_t)n) : NULL;
        free(raw);
        if (hdr == NULL || !json_object_object_get_ex(hdr, "alg", &alg) ||
            !json_object_is_type(alg, json_type_string)) {
                json_object_put(hdr);
                return V_INVALID;
        }
        /* "none" lands here too: it is never the configured algorithm. */
        if (json_object_object_get_ex(hdr, "crit", NULL))
                v = V_CRIT;
        else if ((size_t)json_object_get_string_len(alg) == strlen(a->alg->name) &&
            strcmp(json_object_get_string(alg), a->alg->name) == 0)
                v = p == dot2 + 1 ? V_INVALID : V_OK;
        json_object_put(hdr);
        return v;
}

/*
 * A NumericDate claim against t: *cmp < 0, 0 or > 0 as the claim is
 * before, at or after t. Returns 0 when absent, 1 when present, -1 when
 * not a number (RFC 7519 allows fractions, so doubles count).
 */
static int claim_time_cmp(struct json_object *claims, const char *key,
                          int64_t t, int *cmp)
{
        struct json_object *o;

        if (!json_object_object_get_ex(claims, key, &o))
                return 0;
        if (json_object_is_type(o, json_type_int)) {
                int64_t v = json_object_get_int64(o);

                *cmp = v < t ? -1 : v > t;
                return 1;
        }
        if (json_object_is_type(o, json_type_double)) {
                double v = json_object_get_double(o);

                if (isnan(v))
                        return -1;
                *cmp = v < (double)t ? -1 : v > (double)t;
                return 1;
        }
        return -1;
}

/* t + d without wrapping (leeway is small, but `now` comes from callers). */
static int64_t add_sat(int64_t t, int64_t d)
{
        if (d > 0 && t > INT64_MAX - d)
                return INT64_MAX;
        if (d < 0 && t < INT64_MIN - d)
                return INT64_MIN;
        return t + d;
}

static enum verdict check_times(const struct pxl_auth *a,
                                struct json_object *claims, time_t now)
{
        int cmp = 0, rc;

        /* Valid while now < exp + leeway, i.e. expired once
           exp <= now - leeway. */
        rc = claim_time_cmp(claims, "exp", add_sat(now, -(int64_t)a->leeway),
                            &cmp);
        if (rc < 0)
                return V_INVALID;
        if (rc > 0 && cmp <= 0)
                return V_EXPIRED;
        /* Not yet valid while now + leeway < nbf. */
        rc = claim_time_cmp(claims, "nbf", add_sat(now, (int64_t)a->leeway),
                            &cmp);
        if (rc < 0)
                return V_INVALID;
        if (rc > 0 && cmp > 0)
                return V_NOT_YET;
        return V_OK;
}

static bool string_is(struct json_object *o, const char *want)
{
        return json_object_is_type(o, json_type_string) &&
               (size_t)json_object_get_string_len(o) == strlen(want) &&
               memcmp(json_object_get_string(o), want, strlen(want)) == 0;
}

static enum verdict check_iss_aud(const struct pxl_auth *a,
                                  struct json_object *claims)
{
        struct json_object *o;

        if (a->issuer != NULL &&
            (!json_object_object_get_ex(claims, "iss", &o) ||
             !string_is(o, a->issuer)))
                return V_ISSUER;
        if (a->audience == NULL)
                return V_OK;
        if (!json_object_object_get_ex(claims, "aud", &o))
                return V_AUDIENCE;
        if (json_object_is_type(o, json_type_array)) {
                size_t n = json_object_array_length(o);

                for (size_t i = 0; i < n; i++)
                        if (string_is(json_object_array_get_idx(o, i),
                                      a->audience))
                                return V_OK;
                return V_AUDIENCE;
        }
        return string_is(o, a->audience) ? V_OK : V_AUDIENCE;
}

/*
 * PROTOCOL.md: an optional '-', then "0" or digits without a leading
 * zero, within int64. "-0", "007", "+1" and " 1" are not numbers here
 * (they stay strings), so a numeric userId prints back as its sub did.
 */
static bool decimal_int64(const char *s, size_t len, int64_t *out)
{
        bool neg = len > 0 && s[0] == '-';
        size_t i = neg ? 1 : 0;
        int64_t v = 0;

        if (i == len || (s[i] == '0' && (neg || len - i > 1)))
                return false;
        for (; i < len; i++) {
                int d = s[i] - '0';

                if (d < 0 || d > 9)
                        return false;
                /* Accumulate towards the sign so INT64_MIN fits. */
                if (__builtin_mul_overflow(v, 10, &v) ||
                    (neg ? __builtin_sub_overflow(v, d, &v)
                         : __builtin_add_overflow(v, d, &v)))
                        return false;
        }
        *out = v;
        return true;
}

static enum verdict sub_user_id(struct json_object *claims,
                                struct json_object **user_id)
{
        struct json_object *sub;
        const char *s;
        int64_t v;
        size_t len;

        if (!json_object_object_get_ex(claims, "sub", &sub))
                return V_SUB;
        if (json_object_is_type(sub, json_type_int)) {
                /*
                 * json-c keeps integers above INT64_MAX as uint64; jansson
                 * refuses them before we get here, but do not clamp one
                 * into a different user if that ever changes.
                 */
                v = json_object_get_int64(sub);
                if (v == INT64_MAX &&
                    json_object_get_uint64(sub) != (uint64_t)INT64_MAX)
                        return V_SUB;
                *user_id = json_object_new_int64(v);
                return *user_id != NULL ? V_OK : V_NOMEM;
        }
        /* A double (1.5, and 1.0 too: it was written as a fraction),
           bool, null, object or array is no user. */
        if (!json_object_is_type(sub, json_type_string))
                return V_SUB;
        s = json_object_get_string(sub);
        len = (size_t)json_object_get_string_len(sub);
        if (len == 0)
                return V_SUB;
        if (decimal_int64(s, len, &v))
                *user_id = json_object_new_int64(v);
        else
                *user_id = json_object_new_string_len(s, (int)len);
        return *user_id != NULL ? V_OK : V_NOMEM;
}

static enum verdict check_claims(const struct pxl_auth *a, jwt_t *jwt,
                                 time_t now, struct json_object **user_id,
                                 struct json_object **payload)
{
        struct json_object *claims;
        enum verdict v;
        char *js;

        /* The claims as JSON text, re-read by json-c: big integers and
           nested values come through exactly, which jwt_get_grant_int
           (a long) and friends would not promise. */
        errno = 0;
        js = jwt_get_grants_json(jwt, NULL);
        if (js == NULL)
                return errno == ENOMEM ? V_NOMEM : V_INVALID;
        claims = parse_object(js, strlen(js));
        free(js);
        if (claims == NULL)
                return V_INVALID; /* an array, or nested too deep */
        v = check_times(a, claims, now);
        if (v == V_OK)
                v = check_iss_aud(a, claims);
        if (v == V_OK)
                v = sub_user_id(claims, user_id);
        if (v != V_OK) {
                json_object_put(claims);
                return v;
        }
        *payload = claims;
        return V_OK;
}

int pxl_auth_verify(const struct pxl_auth *a, const char *token, time_t now,
                    struct json_object **user_id, struct json_object **payload,
                    const char **reason)
{
        jwt_t *jwt = NULL;
        enum verdict v;
        int rc;

        *user_id = NULL;
        *payload = NULL;
        v = check_header(a, token);
        if (v == V_OK) {
                rc = jwt_decode(&jwt, token, a->key, (int)a->key_len);
                /*
                 * A failed RSA/EC check leaves entries in this thread's
                 * OpenSSL error queue; stale ones would make a later
                 * SSL_get_error() on a TLS connection report a failure.
                 */
                ERR_clear_error();
                if (rc != 0)
                        /* Bad signature and garbage look alike (EINVAL). */
                        v = rc == ENOMEM ? V_NOMEM : V_INVALID;
                else if (jwt_get_alg(jwt) != a->alg->alg)
                        /* Unreachable after check_header unless libjwt
                           reads the header differently; refuse then. */
                        v = V_ALG;
                else
                        v = check_claims(a, jwt, now, user_id, payload);
                jwt_free(jwt);
        }
        *reason = verdict_text[v];
        if (v == V_OK)
                return PXL_OK;
        return v == V_NOMEM ? PXL_ENOMEM : PXL_EDECLINED;
}
