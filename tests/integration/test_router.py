"""
test_router - requests and replies through a real pxl-serve with python3-
websockets: the connected frame, round trips, requestId echo, every error
text of PROTOCOL.md in check order (with and without requestId), handler
errors, null versus nothing, deferred replies and errors (out of order,
and to a client that has left: dropped and counted in deferredDropped),
binary frames, strict JSON and the depth limit.
"""
import asyncio
import json
import os
import sys

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (CLIENT_ID_RE, TAP, RawWS, Server, app_config,  # noqa: E402
                     check, dumps, eq, error_frame, is_connected_frame,
                     loads)
from pxlws import MISSING, connect, reply  # noqa: E402

tap = TAP()
tap.deadline(60)

PARSE = "Failed to parse JSON"
NOT_OBJECT = "Invalid WebSocket message"
NO_TYPE = "Missing WebSocket message type"
NO_ACTION = "Missing WebSocket message action"


def nest(depth):
    """A JSON text with `depth` nested containers (arrays and objects)."""
    s = "1"
    for i in range(depth):
        s = "[%s]" % s if i % 2 == 0 else '{"k":%s}' % s
    return s


def req(data_json):
    return '{"type":"test","action":"echo","data":%s}' % data_json


# ---- cases -----------------------------------------------------------------

async def t_connected(url):
    a = await connect(url)
    b = await connect(url)
    try:
        # Ask for something first, so a missing frame fails at once.
        await a.send('{"type":"test","action":"stats"}')
        first = loads(await asyncio.wait_for(a.ws.recv(), 10))
        a._seen_first = True
        check(isinstance(first, dict) and set(first) ==
              {"type", "action", "data"} and first["type"] == "system"
              and first["action"] == "connected",
              "first frame after the 101 is not "
              '{"type":"system","action":"connected","data":{"clientId":ID}}:'
              " got %r" % (first,))
        eq(set(first["data"]), {"clientId"}, "data keys")
        cid = first["data"]["clientId"]
        check(isinstance(cid, str) and CLIENT_ID_RE.match(cid),
              "clientId %r is not 32 lowercase hex characters" % (cid,))
        stats = await a.recv()
        eq(stats["response"]["clientId"], cid, "test/stats clientId")
        await b.send('{"type":"test","action":"stats"}')
        second = loads(await asyncio.wait_for(b.ws.recv(), 10))
        check(is_connected_frame(second), "second client's first frame %r"
              % (second,))
        check(second["data"]["clientId"] != cid, "two clients, one id")
    finally:
        await a.close()
        await b.close()


async def t_round_trip(c, type_, action, data):
    await c.expect(reply(type_, action, data), raw='{"type":"%s","action":'
                   '"%s","data":%s}' % (type_, action, dumps_(data)))


