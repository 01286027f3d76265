"""
test_auth - JWT authentication of upgrade requests (PROTOCOL.md
"Authentication"): every token failure is a 401 with a short plain-text
body before any 101 (checked on raw sockets); accepted tokens give the
userId of `sub` and the authenticated frame right after connected; header
versus query parameter; leeway, issuer, audience, base64url secrets;
HS256/384/512 minted with the stdlib, RS256/ES256 with the openssl
command; listen.origins (403); and no token ever appears in a server log.
"""
import asyncio
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, Server, app_config,  # noqa: E402
                     astop_servers, b64url, b64url_decode, check,
                     check_refusal, dumps, eq, jwt_hs, new_key, send_raw,
                     tmpdir, upgrade_request, wait_until)
from pxlws import connect  # noqa: E402

tap = TAP()
tap.deadline(60)

SECRET = "auth-test-secret-\u00e9-not-base64"
OTHER = "some-other-secret"
# base64url text (with - and _) whose decoded bytes are the HMAC key.
B64_KEY = bytes(range(200, 232)) + b"\xfb\xff\xfe"
B64_SECRET = b64url(B64_KEY)
ISS = "https://issuer.example"
AUD = "pxl-clients"
AUTHED = "Authentication successful"

# Every token sent to a server, to check its log afterwards.
SENT = {}


def now():
    return int(time.time())


def sent(srv, token):
    SENT.setdefault(srv, []).append(token)
    return token


# ---- RS256 / ES256 with the openssl command ---------------------------------

class Keys:
    def __init__(self):
        self.dir = tmpdir()
        self.rsa = self._gen("rsa", ["-algorithm", "RSA", "-pkeyopt",
                                     "rsa_keygen_bits:2048"])
        self.rsa2 = self._gen("rsa2", ["-algorithm", "RSA", "-pkeyopt",
                                       "rsa_keygen_bits:2048"])
        self.ec = self._gen("ec", ["-algorithm", "EC", "-pkeyopt",
                                   "ec_paramgen_curve:P-256"])
        self.ec2 = self._gen("ec2", ["-algorithm", "EC", "-pkeyopt",
                                     "ec_paramgen_curve:P-256"])

    def _gen(self, name, args):
        priv = os.path.join(self.dir, name + ".pem")
        pub = os.path.join(self.dir, name + ".pub.pem")
        subprocess.run(["openssl", "genpkey"] + args + ["-out", priv],
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
        subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out",
                        pub], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
        return priv, pub


def openssl_sign(priv, data):
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", priv],
                       input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=True)
    return p.stdout


def der_to_raw(der, n=32):
    """An ECDSA DER signature (SEQUENCE of INTEGER r, s) as r||s."""
    check(der[0] == 0x30, "not a DER sequence")
    i = 2
    if der[1] & 0x80:
        i = 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        check(der[i] == 0x02, "not a DER integer")
        ln = der[i + 1]
        v = der[i + 2:i + 2 + ln].lstrip(b"\x00")
        check(len(v) <= n, "integer too long")
        out += v.rjust(n, b"\x00")
        i += 2 + ln
    return out


def jwt_pk(payload, priv, alg):
    hp = "%s.%s" % (b64url(dumps({"alg": alg, "typ": "JWT"})),
                    b64url(dumps(payload)))
    sig = openssl_sign(priv, hp.encode("ascii"))
    if alg == "ES256":
        sig = der_to_raw(sig)
    return hp + "." + b64url(sig)


# ---- raw-socket refusals and accepted connections ---------------------------

def raw_upgrade(port, query="", headers=()):
    return send_raw(port, upgrade_request(path="/ws" + query, key=new_key(),
                                          extra=list(headers)))


def check_status_line(r, status):
    check(r.raw.startswith(b"HTTP/1.1 %d " % status),
          "status line: got %r, expected HTTP/1.1 %d"
          % (r.raw.split(b"\r\n")[0], status))


def expect_status(port, status, query="", headers=()):
    c = raw_upgrade(port, query, headers)
    try:
        r = c.read_response()
        check_status_line(r, status)
        check_refusal(r)
        c.expect_eof()
        return r
    finally:
        c.close()


