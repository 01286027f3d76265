/*
 * pxl_auth.h - JWT bearer tokens on the upgrade request (PROTOCOL.md
 * "Authentication"): find the token, verify it against auth.jwt, turn
 * `sub` into a userId. No sockets, no logging: the connection code answers
 * 401 and logs the reason.
 */
#ifndef PXL_AUTH_H
#define PXL_AUTH_H

#include <stdbool.h>
#include <time.h>

#include "pxl_conf.h"
#include "pxl_http.h"
#include "pxl_str.h"

struct json_object;
struct pxl_auth;

/*
 * Build a verifier from validated settings (conf->enabled must be true).
 * HS*: the secret as written, or decoded from RFC 4648 base64url (padding
 * optional) when conf->secret_base64url. RS and ES algorithms: the PEM
 * public key file, which must hold an RSA key (RS256/384/512) or an EC key
 * on the matching curve (ES256 P-256, ES384 P-384, ES512 P-521). Returns NULL,
 * with "FILE: auth.jwt.KEY: why\n" lines appended to errors (FILE = app_file),
 * when unusable. Nothing is kept from conf: the verifier owns copies.
 */
struct pxl_auth *pxl_auth_new(const struct pxl_auth_conf *conf,
                              const char *app_file, struct pxl_str *errors);
void pxl_auth_free(struct pxl_auth *a);

/* auth.jwt.required: a request without a token gets 401. False for NULL
 * (auth off). */
bool pxl_auth_required(const struct pxl_auth *a);

/*
 * The token of an upgrade request: "Authorization: Bearer T" (scheme
 * case-insensitive; another scheme, or Bearer with nothing after it,
 * counts as no header), else the `token` query parameter (percent-decoded;
 * empty = absent). Returns 1 and a malloc'd NUL-terminated *token (the
 * caller frees it), 0 when there is none, or PXL_EINVAL (a query value
 * badly encoded or longer than 8 KiB, a NUL in the value) or
 * PXL_ENOMEM. req is borrowed.
 */
int pxl_auth_token(const struct pxl_http_request *req, char **token);

/*
 * Verify token at time `now`: the header's alg must be the configured one,
 * the signature must verify, exp/nbf (when present; NumericDate, integer
 * or not) must allow `now` with the configured leeway (valid while
 * now < exp + leeway and now + leeway >= nbf), iss/aud must match when
 * configured and `sub` must give a userId.
 *
 * Returns 0 with *user_id (json int64 or string) and *payload (the whole
 * claims object), both new references the caller puts; PXL_EDECLINED with
 * *reason a short static text for the 401 body and the log ("invalid
 * token", "token expired", "token not yet valid", "wrong algorithm",
 * "wrong issuer", "wrong audience", "invalid sub"); or PXL_ENOMEM. Reasons
 * never contain the token, and nothing here logs it.
 */
int pxl_auth_verify(const struct pxl_auth *a, const char *token, time_t now,
                    struct json_object **user_id, struct json_object **payload,
                    const char **reason);

#endif
