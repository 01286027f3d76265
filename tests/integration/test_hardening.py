#!/usr/bin/python3
"""
Hardening: what a hostile client could do to the server before, each case
written to fail on the code it guards against.

- Pongs are bounded: a client that pings without reading is not read
  from once its output backs up (server memory stays flat).
- The upgrade has a deadline from accept, and upgrading connections are
  capped (limits.max_handshakes: the oldest make room).
- Out of descriptors, the listener pauses instead of spinning, the log
  says so sparingly, and service comes back.
- A close loses nothing queued (lingering close): replies, then the close
  frame with its code, then EOF, never a reset.
- One reply bigger than limits.max_output_bytes passes to a client that
  reads; -t warns about the setting.
- The close wait is a deadline, however the peer trickles.
- joinRoom fields and client metadata are capped.
- Per-address connection limit, per-client message rate (4008),
  connected_frame = false, JWT crit headers, bench/publish's local count.
"""
import os
import re
import select
import signal
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, RawWS, Server, app_config, check, dumps,  # noqa
                     eq, jwt_hs, loads, run_serve, stop_servers,
                     upgrade_request, wait_until)
from pxlredis import RedisServer  # noqa: E402

tap = TAP()
tap.deadline(300)

SECRET = "hardening-secret"


# ---- a raw client speaking JSON ----------------------------------------------

class WS(RawWS):
    """RawWS plus JSON requests (masked text frames)."""

    def __init__(self, port, handshake=True, **kw):
        super().__init__(port, **kw)
        if handshake:
            self.handshake()

    def send_json(self, obj):
        self.send_frame(1, dumps(obj))

    def recv_json(self):
        fin, rsv, op, data = self.recv_frame()
        check(op == 1, "expected a text frame, got opcode %d %r"
              % (op, data[:100]))
        return loads(data)

    def request(self, type_, action, data=None, rid=None):
        msg = {"type": type_, "action": action}
        if data is not None:
            msg["data"] = data
        if rid is not None:
            msg["requestId"] = rid
        self.send_json(msg)
        return self.recv_json()


def metrics(port):
    with WS(port) as c:
        r = c.request("test", "metrics")
        check("response" in r, "test/metrics reply %r" % (r,))
        return r["response"]


def pid_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_until_eof(c, timeout=10):
    """Every frame until the server closes TCP: (frames, how it ended).
    'eof' for an orderly close, 'reset' for ECONNRESET."""
    frames = []
    c.sock.settimeout(timeout)
    while True:
        try:
            frames.append(c.recv_frame())
        except EOFError:
            return frames, "eof"
        except ConnectionResetError:
            return frames, "reset"


def eof_within(sock, seconds):
    """Seconds until the server ends the connection (EOF or reset), or
    None if it is still open after `seconds`."""
    t0 = time.monotonic()
    sock.settimeout(0.05)
    while time.monotonic() - t0 < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
    return None


# ---- 1. pongs ----------------------------------------------------------------