def expect_401(srv, token=None, query=None, headers=()):
    if token is not None:
        sent(srv, token)
        query = "?token=" + token
    expect_status(srv.port, 401, query or "", headers)


async def expect_user(srv, uid, claims, query="", headers=None):
    """Connect (python websockets); connected, then authenticated with
    uid, then nothing; test/whoami shows uid and the whole payload."""
    c = await connect(srv.url() + query, extra_headers=headers or {})
    try:
        await c.hello()
        eq(await c.recv(), {"type": "auth", "action": "authenticated",
                            "data": {"userId": uid, "message": AUTHED}},
           "the frame after connected")
        await c.send_json({"type": "test", "action": "whoami"})
        w = (await c.recv())["response"]
        eq(w["userId"], uid, "whoami userId")
        eq(type(w["userId"]), type(uid), "userId JSON type")
        if claims is not None:
            eq(w["token"], claims, "whoami token (the whole payload)")
        await c.expect_nothing("frames after authenticated")
    finally:
        await c.close()


async def expect_anonymous(srv, query="", headers=None):
    c = await connect(srv.url() + query, extra_headers=headers or {})
    try:
        await c.hello()
        await c.send_json({"type": "test", "action": "whoami"})
        r = await c.recv()
        check(r.get("action") == "whoami", "expected the whoami reply "
              "(and no authenticated frame), got %r" % (r,))
        eq((r["response"]["userId"], r["response"]["token"]), (None, None),
           "anonymous: userId and token")
    finally:
        await c.close()


def q(srv, token):
    return "?token=" + sent(srv, token)


def bearer(srv, token, scheme="Bearer"):
    return {"Authorization": "%s %s" % (scheme, sent(srv, token))}


def hs(payload, secret=SECRET, alg="HS256"):
    return jwt_hs(payload, secret, alg)


def hmac_sign(hp, secret=SECRET):
    """header.payload + its HMAC-SHA256 by secret, whatever alg says."""
    import hashlib
    import hmac
    return hp + "." + b64url(hmac.new(secret.encode(), hp.encode(),
                                      hashlib.sha256).digest())


def none_token(payload):
    return "%s.%s." % (b64url(dumps({"alg": "none", "typ": "JWT"})),
                       b64url(dumps(payload)))


# ---- cases ------------------------------------------------------------------

def refusal_cases(srv, keys):
    t = now()
    good_hp = hs({"sub": "1"}).rsplit(".", 1)[0]
    del srv
    cases = [
        ("expired exp", hs({"sub": "1", "exp": t - 60})),
        ("exp one second ago (leeway 0)", hs({"sub": "1", "exp": t - 2})),
        ("nbf in the future", hs({"sub": "1", "nbf": t + 60})),
        ("wrong signature (other secret)", hs({"sub": "1"}, OTHER)),
        ("tampered payload", "%s.%s.%s" % (
            good_hp.split(".")[0], b64url(dumps({"sub": "2"})),
            hs({"sub": "1"}).rsplit(".", 1)[1])),
        ("signature cut off", good_hp + "."),
        ("alg none, empty signature", none_token({"sub": "1"})),
        ("alg none with an HMAC-SHA256 signature by the secret",
         hmac_sign(none_token({"sub": "1"})[:-1])),
        ("alg NONE", "%s.%s." % (b64url(dumps({"alg": "NONE"})),
                                 b64url(dumps({"sub": "1"})))),
        ("wrong algorithm: HS512 with the same secret",
         hs({"sub": "1"}, alg="HS512")),
        ("wrong algorithm: HS384 with the same secret",
         hs({"sub": "1"}, alg="HS384")),
        ("RS256 token when HS256 is configured",
         jwt_pk({"sub": "1"}, keys.rsa[0], "RS256")),
        ("ES256 token when HS256 is configured",
         jwt_pk({"sub": "1"}, keys.ec[0], "ES256")),
        ("header without alg", jwt_hs({"sub": "1"}, SECRET, "HS256",
                                      header={"typ": "JWT"})),
        ("garbage", "garbage-token-that-is-not-a-jwt"),
        ("three garbage parts", "abc.def.ghi"),
        ("two parts", good_hp),
        ("four parts", hs({"sub": "1"}) + ".x"),
        ("payload not JSON", "%s.%s.x" % (b64url('{"alg":"HS256"}'),
                                          b64url("not json"))),
        ("missing sub", hs({"name": "x"})),
        ("empty sub", hs({"sub": ""})),
        ("sub 1.5", hs({"sub": 1.5})),
        ("sub true", hs({"sub": True})),
        ("sub false", hs({"sub": False})),
        ("sub an object", hs({"sub": {"id": 1}})),
        ("sub an array", hs({"sub": ["1"]})),
        ("payload an array", hs([{"sub": "1"}])),
    ]
    return cases


