"""
test_conformance - RFC 6455 as PROTOCOL.md pins it down, on plain sockets
with hand-made bytes: the opening handshake (101, 400, 404, 426, sizes,
split and pipelined requests) and the frame rules with their exact close
codes (1002, 1007, 1009, echoed client codes), pings, fragmentation,
length forms and size limits. The apps use the echo plugin with
raw_text = true, so every data message comes back verbatim.

After every close the server must also close TCP (recv returns b"").
At the end, each server's counters match the closes and refusals this
test saw: refusedUpgrades, errorsProtocol (1002), errorsUtf8 (1007),
errorsTooBig (1009). With raw_text no route can ask for them, so
testkit (settings.log_metrics) logs them at every disconnect.
"""
import collections
import os
import re
import struct
import sys

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, RawWS, Server, accept_key, app_config,  # noqa: E402
                     check, check_refusal, eq, new_key, send_raw,
                     stop_servers, upgrade_request, wait_until)

tap = TAP()
tap.deadline(60)

TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
frame = RawWS.frame

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

# What each server (by port) was seen to do: refusals and close codes.
seen = collections.defaultdict(collections.Counter)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def opened(port):
    c = RawWS(port)
    try:
        c.handshake()
    except BaseException:
        c.close()
        raise
    return c


# ---- handshake -------------------------------------------------------------

def t_101_known_key(port):
    with RawWS(port) as c:
        c.send(upgrade_request(key=RFC_KEY))
        r = c.read_response()
        eq((r.status, r.reason), (101, "Switching Protocols"), "status")
        eq(r.header("sec-websocket-accept"), RFC_ACCEPT,
           "Sec-WebSocket-Accept for the RFC 6455 sample key")
        eq(accept_key(RFC_KEY), RFC_ACCEPT, "the test's own accept_key()")
        eq((r.header("upgrade") or "").lower(), "websocket", "Upgrade")
        check("upgrade" in [t.strip().lower() for t in
                            (r.header("connection") or "").split(",")],
              "Connection header %r" % r.header("connection"))
        check(r.header("sec-websocket-extensions") is None,
              "an extension was negotiated although none was offered")
        c.send_frame(TEXT, "hi")
        c.expect_frame(TEXT, "hi", "echo after the handshake")


def expect_refusal(port, data, status, header=None, reason=None):
    with send_raw(port, data) as c:
        r = c.read_response()
        eq(r.status, status, "status (head %r)" % r.raw[:300])
        if reason:
            eq(r.reason, reason, "reason phrase")
        check_refusal(r)
        if header:
            eq(r.header(header[0]), header[1], header[0])
        seen[port]["refused"] += 1
        c.expect_eof()


def t_upgrades(port, data):
    with RawWS(port) as c:
        key = data[1]
        c.send(data[0])
        r = c.read_response()
        eq(r.status, 101, "status (head %r)" % r.raw[:300])
        eq(r.header("sec-websocket-accept"), accept_key(key), "accept")
        c.send_frame(TEXT, "ok")
        c.expect_frame(TEXT, "ok", "echo")


def req_with_key(**kw):
    key = new_key()
    return upgrade_request(key=key, **kw), key


def sized_request(total):
    """An upgrade request whose head is exactly `total` bytes."""
    key = new_key()
    base = upgrade_request(key=key, extra=["X-Pad: "])
    pad = total - len(base)
    check(pad > 0, "cannot pad to %d" % total)
    return upgrade_request(key=key, extra=["X-Pad: " + "a" * pad]), key


def t_one_byte_writes(port):
    key = new_key()
    data = upgrade_request(key=key)
    with RawWS(port) as c:
        for i in range(len(data)):
            c.send(data[i:i + 1])
        r = c.read_response()
        eq(r.status, 101, "status")
        eq(r.header("sec-websocket-accept"), accept_key(key), "accept")
        msg = frame(TEXT, "split")
        for i in range(len(msg)):
            c.send(msg[i:i + 1])
        c.expect_frame(TEXT, "split", "echo of a frame sent byte by byte")


def t_pipelined(port):
    key = new_key()
    with RawWS(port) as c:
        c.send(upgrade_request(key=key) + frame(TEXT, "first") +
               frame(BINARY, b"\x00second"))
        r = c.read_response()
        eq(r.status, 101, "status")
        c.expect_frame(TEXT, "first", "echo of the pipelined text frame")
        c.expect_frame(BINARY, b"\x00second", "echo of the second frame")