def dumps_(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


async def t_rid(c, rid_json, rid):
    raw = '{"type":"test","action":"echo","data":"x","requestId":%s}' % rid_json
    await c.send(raw)
    text = await c.recv_raw()
    got = loads(text)
    eq(got, reply("test", "echo", "x", rid), "reply to %s" % raw)
    eq(type(got["requestId"]), type(rid), "requestId JSON type")
    if isinstance(rid, int):
        check('"requestId":%s' % rid_json in text,
              "integer requestId not kept in integer form: %r" % text)


async def t_rid_ignored(c, rid_json):
    raw = '{"type":"test","action":"echo","data":"x","requestId":%s}' % rid_json
    await c.expect(reply("test", "echo", "x"), raw=raw)


async def t_error(c, raw, text, rid=MISSING):
    exp = error_frame(text, rid, rid is not MISSING)
    if isinstance(raw, bytes):
        await c.send(raw)
        got = await c.recv()
        eq(got, exp, "error frame for %r" % raw[:100])
    else:
        await c.expect(exp, raw=raw)


async def t_still_open(c):
    await c.expect(reply("test", "echo", "alive", "after-errors"),
                   raw='{"type":"test","action":"echo","data":"alive",'
                   '"requestId":"after-errors"}')


async def t_deferred_order(c):
    await c.send_json({"type": "test", "action": "defer", "requestId": "slow",
                       "data": {"delay_ms": 400, "value": "s"}})
    await c.send_json({"type": "test", "action": "defer", "requestId": 2,
                       "data": {"delay_ms": 20, "value": {"v": "f"}}})
    await c.send_json({"type": "test", "action": "echo", "requestId": 3,
                       "data": "now"})
    got = [await c.recv(5) for _ in range(3)]
    eq(got, [reply("test", "echo", "now", 3),
             reply("test", "defer", {"v": "f"}, 2),
             reply("test", "defer", "s", "slow")],
       "three replies in completion order")


async def t_deferred_null(c):
    await c.send_json({"type": "test", "action": "defer", "requestId": "n",
                       "data": {"delay_ms": 1, "value": None}})
    eq(await c.recv(5), reply("test", "defer", None, "n"), "deferred null")


async def t_deferred_error(c):
    """A deferred error (pxl_defer_fail) is an error frame with its text."""
    await c.send_json({"type": "test", "action": "defer", "requestId": "e",
                       "data": {"delay_ms": 20, "error": "late failure"}})
    eq(await c.recv(5), error_frame("late failure", "e", True),
       "deferred error frame")


async def t_deferred_left(srv, abrupt, error=False):
    """A client sends test/defer and leaves before the answer: the server
    survives and counts the answer it dropped (deferredDropped, +1); with
    error, the answer is a deferred error (pxl_defer_fail)."""
    url = srv.url()
    b = await connect(url)
    try:
        m0 = (await b.request("test", "metrics", rid="m0"))["response"]
        late = {"delay_ms": 150}
        late.update({"error": "late"} if error else {"value": "late"})
        if abrupt:
            raw = RawWS(srv.port)
            raw.handshake()
            raw.send_frame(1, dumps({"type": "test", "action": "defer",
                                     "requestId": "g", "data": late}))
            raw.close()  # TCP gone, no close frame
        else:
            a = await connect(url)
            await a.send_json({"type": "test", "action": "defer",
                               "requestId": "g", "data": late})
            await a.close()
        # Started after the one above with a longer delay: when this reply
        # comes, the reply to the departed client has been attempted.
        await b.send_json({"type": "test", "action": "defer", "requestId": 1,
                           "data": {"delay_ms": 400, "value": "mine"}})
        eq(await b.recv(5), reply("test", "defer", "mine", 1), "own reply")
        st = await b.request("test", "stats", rid="s")
        eq(sorted(st), ["action", "requestId", "response", "type"],
           "stats reply keys")
        eq(sorted(st["response"]), ["clientId", "connects", "disconnects",
                                    "greeting", "lastCloseCode", "reloads"],
           "stats keys")
        m1 = (await b.request("test", "metrics", rid="m1"))["response"]
        eq(m1["deferredDropped"] - m0["deferredDropped"], 1,
           "deferredDropped delta (m0 %d, m1 %d)"
           % (m0["deferredDropped"], m1["deferredDropped"]))
    finally:
        await b.close()


async def t_binary_raw(c, payload):
    await c.send(payload)
    got = await c.recv_raw()
    check(isinstance(got, bytes), "binary echo came back as text: %r" % got)
    eq(got, payload, "binary echo")


async def t_binary_routed(c, payload, expected):
    await c.send(payload)
    got = await c.recv_raw()
    check(isinstance(got, str), "reply to a binary frame must be a text "
          "frame, got binary %r" % got[:100])
    eq(loads(got), expected, "reply to binary %r" % payload[:100])


# ---- main ------------------------------------------------------------------

async def main():
    full = Server(app_config(("echo", "testkit")), "full")
    tk = Server(app_config(("testkit",), limits={"max_json_depth": 4}), "tk")
    try:
        full.start()
        tk.start()
        await run_full(full)
        await run_testkit_only(tk)
    finally:
        await asyncio.to_thread(full.stop_case, tap,
                                "echo+testkit server exits 0, clean log")
        await asyncio.to_thread(tk.stop_case, tap,
                                "testkit-only server exits 0, clean log")


async def run_full(srv):
    url = srv.url()
    A = tap.acase
    await A("(pxl) system/connected frame with a 32-hex clientId comes first",
            t_connected, url)

    c = await connect(url)
    try:
        await A("test/echo round trip (object data)", t_round_trip, c,
                "test", "echo", {"a": [1, 2.5, {"b": None}], "c": "d"})
        await A("test/echo round trip (string, non-ASCII)", t_round_trip, c,
                "test", "echo", "h\u00e9llo \u20ac \U0001F600")
        await A("echo/echo round trip (echo plugin's route)", t_round_trip, c,
                "echo", "echo", [1, "two", {"3": False}])
        await A("escaped names route: t\\u0065st/echo is test/echo",
                c.expect, reply("test", "echo", 1),
                '{"type":"t\\u0065st","action":"echo","data":1}')
        await A("whitespace around the JSON is accepted", c.expect,
                reply("test", "echo", 1),
                ' \r\n\t{"type":"test","action":"echo","data":1} \n')
        await A("other keys are ignored", c.expect, reply("test", "echo", 1),
                '{"extra":[1],"type":"test","action":"echo","data":1,"z":{}}')

        for rid_json, rid in (('"abc"', "abc"), ("42", 42), ("0", 0),
                              ('""', ""), ("-7", -7), ("1.5", 1.5),
                              ("9007199254740993", 9007199254740993),
                              ("-9223372036854775808", -9223372036854775808),
                              ("18446744073709551615", 18446744073709551615),
                              ('"\\u00e9\\n"', "\u00e9\n")):
            await A("requestId %s echoed unchanged" % rid_json, t_rid, c,
                    rid_json, rid)
        for rid_json in ('{"a":1}', "[1]", "true", "false", "null"):
            await A("requestId %s (not string/number) not echoed" % rid_json,
                    t_rid_ignored, c, rid_json)
        await A("no requestId, no requestId key", c.expect,
                reply("test", "echo", "x"),
                '{"type":"test","action":"echo","data":"x"}')

        # Errors, in the order of PROTOCOL.md's table.
        errors = [
            ("{", PARSE), ("", PARSE), ("not json", PARSE),
            ('{"type":"test","action":"echo","requestId":"r"', PARSE),
            ("null", NOT_OBJECT), ("[]", NOT_OBJECT),
            ('[{"type":"test","action":"echo"}]', NOT_OBJECT),
            ("42", NOT_OBJECT), ('"test/echo"', NOT_OBJECT),
            ("true", NOT_OBJECT), ("false", NOT_OBJECT),
            ("{}", NO_TYPE), ('{"action":"echo"}', NO_TYPE),
            ('{"type":"","action":"echo"}', NO_TYPE),
            ('{"type":5,"action":"echo"}', NO_TYPE),
            ('{"type":null,"action":"echo"}', NO_TYPE),
            ('{"type":["test"],"action":"echo"}', NO_TYPE),
            ('{"type":{},"action":"echo"}', NO_TYPE),
            ('{"type":"test"}', NO_ACTION),
            ('{"type":"test","action":""}', NO_ACTION),
            ('{"type":"test","action":7}', NO_ACTION),
            ('{"type":"test","action":null}', NO_ACTION),
            ('{"type":"test","action":true}', NO_ACTION),
            ('{"type":"nope","action":"x"}', "Unknown route: nope/x"),
            ('{"type":"test","action":"nope"}', "Unknown route: test/nope"),
            ('{"type":"echo","action":"test"}', "Unknown route: echo/test"),
            ('{"type":"a\\"b","action":"c\\u00e9"}',
             'Unknown route: a"b/c\u00e9'),
            ('{"type":"test","action":"fail","data":"x"}', "boom: x"),
            ('{"type":"test","action":"fail"}', "boom: no data"),
            ('{"type":"test","action":"failPlain"}', "Unknown error"),
        ]
        for raw, text in errors:
            await A("%r -> %s" % (raw, text), t_error, c, raw, text)
        with_rid = [
            ('{"requestId":"r1"}', NO_TYPE, "r1"),
            ('{"action":"echo","requestId":0}', NO_TYPE, 0),
            ('{"type":"","action":"echo","requestId":""}', NO_TYPE, ""),
            ('{"requestId":-3,"type":5,"action":"echo"}', NO_TYPE, -3),
            ('{"type":"test","requestId":"r2"}', NO_ACTION, "r2"),
            ('{"requestId":7,"type":"test","action":""}', NO_ACTION, 7),
            ('{"type":"test","action":[],"requestId":"r3"}', NO_ACTION, "r3"),
            ('{"type":"nope","action":"x","requestId":"r4"}',
             "Unknown route: nope/x", "r4"),
            ('{"requestId":9007199254740993,"type":"no","action":"pe"}',
             "Unknown route: no/pe", 9007199254740993),
            ('{"type":"test","action":"fail","data":"y","requestId":"r5"}',
             "boom: y", "r5"),
            ('{"type":"test","action":"failPlain","requestId":8}',
             "Unknown error", 8),
            ('{"type":"nope","action":"x","requestId":{"a":1}}',
             "Unknown route: nope/x", MISSING),
            ('{"type":"test","action":"failPlain","requestId":null}',
             "Unknown error", MISSING),
        ]
        for raw, text, rid in with_rid:
            await A("%r -> %s%s" % (raw, text, "" if rid is MISSING else
                                    " + requestId"), t_error, c, raw, text,
                    rid)
        await A("connection stays open after every error frame",
                t_still_open, c)

        await A("test/null -> \"response\":null", c.expect,
                reply("test", "null", None, "n"),
                '{"type":"test","action":"null","requestId":"n"}')
        await A("test/nothing -> no response key", c.expect,
                reply("test", "nothing", MISSING, "m"),
                '{"type":"test","action":"nothing","data":1,"requestId":"m"}')
        await A("test/echo without data -> no response key", c.expect,
                reply("test", "echo"), '{"type":"test","action":"echo"}')
        await A("test/echo with data null -> \"response\":null", c.expect,
                reply("test", "echo", None),
                '{"type":"test","action":"echo","data":null}')

        await A("deferred replies arrive out of order, matched by requestId",
                t_deferred_order, c)
        await A("deferred reply with null value -> \"response\":null",
                t_deferred_null, c)
        await A("deferred error (pxl_defer_fail) -> error frame with its "
                "text and the requestId", t_deferred_error, c)

        await A("binary frame goes to echo's raw handler, echoed as binary",
                t_binary_raw, c, b'{"type":"test","action":"echo"}')
        await A("binary non-UTF-8 bytes echoed verbatim", t_binary_raw, c,
                bytes(range(256)) * 3)
        await A("text still routed after binary", c.expect,
                reply("test", "echo", 2), req("2"))

        await A("JSON depth 64 accepted (outer object counts 1)", c.expect,
                reply("test", "echo", loads(nest(63))), req(nest(63)))
        await A("JSON depth 65 -> Failed to parse JSON", t_error, c,
                req(nest(64)), PARSE)
        await A("JSON depth 65 (all arrays) -> Failed to parse JSON", t_error,
                c, req("[" * 64 + "]" * 64), PARSE)
        strict = [
            ("{'type':'test','action':'echo'}", "single quotes"),
            ('{"type":\'test\',"action":"echo"}', "single-quoted value"),
            (req("NaN"), "NaN"), (req("Infinity"), "Infinity"),
            (req("-Infinity"), "-Infinity"),
            (req('"a\x01b"'), "raw control character U+0001 in a string"),
            (req('"a\nb"'), "raw newline in a string"),
            (req('"a\x1fb"'), "raw control character U+001F in a string"),
            (req("1") + " x", "trailing bytes"),
            (req("1") + req("1"), "a second object"),
            (req("1") + "}", "a trailing brace"),
            ("/* c */" + req("1"), "a leading block comment"),
            (req("1") + " // c", "a trailing line comment"),
            ('{"type":"test",/*c*/"action":"echo"}', "a comment inside"),
            (req("01"), "a leading zero"),
            (req("[1,]"), "a trailing comma in an array"),
            ('{"type":"test","action":"echo",}', "a trailing comma"),
            (req("1."), "a bare decimal point"),
            (req(".5"), "a number starting with a point"),
            (req("+1"), "a plus sign"),
            (req("0x10"), "a hex number"),
            (req('"\\x41"'), "a \\x escape"),
            (req('"\\u12"'), "a short \\u escape"),
            (req("True"), "True"), (req("undefined"), "undefined"),
            ('{type:"test","action":"echo"}', "an unquoted key"),
            (req('"unterminated'), "an unterminated string"),
        ]
        for raw, what in strict:
            await A("strict JSON: %s -> Failed to parse JSON" % what,
                    t_error, c, raw, PARSE)
        await A("invalid UTF-8 JSON in a binary frame with raw echo: echoed",
                t_binary_raw, c, b'{"type":"test","action":"echo","data":'
                b'"\xff"}')
        await A("connection still open after the strict JSON errors",
                t_still_open, c)
    finally:
        await c.close()

    await A("deferred reply to a client that closed: server survives, "
            "deferredDropped +1", t_deferred_left, srv, False)
    await A("deferred reply to a client that dropped TCP: server survives, "
            "deferredDropped +1", t_deferred_left, srv, True)
    await A("deferred error to a client that closed: server survives, "
            "deferredDropped +1", t_deferred_left, srv, False, True)


async def run_testkit_only(srv):
    A = tap.acase
    c = await connect(srv.url())
    try:
        await A("no raw handler: binary JSON frame routed, text reply",
                t_binary_routed, c,
                b'{"type":"test","action":"echo","data":"b","requestId":"r"}',
                reply("test", "echo", "b", "r"))
        await A("no raw handler: binary with UTF-8 data routed", 
                t_binary_routed, c,
                '{"type":"test","action":"echo","data":"\u00e9"}'.encode(),
                reply("test", "echo", "\u00e9"))
        await A("no raw handler: invalid UTF-8 binary -> Failed to parse JSON",
                t_binary_routed, c,
                b'{"type":"test","action":"echo","data":"\xff"}',
                error_frame(PARSE))
        await A("no raw handler: overlong UTF-8 binary -> Failed to parse "
                "JSON", t_binary_routed, c,
                b'{"type":"test","action":"echo","data":"\xc0\xaf"}',
                error_frame(PARSE))
        await A("no raw handler: binary non-JSON -> Failed to parse JSON",
                t_binary_routed, c, b"\x00\x01\x02", error_frame(PARSE))
        await A("no raw handler: binary non-object -> Invalid WebSocket "
                "message", t_binary_routed, c, b"[1,2]",
                error_frame(NOT_OBJECT))
        await A("no raw handler: binary missing type + requestId",
                t_binary_routed, c, b'{"action":"x","requestId":5}',
                error_frame(NO_TYPE, 5, True))
        await A("echo/echo is unknown without the echo plugin", t_error, c,
                '{"type":"echo","action":"echo","requestId":"e"}',
                "Unknown route: echo/echo", "e")
        await A("limits.max_json_depth = 4: depth 4 accepted", c.expect,
                reply("test", "echo", loads(nest(3))), req(nest(3)))
        await A("limits.max_json_depth = 4: depth 5 -> Failed to parse JSON",
                t_error, c, req(nest(4)), PARSE)
        await A("connection still open", t_still_open, c)
    finally:
        await c.close()


tap.run(main)