async def run_hs(srv, keys):
    A = tap.acase
    C = tap.case
    for name, tok in refusal_cases(srv, keys):
        C("401 before the upgrade: " + name, expect_401, srv, tok)
    C("401: bad Authorization: Bearer token (no query)", expect_401, srv,
      None, "", ["Authorization: Bearer " + sent(srv, hs({"sub": "1"},
                                                          OTHER))])
    C("401: good query token but a bad header token (header wins)",
      expect_401, srv, None, q(srv, hs({"sub": "1"})),
      ["Authorization: Bearer " + sent(srv, hs({"sub": "1"}, OTHER))])

    claims = {"sub": "42", "name": "Ann", "iat": now(), "exp": now() + 600,
              "nested": {"roles": ["a", "b"], "deep": {"x": [1, None, True]}},
              "n": 1.5}
    await A("valid HS256 via ?token=: authenticated right after connected; "
            "whoami has the whole payload", expect_user, srv, 42, claims,
            q(srv, hs(claims)))
    await A("valid HS256 via Authorization: Bearer", expect_user, srv, 42,
            None, "", bearer(srv, hs({"sub": "42"})))
    await A("header wins: bad query token, good header token", expect_user,
            srv, "hdr", None, q(srv, hs({"sub": "q"}, OTHER)),
            bearer(srv, hs({"sub": "hdr"})))
    await A("header wins: two good tokens, the header's user",
            expect_user, srv, "hdr", None, q(srv, hs({"sub": "qry"})),
            bearer(srv, hs({"sub": "hdr"})))
    await A('"bearer" in lower case', expect_user, srv, 7, None, "",
            bearer(srv, hs({"sub": "7"}), "bearer"))
    await A('"BEARER" in upper case', expect_user, srv, 8, None, "",
            bearer(srv, hs({"sub": "8"}), "BEARER"))
    await A("another scheme counts as no header: query token used",
            expect_user, srv, "qq", None, q(srv, hs({"sub": "qq"})),
            {"Authorization": "Basic dXNlcjpwYXNz"})
    await A('"Bearer" with nothing after it counts as no header',
            expect_user, srv, "q2", None, q(srv, hs({"sub": "q2"})),
            {"Authorization": "Bearer"})
    await A("token among other query parameters", expect_user, srv, "mid",
            None, "?a=1&token=%s&b=2" % sent(srv, hs({"sub": "mid"})))
    await A("empty token= is absent: anonymous (not required)",
            expect_anonymous, srv, "?token=")
    await A("no token: anonymous (not required)", expect_anonymous, srv)
    await A("another scheme and no query: anonymous", expect_anonymous, srv,
            "", {"Authorization": "Basic dXNlcjpwYXNz"})
    subs = [("42", 42), (42, 42), ("abc", "abc"), ("007", "007"),
            ("0", 0), ("-5", -5), (-5, -5), ("9x", "9x"), (" 1", " 1"),
            ("1.0", "1.0"), ("+1", "+1"),
            ("9223372036854775807", 9223372036854775807),
            (9223372036854775807, 9223372036854775807),
            ("-9223372036854775808", -9223372036854775808),
            ("9223372036854775808", "9223372036854775808"),
            ("99999999999999999999", "99999999999999999999"),
            ("\u00e9t\u00e9", "\u00e9t\u00e9")]
    for sub, uid in subs:
        await A("sub %s -> userId %s" % (dumps(sub), dumps(uid)),
                expect_user, srv, uid, {"sub": sub}, q(srv, hs({"sub": sub})))
    await A("no exp: accepted", expect_user, srv, 5, {"sub": 5},
            q(srv, hs({"sub": 5})))
    await A("exp in the future and nbf in the past: accepted", expect_user,
            srv, 6, None, q(srv, hs({"sub": 6, "nbf": now() - 60,
                                     "exp": now() + 60})))