def t_pong_flood(srv):
    """200 MiB of pings used to cost the server 240 MB: now, once the
    pongs back up to half of max_output_bytes, the server stops reading,
    and the client's sends stall in TCP."""
    with WS(srv.port, rcvbuf=8192) as c:
        before = pid_rss_kb(srv.proc.pid)
        ping = RawWS.frame(9, b"p" * 125)
        burst = ping * 512  # 67 KB
        c.sock.setblocking(False)
        sent, stalled_since, t0 = 0, None, time.monotonic()
        out = memoryview(burst)
        while sent < 256 * 2 ** 20 and time.monotonic() - t0 < 8:
            try:
                n = c.sock.send(out)
                sent += n
                out = out[n:] if n < len(out) else memoryview(burst)
                stalled_since = None
            except BlockingIOError:
                if stalled_since is None:
                    stalled_since = time.monotonic()
                elif time.monotonic() - stalled_since > 1.0:
                    break  # the server no longer reads: that is the point
                time.sleep(0.01)
        grown = pid_rss_kb(srv.proc.pid) - before
        check(sent < 64 * 2 ** 20,
              "the server kept reading pings nobody read the pongs of: "
              "%d MiB sent" % (sent >> 20))
        check(grown < 24 * 1024, "server RSS grew by %d MiB for %d MiB of "
              "unread pongs" % (grown >> 10, sent >> 20))
        # The client reads again: pongs come, reading resumes, and a
        # request sent after the flood is answered after its pongs.
        # The rest of a partly sent ping first, then the request.
        pending = bytes(out) if len(out) < len(burst) else b""
        pings = (sent + len(pending)) // len(ping)
        pending += RawWS.frame(1, dumps({"type": "test", "action": "echo",
                                         "data": "after", "requestId": 1}))
        pongs, t0 = 0, time.monotonic()
        while True:
            if pending:
                try:
                    pending = pending[c.sock.send(pending):]
                except BlockingIOError:
                    pass
            while len(c.buf) < 2 or len(c.buf) < 2 + (c.buf[1] & 0x7f):
                r, _, _ = select.select([c.sock], [], [], 0.05)
                if r:
                    chunk = c.sock.recv(65536)
                    check(chunk, "EOF while reading the pongs")
                    c.buf += chunk
                check(time.monotonic() - t0 < 120, "no reply after the "
                      "flood within 120 s (%d pongs)" % pongs)
                if pending:
                    break
            if len(c.buf) < 2 or len(c.buf) < 2 + (c.buf[1] & 0x7f):
                continue
            fin, rsv, op, data = c.recv_frame()
            if op == 10:
                eq(data, b"p" * 125, "pong payload")
                pongs += 1
                continue
            eq(loads(data), {"type": "test", "action": "echo",
                             "response": "after", "requestId": 1},
               "the reply after the flood")
            break
        eq(pongs, pings, "pongs for the pings")
        tap.diag("%d MiB of pings sent before the server stopped reading; "
                 "RSS +%d KiB; %d pongs" % (sent >> 20, grown, pongs))


# ---- 2. the upgrade deadline and the cap ----------------------------------------