def t_handshake_timeout(port):
    with RawWS(port, timeout=10) as c:
        c.send(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        c.expect_eof(timeout=8)  # handshake_timeout = 1 in this app


# ---- frames ----------------------------------------------------------------

def expect_fail(port, data, code):
    with opened(port) as c:
        c.send(data)
        c.expect_close(code, "close %d" % code)
        seen[port][code] += 1
        c.expect_eof()


def t_echo(port, frames, expected):
    with opened(port) as c:
        c.send(b"".join(frames))
        for op, payload in expected:
            c.expect_frame(op, payload, "echo")


def t_interleaved_ping(port):
    with opened(port) as c:
        c.send(frame(TEXT, "Hel", fin=False) + frame(PING, b"p1") +
               frame(CONT, "lo, ", fin=False) + frame(PONG, b"unsolicited") +
               frame(CONT, "world"))
        c.expect_frame(PONG, b"p1", "pong for the ping between fragments")
        c.expect_frame(TEXT, "Hello, world", "the whole message")


def t_close_echo(port, code):
    with opened(port) as c:
        c.send_frame(CLOSE, close_payload(code, b"bye"))
        c.expect_close(code, "echoed close")
        c.expect_eof()


def t_empty_close(port):
    with opened(port) as c:
        c.send_frame(CLOSE, b"")
        data = c.expect_frame(CLOSE, None, "close reply")
        eq(data, b"", "close reply payload (1005 must not be sent)")
        c.expect_eof()


def t_fail_fast(port, first):
    """The first fragment alone is bad: 1007 before the rest is sent."""
    with opened(port) as c:
        c.send(first)
        c.expect_close(1007, "close before the message is complete")
        seen[port][1007] += 1
        c.expect_eof()


def t_partial_frame(port):
    """Bad bytes at the start of a frame whose rest never comes."""
    with opened(port) as c:
        key = b"\x01\x02\x03\x04"
        whole = frame(TEXT, b"ab\xff" + b"c" * 97, mask_key=key)
        c.send(whole[:2 + 4 + 10])
        c.expect_close(1007, "close while the frame is incomplete")
        seen[port][1007] += 1
        c.expect_eof()


def t_oversize_header_only(port, n):
    with opened(port) as c:
        c.send(frame(BINARY, b"", length=n))  # the header alone
        c.expect_close(1009, "close decided by the header")
        seen[port][1009] += 1
        c.expect_eof()


def t_ping(port, payload):
    with opened(port) as c:
        c.send_frame(PING, payload)
        c.expect_frame(PONG, payload, "pong")
        c.send_frame(TEXT, "after")
        c.expect_frame(TEXT, "after", "echo after the ping")


def t_pong_ignored(port):
    with opened(port) as c:
        c.send(frame(PONG, b"x") + frame(TEXT, "still here"))
        c.expect_frame(TEXT, "still here", "echo after an unsolicited pong")


COUNTERS_RE = re.compile(r"counters(?: [A-Za-z0-9]+=\d+)+")


def counter_lines(srv):
    return COUNTERS_RE.findall(srv.log())


def logged_counters(srv):
    """The last counters line testkit logged: {key: int}."""
    lines = counter_lines(srv)
    check(lines, "no counters line in the log")
    return {k: int(v) for k, v in re.findall(r"([A-Za-z0-9]+)=(\d+)",
                                             lines[-1])}


def t_counters(srv):
    """One more connection, closed normally (1000: counted nowhere); its
    disconnect logs the counters, which must match what this test saw."""
    before = len(counter_lines(srv))
    with opened(srv.port) as c:
        c.send_frame(CLOSE, close_payload(1000))
        c.expect_close(1000, "echoed close")
        c.expect_eof()
    wait_until(lambda: len(counter_lines(srv)) > before, 10,
               "a counters line after the last disconnect")
    got = logged_counters(srv)
    mine = seen[srv.port]
    want = {"refusedUpgrades": mine["refused"], "errorsProtocol": mine[1002],
            "errorsUtf8": mine[1007], "errorsTooBig": mine[1009],
            "authFailures": 0}
    tap.diag("%s: saw %r" % (os.path.basename(srv.cfg)[:-4], want))
    eq({k: got.get(k) for k in want}, want,
       "counters logged by %s" % os.path.basename(srv.cfg))


def echo_app(**kw):
    """The echo app, plus testkit logging the counters at each disconnect
    (it adds no route a raw_text app could reach)."""
    return app_config(("echo", '{ path = "testkit"; settings = { '
                       'log_metrics = true; }; }'), raw_text=True, **kw)


def main():
    echo = Server(echo_app(), "echo")
    small = Server(echo_app(limits={
        "max_message_size": 1024, "max_frame_size": 1024,
        "handshake_timeout": 1}), "small")
    smallframe = Server(echo_app(limits={
        "max_message_size": 1024, "max_frame_size": 256}), "smallframe")
    servers = (echo, small, smallframe)
    C = tap.case
    try:
        for s in servers:
            s.start()
        p = echo.port

        # -- handshake --
        C("101 with the right Sec-WebSocket-Accept for the RFC sample key",
          t_101_known_key, p)
        C("wrong path -> 404", expect_refusal, p,
          upgrade_request(path="/other", key=new_key()), 404, None,
          "Not Found")
        C("path is case-sensitive: /WS -> 404", expect_refusal, p,
          upgrade_request(path="/WS", key=new_key()), 404)
        C("/ws/ -> 404", expect_refusal, p,
          upgrade_request(path="/ws/", key=new_key()), 404)
        C("/ws?x=1 (query) upgrades", t_upgrades, p,
          req_with_key(path="/ws?x=1"))
        C("plain GET /ws -> 400", expect_refusal, p,
          b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, None,
          "Bad Request")
        C("POST /ws with upgrade headers -> 400", expect_refusal, p,
          upgrade_request(method="POST", key=new_key()), 400)
        C("missing Sec-WebSocket-Key -> 400", expect_refusal, p,
          upgrade_request(key=None), 400)
        C("Sec-WebSocket-Key of 16 bytes of base64 text -> 400",
          expect_refusal, p, upgrade_request(key="dGhlIHNhbXBsZSBu"), 400)
        C("Sec-WebSocket-Key decoding to 17 bytes -> 400", expect_refusal, p,
          upgrade_request(key="dGhlIHNhbXBsZSBub25jZQE="), 400)
        C("Sec-WebSocket-Key not base64 -> 400", expect_refusal, p,
          upgrade_request(key="!!!!!!!!!!!!!!!!!!!!!!=="), 400)
        C("missing Upgrade -> 400", expect_refusal, p,
          upgrade_request(key=new_key(), upgrade=None), 400)
        C("Upgrade: h2c -> 400", expect_refusal, p,
          upgrade_request(key=new_key(), upgrade="h2c"), 400)
        C("missing Connection -> 400", expect_refusal, p,
          upgrade_request(key=new_key(), connection=None), 400)
        C("Connection: keep-alive -> 400", expect_refusal, p,
          upgrade_request(key=new_key(), connection="keep-alive"), 400)
        C("missing Host -> 400", expect_refusal, p,
          upgrade_request(key=new_key(), host=None), 400)
        C("HTTP/1.0 -> 400", expect_refusal, p,
          upgrade_request(key=new_key()).replace(b"HTTP/1.1", b"HTTP/1.0"),
          400)
        C("a TLS ClientHello -> 400", expect_refusal, p,
          b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
          400)
        C("Connection: keep-alive, UPGRADE and Upgrade: WebSocket accepted",
          t_upgrades, p, req_with_key(connection="keep-alive, UPGRADE",
                                      upgrade="WebSocket"))
        C("Upgrade token list (foo, websocket) accepted", t_upgrades, p,
          req_with_key(upgrade="foo, websocket", connection="Upgrade, x"))
        C("Sec-WebSocket-Version: 8 -> 426 + Sec-WebSocket-Version: 13",
          expect_refusal, p, upgrade_request(key=new_key(), version="8"), 426,
          ("sec-websocket-version", "13"), "Upgrade Required")
        C("missing Sec-WebSocket-Version -> 400 (a missing upgrade header)",
          expect_refusal, p, upgrade_request(key=new_key(), version=None),
          400)
        C("check order: POST to a wrong path -> 404", expect_refusal, p,
          upgrade_request(path="/x", method="POST", key=new_key()), 404)
        C("check order: version 8 on a wrong path -> 404", expect_refusal, p,
          upgrade_request(path="/x", version="8", key=new_key()), 404)
        C("check order: version 8 without a key -> 400", expect_refusal, p,
          upgrade_request(version="8", key=None), 400)
        C("request head over 8 KiB -> 400", expect_refusal, p,
          upgrade_request(key=new_key(), extra=["X-Pad: " + "a" * 9000]),
          400)
        C("request head of exactly 8192 bytes upgrades (inclusive)",
          t_upgrades, p, sized_request(8192))
        C("request head of 8193 bytes -> 400", expect_refusal, p,
          sized_request(8193)[0], 400)
        C("request split into 1-byte writes still upgrades",
          t_one_byte_writes, p)
        C("frames pipelined right after the request are answered",
          t_pipelined, p)
        C("handshake_timeout = 1: a stalled request is dropped",
          t_handshake_timeout, small.port)

        # -- frame rules --
        C("text and binary echo", t_echo, p,
          [frame(TEXT, "h\u00e9llo"), frame(BINARY, b"\xff\x00\xfe")],
          [(TEXT, "h\u00e9llo"), (BINARY, b"\xff\x00\xfe")])
        C("empty text message echoed", t_echo, p, [frame(TEXT, b"")],
          [(TEXT, b"")])
        C("empty fragments around data", t_echo, p,
          [frame(TEXT, b"", fin=False), frame(CONT, "x", fin=False),
           frame(CONT, b"")], [(TEXT, "x")])
        C("unmasked client frame -> 1002", expect_fail, p,
          frame(TEXT, "hi", mask=False), 1002)
        for rsv in (4, 2, 1):
            C("RSV%d set -> 1002" % {4: 1, 2: 2, 1: 3}[rsv], expect_fail, p,
              frame(TEXT, "hi", rsv=rsv), 1002)
        for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
            C("reserved opcode %d -> 1002" % op, expect_fail, p,
              frame(op, b"x"), 1002)
        C("ping with a 126-byte payload -> 1002", expect_fail, p,
          frame(PING, b"p" * 126), 1002)
        C("close with a 126-byte payload -> 1002", expect_fail, p,
          frame(CLOSE, close_payload(1000, b"r" * 124)), 1002)
        C("fragmented ping (FIN=0) -> 1002", expect_fail, p,
          frame(PING, b"p", fin=False), 1002)
        C("continuation without a start -> 1002", expect_fail, p,
          frame(CONT, "x"), 1002)
        C("new text frame during a fragmented message -> 1002", expect_fail,
          p, frame(TEXT, "a", fin=False) + frame(TEXT, "b"), 1002)
        C("binary frame during a fragmented text message -> 1002",
          expect_fail, p, frame(TEXT, "a", fin=False) + frame(BINARY, b"b"),
          1002)
        C("64-bit length with the top bit set -> 1002", expect_fail, p,
          frame(BINARY, b"", length=1 << 63, len_form=64), 1002)
        C("fragmented text with an interleaved ping: pong, then the message",
          t_interleaved_ping, p)
        C("fragmented binary message reassembled", t_echo, p,
          [frame(BINARY, b"\x01", fin=False), frame(CONT, b"\x02", fin=False),
           frame(CONT, b"\x03")], [(BINARY, b"\x01\x02\x03")])
        for n in (126, 1000, 65535):
            data = os.urandom(n)
            C("16-bit length form, %d bytes" % n, t_echo, p,
              [frame(BINARY, data)], [(BINARY, data)])
        C("64-bit length form, 70000 bytes", t_echo, p,
          [frame(TEXT, "z" * 70000)], [(TEXT, "z" * 70000)])
        C("non-minimal 16-bit length for 5 bytes accepted", t_echo, p,
          [frame(TEXT, "short", len_form=16)], [(TEXT, "short")])
        C("non-minimal 64-bit length for 5 bytes accepted", t_echo, p,
          [frame(TEXT, "short", len_form=64)], [(TEXT, "short")])
        C("non-minimal 64-bit length for 300 bytes accepted", t_echo, p,
          [frame(BINARY, b"q" * 300, len_form=64)], [(BINARY, b"q" * 300)])
        C("several frames in one write, echoed in order", t_echo, p,
          [frame(TEXT, "one"), frame(BINARY, b"two"), frame(TEXT, "three")],
          [(TEXT, "one"), (BINARY, b"two"), (TEXT, "three")])
        for code in (1000, 1001, 1003, 1007, 1011, 3000, 4999):
            C("client close %d echoed, then TCP closed" % code, t_close_echo,
              p, code)
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000,
                     65535):
            C("invalid close code %d -> 1002" % code, expect_fail, p,
              frame(CLOSE, close_payload(code)), 1002)
        C("1-byte close payload -> 1002", expect_fail, p,
          frame(CLOSE, b"\x03"), 1002)
        C("empty close -> empty close back, then TCP closed", t_empty_close,
          p)
        for bad, what in ((b"\xff", "0xFF"), (b"a\xc0\xafb", "overlong '/'"),
                          (b"\xed\xa0\x80", "a surrogate"),
                          (b"\xf4\x90\x80\x80", "above U+10FFFF"),
                          (b"ok\xe2\x82", "a character cut at the end"),
                          (b"\x80", "a lone continuation byte")):
            C("invalid UTF-8 in text (%s) -> 1007" % what, expect_fail, p,
              frame(TEXT, bad), 1007)
        C("a character split across fragments is fine", t_echo, p,
          [frame(TEXT, b"1 \xe2\x82", fin=False), frame(CONT, b"\xac 2")],
          [(TEXT, "1 \u20ac 2")])
        C("invalid UTF-8 split across fragments -> 1007", expect_fail, p,
          frame(TEXT, b"1 \xe2\x82", fin=False) + frame(CONT, b"\x28"), 1007)
        C("message ending inside a character (last fragment) -> 1007",
          expect_fail, p,
          frame(TEXT, b"abc", fin=False) + frame(CONT, b"\xe2\x82"), 1007)
        C("fail fast: bad first fragment -> 1007 before the rest is sent",
          t_fail_fast, p, frame(TEXT, b"ab\xff", fin=False))
        C("fail fast: bad bytes in a frame still arriving -> 1007",
          t_partial_frame, p)
        C("invalid UTF-8 in binary is echoed (no UTF-8 rule)", t_echo, p,
          [frame(BINARY, b"\xff\xc0\xaf")], [(BINARY, b"\xff\xc0\xaf")])
        C("invalid UTF-8 close reason -> 1007", expect_fail, p,
          frame(CLOSE, close_payload(1000, b"bad \xff")), 1007)
        C("ping payload echoed in the pong", t_ping, p, b"ping \x00\xff")
        C("empty ping -> empty pong", t_ping, p, b"")
        C("125-byte ping -> 125-byte pong", t_ping, p, bytes(range(125)))
        C("unsolicited pong is ignored", t_pong_ignored, p)

        # -- limits (inclusive) --
        s = small.port
        C("message of exactly max_message_size (1024) accepted", t_echo, s,
          [frame(TEXT, "m" * 1024)], [(TEXT, "m" * 1024)])
        C("message of 1025 bytes in one frame -> 1009", expect_fail, s,
          frame(TEXT, "m" * 1025), 1009)
        C("binary message of 1025 bytes -> 1009", expect_fail, s,
          frame(BINARY, b"m" * 1025), 1009)
        C("1024 bytes in fragments with a ping between accepted", t_echo, s,
          [frame(TEXT, "a" * 1000, fin=False), frame(PING, b"p" * 100),
           frame(CONT, "b" * 24)], [(PONG, b"p" * 100),
                                     (TEXT, "a" * 1000 + "b" * 24)])
        C("1025 bytes in fragments -> 1009", expect_fail, s,
          frame(TEXT, "a" * 1000, fin=False) + frame(CONT, "b" * 25), 1009)
        C("oversized frame refused from its header alone -> 1009",
          t_oversize_header_only, s, 1 << 20)
        f = smallframe.port
        C("frame of exactly max_frame_size (256) accepted", t_echo, f,
          [frame(BINARY, b"f" * 256)], [(BINARY, b"f" * 256)])
        C("frame of 257 bytes -> 1009", expect_fail, f,
          frame(BINARY, b"f" * 257), 1009)
        C("1024-byte message in four 256-byte frames accepted", t_echo, f,
          [frame(TEXT, "a" * 256, fin=False),
           frame(CONT, "b" * 256, fin=False),
           frame(CONT, "c" * 256, fin=False), frame(CONT, "d" * 256)],
          [(TEXT, "a" * 256 + "b" * 256 + "c" * 256 + "d" * 256)])
        C("fifth frame over max_message_size -> 1009", expect_fail, f,
          b"".join(frame(CONT if i else TEXT, "x" * 256, fin=False)
                   for i in range(4)) + frame(CONT, "y"), 1009)

        # -- the counters of what this test provoked --
        for srv in servers:
            C("%s: refusedUpgrades, errorsProtocol, errorsUtf8 and "
              "errorsTooBig count the refusals and 1002/1007/1009 closes "
              "seen" % os.path.basename(srv.cfg)[:-4], t_counters, srv)
    finally:
        stop_servers(tap, servers, only=None,
                     name="%s server exits 0 on SIGTERM, clean log")


tap.run(main)