async def run_required(srv):
    C = tap.case
    C("required: no token -> 401", expect_401, srv, None, "")
    C("required: empty token= -> 401", expect_401, srv, None, "?token=")
    C("required: Bearer with nothing after it -> 401", expect_401, srv,
      None, "", ["Authorization: Bearer"])
    C("required: bad token -> 401", expect_401, srv, hs({"sub": "1"}, OTHER))
    await tap.acase("required: valid token accepted", expect_user, srv, 3,
                    None, q(srv, hs({"sub": 3})))


async def run_leeway(srv):
    C = tap.case
    await tap.acase("leeway 30: a token expired 5 s ago is accepted",
                    expect_user, srv, 1, None,
                    q(srv, hs({"sub": 1, "exp": now() - 5})))
    await tap.acase("leeway 30: nbf 5 s ahead is accepted", expect_user,
                    srv, 2, None, q(srv, hs({"sub": 2, "nbf": now() + 5})))
    C("leeway 30: expired 120 s ago -> 401", expect_401, srv,
      hs({"sub": 1, "exp": now() - 120}))
    C("leeway 30: nbf 120 s ahead -> 401", expect_401, srv,
      hs({"sub": 1, "nbf": now() + 120}))


async def run_iss_aud(srv):
    C = tap.case
    A = tap.acase
    await A("issuer and audience match", expect_user, srv, 1, None,
            q(srv, hs({"sub": 1, "iss": ISS, "aud": AUD})))
    await A("aud an array containing the audience", expect_user, srv, 2,
            None, q(srv, hs({"sub": 2, "iss": ISS,
                             "aud": ["other", AUD, "third"]})))
    C("issuer mismatch -> 401", expect_401, srv,
      hs({"sub": 1, "iss": "https://evil.example", "aud": AUD}))
    C("audience mismatch -> 401", expect_401, srv,
      hs({"sub": 1, "iss": ISS, "aud": "someone-else"}))
    C("aud array without the audience -> 401", expect_401, srv,
      hs({"sub": 1, "iss": ISS, "aud": ["a", "b"]}))
    C("iss missing -> 401", expect_401, srv, hs({"sub": 1, "aud": AUD}))
    C("aud missing -> 401", expect_401, srv, hs({"sub": 1, "iss": ISS}))
    C("issuer differs only in case -> 401", expect_401, srv,
      hs({"sub": 1, "iss": ISS.upper(), "aud": AUD}))


async def run_b64(srv):
    await tap.acase("secret_encoding base64url: a token signed with the "
                    "decoded secret verifies", expect_user, srv, 9, None,
                    q(srv, jwt_hs({"sub": "9"}, b64url_decode(B64_SECRET))))
    tap.case("secret_encoding base64url: a token signed with the secret "
             "text -> 401", expect_401, srv, jwt_hs({"sub": "9"},
                                                     B64_SECRET))


async def run_alg(srv, alg, good, bad):
    await tap.acase("%s configured: %s token accepted" % (alg, alg),
                    expect_user, srv, "u-" + alg, None,
                    q(srv, good({"sub": "u-" + alg})))
    for name, tok in bad:
        tap.case("%s configured: %s -> 401" % (alg, name), expect_401, srv,
                 tok)


def t_origin(srv, headers, status):
    before = len(srv.log().splitlines())
    expect_status(srv.port, status, "", headers)
    # The refusal's log line names the peer (issue 13).
    wait_until(lambda: any("refused upgrade from 127.0.0.1: %d" % status in x
                           for x in srv.log().splitlines()[before:]),
               timeout=3, what="a 'refused upgrade from 127.0.0.1' line")


