"""
test_debug_log - what log.level = "debug" tells an operator (issue 13):
a line per connect (client id, peer address) and per disconnect (peer,
close code, and who closed: the client, the server, or nobody when the
connection was lost); with log.messages = true, a line per message with
its type/action, size and requestId, and never its data. Without the
switch no message lines; at level info neither kind, and -t warns that
log.messages needs debug. In json format the lines are JSON objects with
the client id as a field.
"""
import asyncio
import json
import os
import re
import sys

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, Server, app_config, check, check_text,  # noqa: E402
                     eq, wait_until)
from pxlws import connect_id, poll  # noqa: E402

tap = TAP()
tap.deadline(60)

SECRET = "tok-3f9a1c-secret"


def config(log_level="debug", messages=None, log_format="logfmt"):
    text = app_config(plugins=("echo", "testkit"), log_level=log_level,
                      log_format=log_format,
                      limits={"max_message_size": 1000,
                              "max_frame_size": 1000})
    if messages is not None:  # into app_config's log = { ... }
        text = text.replace(
            'format = "%s"; };' % log_format,
            'format = "%s"; messages = %s; };'
            % (log_format, "true" if messages else "false"))
    return text


def lines_of(srv, cid):
    return [line for line in srv.log().splitlines() if cid in line]


async def session(srv):
    """Three clients: one sends messages and closes (1000, by the
    client), one sends too much (1009, by the server), one vanishes
    (1006, nobody). Returns their ids and the first one's message sizes."""
    url = srv.url()
    a, ida = await connect_id(url)
    routed = json.dumps({"type": "test", "action": "echo",
                         "data": {"token": SECRET}, "requestId": "r-77"})
    await a.ws.send(routed)
    await a.recv()
    bad = '{"type": "test", "action": "echo", ' + SECRET
    await a.ws.send(bad)
    await a.recv()
    unknown = json.dumps({"type": "nope", "action": "x", "requestId": 5,
                          "data": SECRET})
    await a.ws.send(unknown)
    await a.recv()
    await a.ws.close()
    b, idb = await connect_id(url)
    await b.ws.send("x" * 1001)
    code, _ = await b.wait_closed()
    eq(code, 1009, "close code of a message over max_message_size")
    c, idc = await connect_id(url)
    c.ws.transport.abort()
    return ida, idb, idc, (len(routed), len(bad), len(unknown))


async def disconnect_line(srv, cid, code, who):
    """Waits (serving the event loop: an aborted client's socket closes
    in it) for the line saying how cid went."""
    pat = re.compile(r'client=%s msg="disconnected from 127\.0\.0\.1: %d, '
                     r'%s"' % (cid, code, re.escape(who)))

    async def seen():
        return any(pat.search(x) for x in srv.log().splitlines())
    await poll(seen, timeout=5, what="the disconnect line of %s (%d, %s)"
               % (cid, code, who))


async def t_debug_with_messages():
    srv = Server(config(messages=True)).start()
    try:
        ida, idb, idc, sizes = await session(srv)
        for cid in (ida, idb, idc):
            check(any(re.search(r'client=%s msg="connected from '
                                r'127\.0\.0\.1"' % cid, x)
                      for x in srv.log().splitlines()),
                  "no connect line for %s:\n%s" % (cid, srv.log()))
        await disconnect_line(srv, ida, 1000, "closed by the client")
        await disconnect_line(srv, idb, 1009, "closed by the server")
        await disconnect_line(srv, idc, 1006,
                              "connection lost, no close handshake")
        got = [x.split('msg=', 1)[1] for x in lines_of(srv, ida)
               if 'msg="message ' in x]
        eq(got, ['"message test/echo, %d bytes, requestId \\"r-77\\""'
                 % sizes[0],
                 '"message (Failed to parse JSON), %d bytes"' % sizes[1],
                 '"message nope/x, %d bytes, requestId 5"' % sizes[2]],
           "message lines of the first client")
        check(SECRET not in srv.log(),
              "a message's data reached the log:\n" + srv.log())
    finally:
        srv.stop()


async def t_debug_without_messages():
    srv = Server(config()).start()
    try:
        ida, _, _, _ = await session(srv)
        await disconnect_line(srv, ida, 1000, "closed by the client")
        check(not any('msg="message ' in x for x in srv.log().splitlines()),
              "message lines without log.messages:\n" + srv.log())
    finally:
        srv.stop()


async def t_info_level():
    srv = Server(config(log_level="info", messages=True)).start()
    try:
        await session(srv)
        await asyncio.sleep(0.2)
        check(not any("level=debug" in x for x in srv.log().splitlines()),
              "debug lines at level info:\n" + srv.log())
    finally:
        srv.stop()


def t_check_warns():
    rc, out, err, path = check_text('name = "x";\nlog = {\n  level = '
                                    '"info";\n  messages = true;\n};\n')
    eq((rc, err), (0, "%s:4: log.messages: warning: messages are logged at "
                      "level debug only, and log.level is not debug\n"
                   % path), "-t's exit code and stderr")


async def t_json():
    srv = Server(config(messages=True, log_format="json")).start()
    try:
        url = srv.url()
        a, cid = await connect_id(url)
        sent = json.dumps({"type": "test", "action": "echo",
                           "requestId": 1})
        await a.ws.send(sent)
        await a.recv()
        await a.ws.close()

        def records():
            out = []
            for x in srv.log().splitlines():
                try:
                    r = json.loads(x)
                except ValueError:
                    continue
                if r.get("client") == cid:
                    out.append((r["level"], r["msg"]))
            return out
        wait_until(lambda: len(records()) >= 3, timeout=5,
                   what="three JSON lines of the client")
        eq(records()[:3],
           [("debug", "connected from 127.0.0.1"),
            ("debug", "message test/echo, %d bytes, requestId 1"
             % len(sent)),
            ("debug", "disconnected from 127.0.0.1: 1000, closed by the "
                      "client")], "the client's JSON lines")
    finally:
        srv.stop()


def main():
    C = tap.case
    C("debug + log.messages: connect and disconnect lines (1000 by the "
      "client, 1009 by the server, 1006 lost), a line per message with "
      "type/action, size and requestId, no data", lambda: asyncio.run(
          t_debug_with_messages()))
    C("debug without log.messages: connect/disconnect lines, no message "
      "lines", lambda: asyncio.run(t_debug_without_messages()))
    C("info with log.messages: no debug lines", lambda: asyncio.run(
        t_info_level()))
    C("-t warns that log.messages needs log.level = debug", t_check_warns)
    C("json format: the lines are JSON with the client id as a field",
      lambda: asyncio.run(t_json()))


tap.run(main)