def t_handshake_deadline(srv):
    """handshake_timeout = 2: a request trickling one byte every 0.4 s is
    closed 2 s after accept, not kept alive by its bytes."""
    before = metrics(srv.port)["handshakeTimeouts"]
    req = upgrade_request(key="dGhlIHNhbXBsZSBub25jZQ==")
    s = socket.create_connection(("127.0.0.1", srv.port))
    t0 = time.monotonic()
    try:
        s.settimeout(0.4)
        for b in req:
            try:
                s.send(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                if s.recv(1024) == b"":
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                break
            if time.monotonic() - t0 > 8:
                break
        took = time.monotonic() - t0
    finally:
        s.close()
    check(1.8 <= took <= 3.5, "closed %.2f s after connect; expected "
          "about handshake_timeout = 2 s" % took)
    eq(metrics(srv.port)["handshakeTimeouts"] - before, 1,
       "handshakeTimeouts delta")


def t_handshake_cap(srv):
    """max_handshakes = 8: 12 silent sockets; the 4 oldest are dropped at
    once, the 8 newest wait, and the counters say so."""
    before = metrics(srv.port)
    with WS(srv.port) as probe:
        socks = []
        try:
            for _ in range(12):
                socks.append(socket.create_connection(("127.0.0.1",
                                                       srv.port)))
                time.sleep(0.02)  # accepted in this order
            dropped = [eof_within(s, 1.0) is not None for s in socks[:4]]
            eq(dropped, [True] * 4, "the 4 oldest upgrading sockets closed")
            kept = [eof_within(s, 0.1) is None for s in socks[4:]]
            eq(kept, [True] * 8, "the 8 newest still open")
            m = probe.request("test", "metrics")["response"]
            eq(m["handshaking"], 8, "handshaking gauge")
            eq(m["handshakesDropped"] - before["handshakesDropped"], 4,
               "handshakesDropped delta")
        finally:
            for s in socks:
                s.close()


# ---- 3. out of descriptors ----------------------------------------------------------

def t_emfile():
    """RLIMIT_NOFILE 64: with every descriptor taken by clients, new
    clients are shed at once and the worker idles; the log line comes
    rarely; once clients leave, service is back."""
    srv = Server(app_config(("testkit",), limits={
        "handshake_timeout": 120, "max_connections_per_ip": 0,
        "max_connections": 1000}), "emfile", nofile=64)
    srv.start()
    t0 = time.monotonic()
    clients = []
    try:
        for _ in range(80):
            try:
                c = RawWS(srv.port, timeout=5)
            except OSError:
                break
            clients.append(c)
        # Upgrade the ones that were accepted; the others wait in the
        # backlog (or get shed).
        served = 0
        for c in clients:
            c.sock.settimeout(1.0)
            try:
                c.handshake()
                served += 1
            except (AssertionError, EOFError, OSError):
                pass
        check(20 < served < 64, "%d clients served under 64 files" % served)
        cpu0 = cpu_seconds(srv.proc.pid)
        extra = socket.create_connection(("127.0.0.1", srv.port))
        shed = eof_within(extra, 4.0)
        extra.close()
        time.sleep(2.0)
        cpu = cpu_seconds(srv.proc.pid) - cpu0
        check(shed is not None, "a client arriving while out of files "
              "waited instead of being closed")
        check(cpu < 0.8, "the worker used %.2f s of CPU in ~%.1f s while "
              "out of files" % (cpu, 2.0 + shed))
        lines = [ln for ln in srv.log().splitlines()
                 if "accept failed" in ln]
        # One line, then at most one per 10 s.
        most = 1 + int((time.monotonic() - t0) / 10)
        check(1 <= len(lines) <= most, "%d 'accept failed' log lines in "
              "%.1f s:\n%s" % (len(lines), time.monotonic() - t0,
                               "\n".join(lines[:5])))
        check("Too many open files" in lines[0], lines[0])
    finally:
        for c in clients:
            c.close()

    def served_again():
        try:
            with WS(srv.port, timeout=2) as c:
                r = c.request("test", "metrics")
                return r["response"]
        except (AssertionError, EOFError, OSError):
            return None
    m = wait_until(served_again, 10, "a new client served after the "
                   "others left")
    check(m["acceptErrors"] >= 1, "acceptErrors %r" % m["acceptErrors"])
    srv.stop()


# ---- 4. lingering close ------------------------------------------------------------

def t_linger(srv):
    """50 pipelined requests, then a frame over max_frame_size (4096),
    50 times in a row: all 50 replies, the 1009 close, then EOF."""
    before = metrics(srv.port)["errorsTooBig"]
    for run in range(50):
        with WS(srv.port) as c:
            out = b"".join(RawWS.frame(1, dumps(
                {"type": "test", "action": "echo", "data": i,
                 "requestId": i})) for i in range(50))
            out += RawWS.frame(1, b"x" * 65536)
            c.send(out)
            frames, end = read_until_eof(c)
            replies = [loads(f[3]) for f in frames if f[2] == 1]
            eq(replies, [{"type": "test", "action": "echo", "response": i,
                          "requestId": i} for i in range(50)],
               "run %d: the replies before the error" % run)
            closes = [f for f in frames if f[2] == 8]
            eq(len(closes), 1, "run %d: one close frame (got %r)"
               % (run, [f[2] for f in frames][-3:]))
            eq(struct.unpack("!H", closes[0][3][:2])[0], 1009,
               "run %d: close code" % run)
            eq(end, "eof", "run %d: how the connection ended" % run)
    eq(metrics(srv.port)["errorsTooBig"] - before, 50, "errorsTooBig delta")


# ---- 5. one big reply ----------------------------------------------------------------

def t_big_reply(srv):
    """max_output_bytes 1 MiB, messages up to 16 MiB: a client that reads
    gets its 4 MiB echoes, three in a row, and is not closed."""
    with WS(srv.port) as c:
        for i in range(3):
            data = "%d" % i + "z" * (4 * 2 ** 20)
            r = c.request("bench", "echo", data, rid=i)
            eq(r.get("response") == data and r.get("requestId") == i, True,
               "echo %d came back whole (keys %r)" % (i, sorted(r)))


def t_big_reply_warning(srv):
    rc, out, err = run_serve(["-t", srv.cfg])
    eq(rc, 0, "pxl-serve -t exit status (stderr %r)" % err)
    check(re.search(r"big\.cfg:\d+: limits\.max_output_bytes: warning: "
                    r"1048576 is below limits\.max_message_size "
                    r"\(16777216\)", err), "no warning in %r" % err)
    check("level=warn" in srv.log() and "is below limits.max_message_size"
          in srv.log(), "the start did not log the warning")


# ---- 6. the close deadline ------------------------------------------------------------

def t_close_deadline(srv):
    """After our close frame, a peer that keeps sending a ping every
    0.5 s and never answers the close is dropped within the 5 s close
    deadline; it used to be an idle timeout that each frame reset."""
    with WS(srv.port) as c:
        c.send_json({"type": "test", "action": "close",
                     "data": {"code": 4000, "reason": "bye"}})
        eq(c.expect_close(4000), "bye", "close reason")
        t0 = time.monotonic()
        end = None
        while time.monotonic() - t0 < 12:
            try:
                c.send_frame(9, b"still here")
            except (BrokenPipeError, ConnectionResetError):
                end = time.monotonic() - t0
                break
            w = eof_within(c.sock, 0.5)
            if w is not None:
                end = time.monotonic() - t0
                break
        check(end is not None and end < 6.5,
              "still connected %.1f s after the close frame"
              % (time.monotonic() - t0))


# ---- 7. caps on what a client makes the server keep ---------------------------------

def t_join_fields(srv):
    ok = {"roomName": "caps", "userId": "u" * 256, "userType": "t" * 256,
          "username": "n" * 256}
    with WS(srv.port) as c:
        r = c.request("system", "joinRoom", ok)["response"]
        cid = c.connected["data"]["clientId"]
        eq(r["success"], True, "fields of 256 bytes: %r" % (r,))
        eq(r["data"]["userId"], "u" * 256, "userId kept")
        for field, text in (("userId", "userId is too long"),
                            ("userType", "userType is too long"),
                            ("username", "username is too long")):
            d = dict(ok, roomName="caps2")
            d[field] = d[field] + "x"
            eq(c.request("system", "joinRoom", d)["response"],
               {"success": False, "error": text, "clientId": cid}, field)
        # A number's text counts, and unused types are ignored.
        d = {"roomName": "caps3", "userId": int("9" * 18),
             "userType": {"big": "o" * 1000}}
        r = c.request("system", "joinRoom", d)["response"]
        eq((r["success"], r["data"]["userType"]), (True, "user"),
           "a number userId and an object userType")
        # Not a member of caps2.
        rooms = c.request("system", "listRooms")["response"]["rooms"]
        eq(rooms, ["caps", "caps3"], "rooms after the refusals")


def t_metadata_caps(srv):
    before = metrics(srv.port)["metadataRefused"]
    with WS(srv.port) as c:
        def set_meta(key, value):
            return c.request("test", "setMeta", {"key": key, "value": value})
        # max_metadata_entry_size = 1024: key + JSON text of the value
        r = set_meta("k", "v" * (1024 - 1 - 2))
        check("error" not in r.get("data", {}), "an entry of 1024: %r"
              % (r,))
        r = set_meta("k", "v" * (1024 - 1 - 2 + 1))
        eq(r["data"]["error"], "cannot set metadata: declined",
           "an entry of 1025")
        # max_metadata_size = 3000: k (1024) + a, b of 900 fit; c not
        for key in "ab":
            r = set_meta(key, "w" * (900 - 3))
            check("error" not in r.get("data", {}), "%s: %r" % (key, r))
        r = set_meta("c", "w" * (900 - 3))
        eq(r["data"]["error"], "cannot set metadata: declined",
           "past max_metadata_size")
        # Deleting frees its size; so does replacing with a smaller value.
        set_meta("k", None)
        r = set_meta("c", "w" * (900 - 3))
        check("error" not in r.get("data", {}), "after freeing k: %r" % (r,))
        set_meta("a", "short")
        r = set_meta("e", "w" * 800)
        check("error" not in r.get("data", {}), "after shrinking a: %r"
              % (r,))
    eq(metrics(srv.port)["metadataRefused"] - before, 2, "metadataRefused")


# ---- 8. limits: per address, rate -------------------------------------------------------

def t_per_ip(srv):
    before = metrics(srv.port)
    held = []

    def one_more():
        """A connection, once the earlier ones' closes are done."""
        try:
            return WS(srv.port, timeout=2)
        except AssertionError:
            return None
    try:
        for _ in range(3):
            held.append(wait_until(one_more, 10, "a connection"))
        r, c = None, RawWS(srv.port)
        try:
            c.send(upgrade_request(key="dGhlIHNhbXBsZSBub25jZQ=="))
            r = c.read_response()
        finally:
            c.close()
        eq((r.status, r.body), (503, b"Too many connections from this "
                                     b"address\n"), "the 4th from 127.0.0.1")
        with WS(srv.port, source="127.0.0.2") as other:
            eq(other.request("test", "echo", "hi")["response"], "hi",
               "another address is served")
        held.pop().close()

        c = wait_until(one_more, 10, "a place freed by a close")
        with c:
            m = c.request("test", "metrics")["response"]
        eq(m["refusedPerIp"] - before["refusedPerIp"], 1, "refusedPerIp")
        eq(m["refusedUpgrades"] - before["refusedUpgrades"], 1,
           "refusedUpgrades counts it too")
    finally:
        for c in held:
            c.close()


def t_rate(srv):
    """rate = 20, burst = 5: five at once pass, the next four get the
    error frame, the fifth refused in a row closes with 4008."""
    before = metrics(srv.port)
    with WS(srv.port) as c:
        c.send(b"".join(RawWS.frame(1, dumps(
            {"type": "test", "action": "echo", "data": i,
             "requestId": i})) for i in range(10)))
        for i in range(5):
            eq(c.recv_json(), {"type": "test", "action": "echo",
                               "response": i, "requestId": i}, "reply %d" % i)
        for i in range(4):
            eq(c.recv_json(), {"type": "error", "action": "message",
                               "data": {"error": "Rate limit exceeded"}},
               "refused %d" % i)
        eq(c.expect_close(4008), "rate limited", "close reason")
    with WS(srv.port) as c:
        # The allowance comes back with time: 5, then 5 more 0.4 s later.
        for burst in range(2):
            c.send(b"".join(RawWS.frame(1, dumps(
                {"type": "test", "action": "echo", "data": i})) for i in
                range(5)))
            eq([c.recv_json().get("response") for _ in range(5)],
               list(range(5)), "burst %d passes" % burst)
            time.sleep(0.4)
    m = metrics(srv.port)
    eq(m["rateLimited"] - before["rateLimited"], 5, "rateLimited")
    eq(m["closedRateLimited"] - before["closedRateLimited"], 1,
       "closedRateLimited")


def t_rate_steady(srv):
    """A client that stays over the rate (3 x 20/s) is closed with 4008,
    instead of getting every third message through forever."""
    with WS(srv.port) as c:
        c.sock.settimeout(0.001)
        t0, replies, errors, code = time.monotonic(), 0, 0, None
        while time.monotonic() - t0 < 5 and code is None:
            try:
                c.send_frame(1, dumps({"type": "test", "action": "echo",
                                       "data": 0}))
            except (BrokenPipeError, ConnectionResetError):
                break
            end = time.monotonic() + 1 / 60
            while time.monotonic() < end and code is None:
                try:
                    fin, rsv, op, data = c.recv_frame()
                except (AssertionError, socket.timeout):
                    continue
                except EOFError:
                    break
                if op == 8:
                    code = struct.unpack("!H", data[:2])[0]
                elif "error" in loads(data).get("data", {}):
                    errors += 1
                else:
                    replies += 1
        eq(code, 4008, "close code after %.1f s (%d replies, %d errors)"
           % (time.monotonic() - t0, replies, errors))
        check(replies <= 10, "%d replies at 3 x the rate" % replies)


# ---- 9. connected_frame, crit ----------------------------------------------------------

def t_greetless(srv):
    """connected_frame = false: not a frame before the reply, anonymous
    or authenticated."""
    token = jwt_hs({"sub": "7"}, SECRET)
    for extra in ((), ("Authorization: Bearer %s" % token,)):
        with WS(srv.port, handshake=False) as c:
            c.handshake(extra=extra)
            c.first_frame = False  # skip nothing
            c.send_json({"type": "test", "action": "echo", "data": 1})
            eq(c.recv_json(), {"type": "test", "action": "echo",
                               "response": 1},
               "first frame with %s" % ("a token" if extra else "no token"))


def t_crit(srv):
    token = jwt_hs({"sub": "7"}, SECRET,
                   header={"alg": "HS256", "typ": "JWT", "crit": ["exp"]})
    with RawWS(srv.port) as c:
        c.send(upgrade_request(key="dGhlIHNhbXBsZSBub25jZQ==", extra=(
            "Authorization: Bearer %s" % token,)))
        r = c.read_response()
    eq((r.status, r.body), (401, b"unsupported critical header\n"),
       "a token with crit")


# ---- 10. bench/publish counts local deliveries -------------------------------------------

def t_publish_local(redis):
    cfg = app_config(("system", "bench"), extra=redis.config())
    a, b = Server(cfg, "pub_a"), Server(cfg, "pub_b")
    a.start()
    b.start()
    try:
        with WS(a.port) as ca, WS(b.port) as cb:
            for c in (ca, cb):
                eq(c.request("system", "joinRoom",
                             {"roomName": "r"})["response"]["success"],
                   True, "join")

            def both_members():
                r = ca.request("system", "roomMembers", {"roomName": "r"})
                return len(r["response"]["members"]) == 2
            wait_until(both_members, 10, "b's membership seen by a")
            ca.send_json({"type": "bench", "action": "publish",
                          "data": {"roomName": "r", "payload": 1}})
            eq(ca.recv_json()["action"], "message", "a's own copy")
            eq(ca.recv_json(), {"type": "bench", "action": "publish",
                                "response": {"delivered": 1}},
               "delivered counts a's worker only")
            eq(cb.recv_json(), {"type": "bench", "action": "message",
                                "data": {"roomName": "r", "payload": 1}},
               "b got it through Redis")
    finally:
        a.stop()
        b.stop()


def t_second_signal():
    """A second SIGTERM stops at once, with clients still open: their
    disconnect hooks (testkit's sends to the leaving client) must find
    them unable to send, not a freed socket."""
    srv = Server(app_config(("testkit",), shutdown_timeout=30), "twice")
    srv.start()
    clients = [WS(srv.port) for _ in range(3)]
    try:
        for c in clients:
            eq(c.request("test", "echo", 1)["response"], 1, "echo")
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # the 1001 closes are out; nobody answers them
        srv.proc.send_signal(signal.SIGTERM)
        srv.signalled = True
        srv.stop()
    finally:
        for c in clients:
            c.close()


def main():
    limits = Server(app_config(
        ("system", "testkit", "bench"),
        limits={"max_output_bytes": 65536, "max_message_size": 4096,
                "max_frame_size": 4096, "handshake_timeout": 2,
                "max_handshakes": 8, "max_connections_per_ip": 0,
                "rate": 0, "max_metadata_entry_size": 1024,
                "max_metadata_size": 3000}), "limits")
    big = Server(app_config(
        ("bench",), limits={"max_output_bytes": 2 ** 20,
                            "max_message_size": 16 * 2 ** 20,
                            "max_frame_size": 16 * 2 ** 20}), "big")
    perip = Server(app_config(("testkit",), limits={
        "max_connections_per_ip": 3}), "perip")
    rate = Server(app_config(("testkit",), limits={"rate": 20,
                                                   "burst": 5}), "rate")
    greetless = Server(app_config(
        ("testkit",), extra='connected_frame = false;\n'
                            'auth = { jwt = { secret = "%s"; }; };'
                            % SECRET), "greetless")
    servers = [limits, big, perip, rate, greetless]
    for s in servers:
        s.start()
    tap.case("pongs: a client that pings and never reads is not read "
             "from; server memory stays flat", t_pong_flood, limits)
    tap.case("handshake_timeout is a deadline from accept, not an idle "
             "timeout", t_handshake_deadline, limits)
    tap.case("max_handshakes: the oldest upgrading sockets make room",
             t_handshake_cap, limits)
    tap.case("lingering close: 50 x (50 pipelined replies, 1009, EOF)",
             t_linger, limits)
    tap.case("the close wait is a deadline", t_close_deadline, limits)
    tap.case("joinRoom: userId, userType, username capped at 256 bytes",
             t_join_fields, limits)
    tap.case("metadata: per key and per client caps", t_metadata_caps,
             limits)
    tap.case("one reply bigger than max_output_bytes goes to a reader",
             t_big_reply, big)
    tap.case("-t warns when max_output_bytes < max_message_size",
             t_big_reply_warning, big)
    tap.case("max_connections_per_ip: 503 beyond it, another address "
             "served, a place frees on close", t_per_ip, perip)
    tap.case("limits.rate and burst: error frames, then 4008; allowance "
             "refills", t_rate, rate)
    tap.case("limits.rate: a client that stays over it is closed",
             t_rate_steady, rate)
    tap.case("connected_frame = false: no greeting frames", t_greetless,
             greetless)
    tap.case("a JWT with a crit header gets 401", t_crit, greetless)
    tap.case("out of descriptors: clients shed, no spin, rare log lines, "
             "service back", t_emfile)
    tap.case("a second SIGTERM with clients open: clean exit, clean log",
             t_second_signal)
    redis = RedisServer()
    redis.start()
    try:
        tap.case("bench/publish: delivered counts this worker's members",
                 t_publish_local, redis)
    finally:
        redis.stop()
    stop_servers(tap, servers, only=None,
                 name="%s server exits 0 with a clean log")


tap.run(main)