async def t_origin_ok(srv):
    c = await connect(srv.url(), origin="https://ok.example")
    try:
        await c.hello()
        await c.expect_nothing("frames")
    finally:
        await c.close()


def t_order(port, status, path, **kw):
    """A refusal from the checks before the token's (raw request)."""
    c = send_raw(port, upgrade_request(path=path, **kw))
    try:
        r = c.read_response()
        check_status_line(r, status)
        eq(r.header("content-type"), "text/plain; charset=utf-8",
           "Content-Type")
    finally:
        c.close()


async def run_order(srv):
    """PROTOCOL.md: path 404, malformed 400, version 426, origin 403,
    token 401 - in that order (auth.jwt.required and origins set)."""
    C = tap.case
    bad = sent(srv, hs({"sub": "1"}, OTHER))
    good = sent(srv, hs({"sub": "1"}))
    ok_origin = ["Origin: https://ok.example"]
    C("order: other path with a bad token -> 404", t_order, srv.port, 404,
      "/nope?token=" + bad, key=new_key(), extra=ok_origin)
    C("order: no upgrade headers with a bad token -> 400", t_order,
      srv.port, 400, "/ws?token=" + bad, key=None, upgrade=None,
      connection=None, version=None, extra=ok_origin)
    C("order: wrong version with a bad token -> 426", t_order, srv.port,
      426, "/ws?token=" + bad, key=new_key(), version="12",
      extra=ok_origin)
    C("order: bad Origin with a bad token -> 403", t_order, srv.port, 403,
      "/ws?token=" + bad, key=new_key(),
      extra=["Origin: https://evil.example"])
    C("order: bad Origin with a good token -> 403", t_order, srv.port, 403,
      "/ws?token=" + good, key=new_key(),
      extra=["Origin: https://evil.example"])
    C("order: no Origin and no token -> 403", t_order, srv.port, 403, "/ws",
      key=new_key())
    C("order: good Origin and no token (required) -> 401", t_order,
      srv.port, 401, "/ws", key=new_key(), extra=ok_origin)
    C("order: good Origin and a bad token -> 401", t_order, srv.port, 401,
      "/ws?token=" + bad, key=new_key(), extra=ok_origin)


async def t_origin_token(srv):
    tok = sent(srv, hs({"sub": "ot"}))
    c = await connect(srv.url() + "?token=" + tok,
                      origin="https://ok.example")
    try:
        await c.hello()
        eq(await c.recv(), {"type": "auth", "action": "authenticated",
                            "data": {"userId": "ot", "message": AUTHED}},
           "authenticated frame")
    finally:
        await c.close()


def log_has_no_tokens(srv):
    log = srv.log()
    toks = SENT.get(srv, [])
    check(toks, "no tokens were sent to this server")
    leaked = []
    for tok in toks:
        parts = [tok] + [p for p in tok.split(".") if len(p) >= 16]
        for p in parts:
            if p and p in log:
                leaked.append(p)
    check(not leaked, "the log contains %d token(s) or token parts, e.g. "
          "%r" % (len(leaked), leaked[:3]))


# ---- main -------------------------------------------------------------------

def jwt_cfg(**kw):
    items = []
    for k, v in kw.items():
        if isinstance(v, bool):
            items.append("%s = %s;" % (k, "true" if v else "false"))
        elif isinstance(v, int):
            items.append("%s = %d;" % (k, v))
        else:
            items.append('%s = "%s";' % (k, v))
    return "auth = { jwt = { %s }; };" % " ".join(items)


async def main():
    keys = await asyncio.to_thread(Keys)

    def app(name, log_level="info", **kw):
        return Server(app_config(("testkit",), extra=jwt_cfg(**kw),
                                 log_level=log_level), name)

    # debug: not even debug lines may show a token
    hs256 = app("hs256", "debug", secret=SECRET, algorithm="HS256")
    req = app("required", secret=SECRET, required=True)
    lee = app("leeway", secret=SECRET, leeway=30)
    ia = app("iss_aud", secret=SECRET, issuer=ISS, audience=AUD)
    b64 = app("b64", secret=B64_SECRET, secret_encoding="base64url")
    hs384 = app("hs384", secret=SECRET, algorithm="HS384")
    hs512 = app("hs512", secret=SECRET, algorithm="HS512")
    rs = app("rs256", public_key=keys.rsa[1], algorithm="RS256")
    es = app("es256", public_key=keys.ec[1], algorithm="ES256")
    text = app_config(("testkit",))
    check('path = "/ws"; };' in text, "app_config's listen group changed")
    orig = Server(text.replace('path = "/ws"; };', 'path = "/ws"; origins = '
                               '["https://ok.example"]; };'), "origins")
    both = Server(text.replace('path = "/ws"; };', 'path = "/ws"; origins = '
                               '["https://ok.example"]; };')
                  + jwt_cfg(secret=SECRET, required=True) + "\n",
                  "origins_auth")
    servers = [hs256, req, lee, ia, b64, hs384, hs512, rs, es, orig, both]
    try:
        for s in servers:
            s.start()
        await run_hs(hs256, keys)
        await run_required(req)
        await run_leeway(lee)
        await run_iss_aud(ia)
        await run_b64(b64)

        def h384(p):
            return hs(p, alg="HS384")

        def h512(p):
            return hs(p, alg="HS512")

        await run_alg(hs384, "HS384", h384, [
            ("HS256 token", hs({"sub": "1"})),
            ("HS512 token", hs({"sub": "1"}, alg="HS512")),
            ("wrong HS384 signature", hs({"sub": "1"}, OTHER, "HS384"))])
        await run_alg(hs512, "HS512", h512, [
            ("HS256 token", hs({"sub": "1"})),
            ("HS384 token", hs({"sub": "1"}, alg="HS384")),
            ("expired HS512", h512({"sub": "1", "exp": now() - 60})),
            ("alg none", none_token({"sub": "1"}))])
        with open(keys.rsa[1]) as f:
            rsa_pub_pem = f.read()

        def rs_good(p):
            return jwt_pk(p, keys.rsa[0], "RS256")

        def es_good(p):
            return jwt_pk(p, keys.ec[0], "ES256")

        await run_alg(rs, "RS256", rs_good, [
            ("RS256 signed by another key", jwt_pk({"sub": "1"}, keys.rsa2[0],
                                                   "RS256")),
            ("HS256 signed with the public key PEM as secret",
             jwt_hs({"sub": "1"}, rsa_pub_pem)),
            ("HS256 token", hs({"sub": "1"})),
            ("ES256 token", es_good({"sub": "1"})),
            ("alg none", none_token({"sub": "1"})),
            ("expired RS256", rs_good({"sub": "1", "exp": now() - 60})),
            ("RS256 without sub", rs_good({"name": "x"}))])
        await run_alg(es, "ES256", es_good, [
            ("ES256 signed by another key", jwt_pk({"sub": "1"}, keys.ec2[0],
                                                   "ES256")),
            ("ES256 with a DER signature", "%s.%s" % (
                es_good({"sub": "1"}).rsplit(".", 1)[0],
                b64url(openssl_sign(keys.ec[0], es_good({"sub": "1"})
                                    .rsplit(".", 1)[0].encode())))),
            ("RS256 token", rs_good({"sub": "1"})),
            ("HS256 token", hs({"sub": "1"})),
            ("nbf in the future", es_good({"sub": "1", "nbf": now() + 60}))])
        await tap.acase("listen.origins: Origin https://ok.example accepted",
                        t_origin_ok, orig)
        tap.case("listen.origins: another Origin -> 403", t_origin, orig,
                 ["Origin: https://evil.example"], 403)
        tap.case("listen.origins: Origin differing in case -> 403", t_origin,
                 orig, ["Origin: https://OK.example"], 403)
        tap.case("listen.origins: no Origin -> 403", t_origin, orig, [], 403)
        await run_order(both)
        await tap.acase("origins + required token: both good -> accepted",
                        t_origin_token, both)
    finally:
        def no_tokens(s):
            if s in SENT:
                tap.case("%s server log contains none of the tokens sent"
                         % s.name, log_has_no_tokens, s)
        await astop_servers(tap, servers, after=no_tokens)


tap.run(main)
