"""
test_wsc - the outbound client (pxl_wsc) and pxl-bench against a real
pxl-serve with the system and bench plugins (benchqueue for the queue,
on its SQLite back end): every pxl-bench scenario briefly, checking its
RESULT line; the reconnect schedule (1000, 2000 ms)
with a server that starts late and restarts, and that an explicit close
stops it; handshake refusals, heartbeat pings, and wss:// with and without
certificate checks. The client is driven through tests/unit/wsc_reconnect,
which prints one line per callback and obeys commands on stdin.
"""
import base64
import json
import os
import queue
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, RawWS, Server, accept_key,  # noqa: E402
                     app_config, check, env, mask_bytes)

tap = TAP()
tap.deadline(170)

BUILD = env("PXL_BUILDDIR")
BENCH = os.path.join(BUILD, "framework", "pxl-bench")
DRIVER = os.path.join(BUILD, "tests", "unit", "wsc_reconnect")
PLUGINS = ("system", "bench")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# pxl-bench is a load generator: many connections from one address and
# thousands of messages per second per connection, far beyond the
# per-client defaults that protect a real app (limits.rate,
# limits.max_connections_per_ip).
LOAD = {"rate": 0, "max_connections_per_ip": 0}


def fixed_port_config(port, extra=""):
    return app_config(plugins=PLUGINS, extra=extra).replace(
        "port = 0;", "port = %d;" % port)


# ---- pxl-bench ----------------------------------------------------------------

def bench(srv, *args, timeout=60, expect_rc=0):
    """Run pxl-bench against srv; returns the RESULT object."""
    cmd = [BENCH, "-p", str(srv.port), "--pid", str(srv.proc.pid)]
    cmd += [str(a) for a in args]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    check(p.returncode == expect_rc, "pxl-bench %s exited %d (expected %d)"
          "\nstdout:\n%s\nstderr:\n%s" % (" ".join(cmd[1:]), p.returncode,
                                          expect_rc, out, err))
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    check(len(lines) == 1, "expected one RESULT line, got:\n" + out)
    res = json.loads(lines[0][len("RESULT "):])
    check("--json" not in args or len(out.splitlines()) == 1,
          "--json printed more than the RESULT line:\n" + out)
    tap.diag(lines[0])
    return res


def common(res, scenario):
    check(res["scenario"] == scenario, "scenario %r" % res.get("scenario"))
    check(res["errors"] == 0 and res["failed"] == 0 and res["dropped"] == 0,
          "errors, failed or dropped: %r" % res)
    check(res["seconds"] > 0, "seconds %r" % res["seconds"])
    check(res["server_cpu_s"] is not None and res["server_cpu_s"] >= 0,
          "server_cpu_s %r" % res["server_cpu_s"])


def latencies(res):
    check(0 < res["p50_us"] <= res["p99_us"] <= res["p999_us"]
          <= res["max_us"] * 1.02 + 1,
          "percentiles out of order: %r" % res)


def t_echo(srv):
    res = bench(srv, "-c", 4, "-k", 4, "-t", 2, "--json", "echo")
    common(res, "echo")
    check(res["msgs_per_sec"] > 0 and res["messages"] > 0, "no echo replies")
    check(res["connections"] == 4 and res["in_flight"] == 4, "shape")
    check(res["server_cpu_per_1m"] is not None
          and res["server_cpu_per_1m"] >= 0, "server_cpu_per_1m")
    latencies(res)


def t_echo_payload(srv):
    res = bench(srv, "-c", 2, "-k", 2, "-t", 1, "-z", 3000, "echo")
    common(res, "echo")
    check(res["msgs_per_sec"] > 0, "no replies with 3000-byte payloads")


def t_fanout_flat(srv):
    res = bench(srv, "-s", 20, "-n", 2, "-w", 8, "-t", 2, "--json",
                "fanout")
    common(res, "fanout")
    check(res["msgs_per_sec"] > 0, "no deliveries")
    check(res["lost"] == 0 and res["lost_deliveries"] == 0,
          "lost: %r" % res)
    check(res["duplicated"] == 0, "duplicated: %r" % res)
    check(res["deliveries"] == 20 * res["published"],
          "deliveries %d != 20 x published %d"
          % (res["deliveries"], res["published"]))
    latencies(res)


def t_fanout_rate(srv):
    res = bench(srv, "-s", 10, "-n", 1, "-r", 50, "-t", 2, "--json",
                "fanout")
    common(res, "fanout")
    check(res["lost"] == 0 and res["duplicated"] == 0, "lost/dup: %r" % res)
    check(30 <= res["publishes_per_sec"] <= 70,
          "asked for 50 publishes/s, got %r" % res["publishes_per_sec"])
    check(res["rate"] == 50, "rate %r" % res["rate"])
    latencies(res)


def t_churn(srv):
    res = bench(srv, "-c", 4, "-t", 2, "--json", "churn")
    common(res, "churn")
    check(res["msgs_per_sec"] > 0 and res["messages"] > 0, "no cycles")
    latencies(res)


def t_idle(srv):
    res = bench(srv, "-N", 400, "-t", 1, "--json", "idle")
    common(res, "idle")
    check(res["connections"] == 400, "connections %r" % res["connections"])
    check(res["rss_per_conn_bytes"] > 0,
          "rss_per_conn_bytes %r" % res["rss_per_conn_bytes"])
    check(res["rss_after_bytes"] > res["rss_before_bytes"], "rss growth")


def t_idle_spread(srv):
    """Past 5,000 connections to 127.x, sources spread over 127.0.0.2.."""
    p = subprocess.run([BENCH, "-p", str(srv.port), "--pid",
                        str(srv.proc.pid), "-N", "5200", "-t", "1", "idle"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    out = p.stdout.decode()
    check(p.returncode == 0, "exit %d: %s" % (p.returncode, p.stderr))
    check("sources 127.0.0.2.." in out, "no source spreading:\n" + out)
    res = json.loads(out.splitlines()[-1][len("RESULT "):])
    check(res["connections"] == 5200 and res["failed"] == 0,
          "connections: %r" % res)


def t_queue(srv):
    """300 jobs flat-out in batches of 100, then 200 jobs/s for 1 s: every
    job runs once and completes, the figures are there."""
    res = bench(srv, "--jobs", 300, "--batch", 100, "-r", 200, "-t", 1,
                "--json", "queue")
    check(res["scenario"] == "queue", "scenario %r" % res.get("scenario"))
    check(res["errors"] == 0 and res["failed"] == 0 and res["dropped"] == 0,
          "errors, failed or dropped: %r" % res)
    check(res["jobs"] == 300 and res["started"] == 300 and
          res["rate_jobs"] == 200 and res["rate_started"] == 200,
          "jobs added and run: %r" % res)
    check(res["duplicated"] == 0 and res["lost"] == 0 and
          res["jobs_failed"] == 0 and res["bad"] == 0,
          "jobs twice, never, failed or unreadable: %r" % res)
    check(res["workers"] == 1 and res["answered"] == 1,
          "workers %r, answered %r" % (res["workers"], res["answered"]))
    check(res["seconds"] > 0 and res["jobs_per_sec"] > 0 and
          res["msgs_per_sec"] == res["jobs_per_sec"], "rate: %r" % res)
    check(0.9 <= res["rate_add_seconds"] <= 1.5,
          "200 adds at 200/s took %r s" % res["rate_add_seconds"])
    check(res["server_cpu_s"] is not None and res["server_cpu_s"] >= 0 and
          res["also_cpu_s"] == 0 and
          res["cpu_per_1m"] == res["server_cpu_per_1m"],
          "cpu: %r" % res)
    check(0 < res["flat_p50_us"] <= res["flat_p99_us"]
          <= res["flat_max_us"] * 1.02 + 1, "flat-out latencies: %r" % res)
    latencies(res)


def t_refused(port):
    p = subprocess.run([BENCH, "-p", str(port), "-c", "2", "-t", "1",
                        "echo"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    err = p.stderr.decode()
    check(p.returncode == 1, "exit %d, expected 1" % p.returncode)
    check("connect: Connection refused" in err,
          "no clear error for a refused connection: %r" % err)


def t_all_failed(srv):
    """Without the bench plugin each echo request gets "Unknown route":
    not one success, so the run fails (exit 1) and says why."""
    cmd = [BENCH, "-p", str(srv.port), "-c", "5", "-t", "1", "--drain", "0",
           "echo"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    err = p.stderr.decode("utf-8", "replace")
    check(p.returncode == 1, "exit %d, expected 1; stderr %r"
          % (p.returncode, err))
    check("Unknown route" in err and "every request failed" in err,
          "no clear error: %r" % err)


def t_usage():
    p = subprocess.run([BENCH, "--help"], stdout=subprocess.PIPE, timeout=10)
    check(p.returncode == 0, "--help exit %d" % p.returncode)
    text = p.stdout.decode()
    for o in ("-H", "--host", "-p", "-P", "-c", "-k", "-t", "-s", "-n", "-r",
              "-w", "-z", "-N", "--pid", "--json", "-h", "--help", "-V",
              "--version"):
        check(re.search(r"^  (-[A-Za-z], )?%s\b" % re.escape(o), text,
                        re.M),
              "--help lacks %s" % o)
    # -h is help, as in every other pxl program (the host is -H, --host).
    p = subprocess.run([BENCH, "-h"], stdout=subprocess.PIPE, timeout=10)
    check(p.returncode == 0 and p.stdout.decode() == text,
          "-h: exit %d, not the --help text" % p.returncode)
    p = subprocess.run([BENCH, "--version"], stdout=subprocess.PIPE,
                       timeout=10)
    check(p.returncode == 0 and
          re.fullmatch(r"pxl-bench [0-9][0-9.]*\n", p.stdout.decode()),
          "--version: exit %d, %r" % (p.returncode, p.stdout.decode()))
    for args, what in ((["nope"], "unknown scenario"),
                       (["-c", "0", "echo"], "bad value"),
                       (["-r", "x", "fanout"], "bad value"),
                       (["--bogus", "echo"], "usage"),
                       ([], "usage")):
        p = subprocess.run([BENCH] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        check(p.returncode == 2 and what in p.stderr.decode(),
              "%r: exit %d, stderr %r" % (args, p.returncode,
                                          p.stderr.decode()))
    p = subprocess.run([BENCH, "-N", "5", "idle"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    check(p.returncode != 0 and "--pid" in p.stderr.decode(),
          "idle without --pid: %r" % p.stderr.decode())


def t_man():
    src = env("PXL_SRCDIR")
    p = subprocess.run(["groff", "-mdoc", "-Tascii", "-P-c",
                        os.path.join(src, "man", "pxl-bench.1")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=20)
    text = re.sub(r".\x08", "", p.stdout.decode())  # col -b
    check(p.returncode == 0 and text, "groff failed: %r" % p.stderr)
    help_text = subprocess.run([BENCH, "--help"], stdout=subprocess.PIPE,
                               timeout=10).stdout.decode()
    opts = [o for pair in re.findall(
        r"^  (-[A-Za-z]|--[a-z][a-z-]*)(?:, (--[a-z][a-z-]*))?\b",
        help_text, re.M) for o in pair if o]
    check("--host" in opts and "--version" in opts,
          "long options not found in --help: %r" % opts)
    for o in opts:
        check(re.search(r"^ +(-[A-Za-z], )?%s([ ,]|$)" % re.escape(o), text,
                        re.M),
              "pxl-bench(1) does not document %s" % o)
    for word in ("echo", "fanout", "idle", "churn", "queue", "msgs_per_sec",
                 "server_cpu_per_1m", "rss_per_conn_bytes", "duplicated",
                 "lost", "jobs_per_sec", "cpu_per_1m", "rate_jobs"):
        check(word in text, "pxl-bench(1) does not mention %s" % word)


# ---- the client API through the driver ------------------------------------------

class Driver:
    """wsc_reconnect as a child: lines out (with arrival times), commands in."""

    def __init__(self, url, *opts):
        self.proc = subprocess.Popen([DRIVER] + list(opts) + [url],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put((time.monotonic(), raw.decode().rstrip("\n")))
        self.lines.put((time.monotonic(), None))

    def expect(self, pattern, timeout=10):
        """The next line matching pattern (other lines are kept in seen)."""
        end = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for /%s/; lines:\n%s"
                                     % (pattern, "\n".join(self.seen)))
            try:
                t, line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("driver exited waiting for /%s/; "
                                     "lines:\n%s\nstderr: %s"
                                     % (pattern, "\n".join(self.seen),
                                        self.proc.stderr.read().decode()))
            self.seen.append(line)
            m = rx.search(line)
            if m:
                return t, m

    def quiet(self, seconds, pattern):
        """No line matching pattern arrives within seconds."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            try:
                _, line = self.lines.get(timeout=left)
            except queue.Empty:
                return
            if line is None:
                return
            self.seen.append(line)
            check(not re.search(pattern, line),
                  "unexpected %r after an explicit close" % line)

    def cmd(self, text):
        self.proc.stdin.write((text + "\n").encode())
        self.proc.stdin.flush()

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.cmd("quit")
            except BrokenPipeError:
                pass
        rc = self.proc.wait(10)
        err = self.proc.stderr.read().decode()
        check(rc == 0, "driver exit %d; stderr:\n%s" % (rc, err))
        check("Sanitizer" not in err and "runtime error" not in err,
              "sanitizer report:\n" + err)


def near(got, want, what, srv=None):
    """A reconnect delay: got (seconds from one driver line to the next)
    is about want. Timers never fire early, so no less than 0.8 x want.
    No more than 1.5 x want + 0.3 s, plus, when the attempt ends with an
    upgrade by srv, the time srv took to start (how slow pxl-serve answers
    on this machine now: 0.08 s for an ASan build on an idle 2-core VM,
    several times that when it is loaded); but always less than 2 x want,
    so that a timer twice too long (a backoff doubled once too often)
    still fails."""
    extra = srv.startup if srv is not None else 0.0
    hi = min(want * 1.5 + 0.3 + extra, want * 2)
    check(want * 0.8 <= got < hi,
          "%s: %.3f s, expected about %.1f s (%.2f..%.2f s%s)"
          % (what, got, want, want * 0.8, hi,
             "; the server took %.2f s to start" % extra if srv else ""))


def t_reconnect_late_and_restart():
    port = free_port()
    d = Driver("ws://127.0.0.1:%d/ws" % port, "-r", "5")
    srv = None
    try:
        d.expect(r"^started$")
        d.expect(r"^close 1006 connect: Connection refused$")
        t1, _ = d.expect(r"^reconnecting 1 1000$")
        t_fail2, _ = d.expect(r"^close 1006 ")
        near(t_fail2 - t1, 1.0, "delay before attempt 1")
        t2, _ = d.expect(r"^reconnecting 2 2000$")
        srv = Server(fixed_port_config(port), "late").start()
        t_open, _ = d.expect(r"^open")
        near(t_open - t2, 2.0, "delay before attempt 2", srv)
        d.expect(r"^message system/connected \{\"clientId\":\"[0-9a-f]{32}\"")
        d.cmd("echo hello")
        d.expect(r"^sent 0$")
        d.expect(r'^reply bench/echo 1 "hello"$')
        # The server restarts: the count starts again at 1 (1000 ms).
        srv.stop()
        d.expect(r"^close 1001 ")
        t1, _ = d.expect(r"^reconnecting 1 1000$")
        srv = Server(fixed_port_config(port), "again").start()
        t_open, _ = d.expect(r"^open")
        near(t_open - t1, 1.0, "delay after a restart", srv)
        d.cmd("echo again")
        d.expect(r'^reply bench/echo 2 "again"$')
        # Gone again; an explicit close while waiting stops the retries.
        srv.stop()
        srv = None
        d.expect(r"^close 1001 ")
        d.expect(r"^reconnecting 1 1000$")
        d.cmd("close")
        d.expect(r"^closing 0$")
        d.quiet(2.5, r"^(reconnecting|close|open|failed)")
        d.cmd("echo late")
        d.expect(r"^sent -6$")
    finally:
        if srv is not None:
            srv.stop()
        d.quit()


def t_retries_exhausted():
    port = free_port()
    d = Driver("ws://127.0.0.1:%d/ws" % port, "-r", "2")
    try:
        d.expect(r"^reconnecting 1 1000$")
        d.expect(r"^reconnecting 2 2000$")
        d.expect(r"^failed 2$", timeout=5)
        d.quiet(1.5, r"^reconnecting")
    finally:
        d.quit()


def t_explicit_close(srv):
    d = Driver(srv.url(), "-r", "3")
    try:
        d.expect(r"^open")
        d.cmd("close 4001")
        d.expect(r"^closing 0$")
        d.expect(r"^close 4001 ")
        d.quiet(1.5, r"^(reconnecting|open)")
        d.cmd("close 999")
        d.expect(r"^closing -4$")
        d.cmd("free")
        d.expect(r"^freed$")
    finally:
        d.quit()


def t_refusals(srv):
    d = Driver("ws://127.0.0.1:%d/nope" % srv.port, "-r", "0")
    try:
        d.expect(r"^close 1006 the server refused the upgrade: HTTP 404 "
                 r"Not Found")
        d.quiet(1.2, r"^reconnecting")
    finally:
        d.quit()
    for url, why in (("http://127.0.0.1/ws", "unsupported scheme"),
                     ("ws://u@h/", "user info"),
                     ("ws://127.0.0.1:1/ws#x", "fragment")):
        p = subprocess.run([DRIVER, url], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, timeout=10)
        out = p.stdout.decode()
        check(p.returncode == 1 and why in out,
              "%s: exit %d, %r" % (url, p.returncode, out))


def t_heartbeat(srv):
    """The server pings every second and closes 4001 without pongs."""
    d = Driver(srv.url(), "-r", "0")
    try:
        d.expect(r"^open")
        d.quiet(3.5, r"^close")
        d.cmd("echo still")
        d.expect(r'^reply bench/echo 1 "still"$')
    finally:
        d.quit()


# ---- a hand-made server, for what pxl-serve never sends ---------------------------

class FakeServer:
    """Accepts one client, answers its upgrade with script(fake)."""

    def __init__(self, script):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.script = script
        self.errors = []
        self.request = None
        self.key = None
        self.buf = b""
        self.c = None
        self.go = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.lsock.settimeout(15)
            self.c, _ = self.lsock.accept()
            self.c.settimeout(15)
            while b"\r\n\r\n" not in self.buf:
                self._fill()
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.request = head.decode("latin-1")
            m = re.search(r"(?mi)^Sec-WebSocket-Key: *(\S+)\r?$",
                          self.request)
            self.key = m.group(1) if m else None
            self.script(self)
        except Exception as e:  # noqa: BLE001 - reported by finish()
            self.errors.append(repr(e))
        finally:
            if self.c is not None:
                self.c.close()
            self.lsock.close()

    def _fill(self):
        chunk = self.c.recv(65536)
        if not chunk:
            raise EOFError("client closed the connection")
        self.buf += chunk

    def send(self, data, pause=0):
        self.c.sendall(data)
        if pause:
            time.sleep(pause)

    def upgrade(self, accept=None, extra=""):
        acc = accept if accept is not None else accept_key(self.key)
        self.send(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
                   "\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                   "%s\r\n" % (acc, extra)).encode())

    def read_frame(self):
        """(fin, opcode, payload, mask) of the client's next frame."""
        while len(self.buf) < 2:
            self._fill()
        b0, b1 = self.buf[0], self.buf[1]
        n, h = b1 & 0x7F, 2
        if n == 126:
            h = 4
        elif n == 127:
            h = 10
        while len(self.buf) < h + 4:
            self._fill()
        if n == 126:
            n = struct.unpack("!H", self.buf[2:4])[0]
        elif n == 127:
            n = struct.unpack("!Q", self.buf[2:10])[0]
        check(b1 & 0x80, "client frame not masked")
        mask = self.buf[h:h + 4]
        while len(self.buf) < h + 4 + n:
            self._fill()
        payload = mask_bytes(self.buf[h + 4:h + 4 + n], mask)
        self.buf = self.buf[h + 4 + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload, mask

    def expect_eof(self):
        try:
            while True:
                self._fill()
                check(False, "bytes instead of EOF: %r" % self.buf[:80])
        except EOFError:
            return

    def finish(self):
        self.thread.join(20)
        check(not self.thread.is_alive(), "fake server still running")
        check(not self.errors, "fake server: %s" % "; ".join(self.errors))


def frame(opcode, payload, fin=True, mask=None):
    if isinstance(payload, str):
        payload = payload.encode()
    return RawWS.frame(opcode, payload, fin=fin, mask=mask is not None,
                       mask_key=mask)


def t_fake_frames():
    """Fragments around a ping, a 200 kB message, a message that arrives
    a byte at a time, the client's request and masking, the close echo."""
    big = '{"type":"big","action":"x","data":"%s"}' % ("y" * 200000)
    tiny = frame(1, '{"type":"tiny","action":"y"}')
    seen = {}

    def script(f):
        f.upgrade()
        f.send(frame(1, '{"type":"system","action":"connected","data":'
                        '{"clientId":"0123456789abcdef0123456789abcdef"}}'))
        f.send(frame(1, '{"type":"frag","act', fin=False), 0.05)
        f.send(frame(9, "p1"), 0.05)
        f.send(frame(0, 'ion":"x","data":', fin=False), 0.05)
        f.send(frame(0, '{"a":1}}'))
        fin, op, pl, _ = f.read_frame()
        seen["pong"] = (fin, op, pl)
        data = frame(1, big)
        for i in range(0, len(data), 7000):
            f.send(data[i:i + 7000])
        for i in range(len(tiny)):
            f.send(tiny[i:i + 1], 0.002)
        f.go.wait(10)
        fin, op, pl, mask = f.read_frame()
        seen["echo"] = (fin, op, pl, mask)
        f.send(frame(8, struct.pack("!H", 4002) + b"bye"))
        fin, op, pl, _ = f.read_frame()
        seen["close"] = (op, pl)
        f.c.shutdown(socket.SHUT_WR)
        f.expect_eof()

    f = FakeServer(script)
    d = Driver("ws://127.0.0.1:%d/fake?x=1" % f.port, "-r", "0", "-T",
               "tok123")
    try:
        d.expect(r"^open ?$")
        d.expect(r'^message frag/x \{"a":1\}$')
        d.expect(r"^message big/x 200037 bytes$")
        d.expect(r"^message tiny/y -$")
        d.cmd("echo hi")
        d.expect(r"^sent 0$")
        f.go.set()
        d.expect(r"^close 4002 bye$")
        d.quiet(1, r"^reconnecting")
    finally:
        d.quit()
        f.finish()
    req = f.request.split("\r\n")
    check(req[0] == "GET /fake?x=1 HTTP/1.1", "request line %r" % req[0])
    for h in ("Host: 127.0.0.1:%d" % f.port, "Upgrade: websocket",
              "Connection: Upgrade", "Sec-WebSocket-Version: 13",
              "Authorization: Bearer tok123"):
        check(h in req, "request lacks %r:\n%s" % (h, f.request))
    check(len(base64.b64decode(f.key)) == 16, "key %r" % f.key)
    check(seen.get("pong") == (True, 10, b"p1"), "pong %r" % (seen.get("pong"),))
    fin, op, pl, mask = seen["echo"]
    check(fin and op == 1, "echo frame fin/opcode %r" % ((fin, op),))
    check(json.loads(pl) == {"type": "bench", "action": "echo",
                             "data": "hi", "requestId": 1},
          "echo request %r" % pl)
    check(mask != b"\0\0\0\0", "all-zero mask")
    check(seen["close"] == (8, struct.pack("!H", 4002)),
          "close echo %r" % (seen["close"],))


def t_fake_refusals():
    cases = (
        (lambda f: f.upgrade(accept="AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
         "Sec-WebSocket-Accept is wrong"),
        (lambda f: f.send(b"HTTP/1.1 101 Switching Protocols\r\n"
                          b"Connection: Upgrade\r\n\r\n"),
         "lacks Upgrade: websocket"),
        (lambda f: f.upgrade(extra="Sec-WebSocket-Extensions: x\r\n"),
         "extension or subprotocol"),
        (lambda f: f.send(b"SSH-2.0-OpenSSH\r\n\r\n"), "is not HTTP"),
        (lambda f: f.send(b"HTTP/1.1 503 Service Unavailable\r\n"
                          b"Content-Length: 20\r\n\r\n"
                          b"Too many connections"),
         "HTTP 503 Service Unavailable: Too many connections"),
    )
    for script, why in cases:
        def run(f, script=script):
            script(f)
            f.expect_eof()
        f = FakeServer(run)
        d = Driver("ws://127.0.0.1:%d/ws" % f.port, "-r", "0")
        try:
            d.expect(r"^close 1006 .*" + re.escape(why))
        finally:
            d.quit()
            f.finish()


def t_fake_masked():
    """A masked frame from a server is a protocol error: close 1002."""
    got = {}

    def script(f):
        f.upgrade()
        f.send(frame(1, '{"type":"a","action":"b"}', mask=b"abcd"))
        fin, op, pl, _ = f.read_frame()
        got["close"] = (op, pl[:2])
        f.expect_eof()

    f = FakeServer(script)
    d = Driver("ws://127.0.0.1:%d/ws" % f.port, "-r", "0")
    try:
        d.expect(r"^open ?$")
        d.expect(r"^close 1006 protocol error by the server$")
    finally:
        d.quit()
        f.finish()
    check(got.get("close") == (8, struct.pack("!H", 1002)),
          "close frame %r" % (got.get("close"),))



def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return cert, key


def t_tls(srv, cert):
    url = "wss://localhost:%d/ws" % srv.port
    d = Driver(url, "-r", "0")
    try:
        d.expect(r"^close 1006 tls: .*certificate verify failed")
    finally:
        d.quit()
    for opts in (["-C", cert], ["-k"]):
        d = Driver(url, "-r", "0", *opts)
        try:
            d.expect(r"^open")
            d.cmd("echo over tls")
            d.expect(r'^reply bench/echo 1 "over tls"$')
        finally:
            d.quit()
    res = bench(srv, "--tls", "-c", 2, "-k", 2, "-t", 1, "--json", "echo")
    common(res, "echo")
    check(res["msgs_per_sec"] > 0, "no replies over wss://")


def main():
    for path in (BENCH, DRIVER):
        check(os.access(path, os.X_OK), "%s is not built" % path)
    tap.case("pxl-bench --help lists every option; bad arguments exit 2",
             t_usage)
    tap.case("pxl-bench(1) documents every option, scenario and field",
             t_man)

    fresh = Server(app_config(plugins=PLUGINS, limits=LOAD), "idle")
    if tap.case("pxl-serve starts (system, bench) for idle", fresh.start):
        tap.case("idle: 400 connections, RSS growth per connection > 0",
                 t_idle, fresh)
        tap.case("idle: 5,200 connections from 127.0.0.2 and 127.0.0.3",
                 t_idle_spread, fresh)
        fresh.stop_case(tap)

    srv = Server(app_config(plugins=PLUGINS, limits=LOAD), "bench")
    if tap.case("pxl-serve starts with plugins system and bench",
                srv.start):
        tap.case("echo: 4 x 4 in flight, RESULT is sane", t_echo, srv)
        tap.case("echo with -z 3000 padding", t_echo_payload, srv)
        tap.case("fanout flat-out: 20 subscribers, 2 publishers, nothing "
                 "lost or duplicated", t_fanout_flat, srv)
        tap.case("fanout at 50 publishes/s", t_fanout_rate, srv)
        tap.case("churn: connect/join/leave/disconnect cycles",
                 t_churn, srv)
        tap.case("explicit close while open: on_close, no reconnect",
                 t_explicit_close, srv)
        tap.case("a refused upgrade is reported with its status",
                 t_refusals, srv)
        srv.stop_case(tap)
    tap.case("pxl-bench reports a refused connection and exits 1",
             t_refused, free_port())

    nobench = Server(app_config(plugins=("system",), limits=LOAD), "nobench")
    if tap.case("pxl-serve starts with plugin system only", nobench.start):
        tap.case("pxl-bench exits 1 when every request failed (no bench "
                 "plugin: Unknown route)", t_all_failed, nobench)
        nobench.stop_case(tap)

    jobs = Server(app_config(plugins=("benchqueue",), limits=LOAD), "queue")
    if tap.case("pxl-serve starts with plugin benchqueue", jobs.start):
        tap.case("queue: 300 jobs flat-out, 200 jobs/s for 1 s, each runs "
                 "once", t_queue, jobs)
        jobs.stop_case(tap)

    tap.case("reconnect: 1000 ms, 2000 ms to a late server, again after "
             "a restart, and an explicit close stops it",
             t_reconnect_late_and_restart)
    tap.case("reconnect gives up after max_retries (on_reconnect_failed)",
             t_retries_exhausted)

    tap.case("fragments, pings, big and trickled messages, masking, the "
             "request and the close echo (hand-made server)", t_fake_frames)
    tap.case("a bad 101 is refused with a clear reason (hand-made server)",
             t_fake_refusals)
    tap.case("a masked server frame closes with 1002", t_fake_masked)

    hb = Server(app_config(plugins=PLUGINS,
                           extra="heartbeat = { interval = 1; "
                                 "timeout = 2; };"), "hb")
    if tap.case("pxl-serve starts with a 1 s heartbeat", hb.start):
        tap.case("the client answers pings (no 4001 close)", t_heartbeat,
                 hb)
        hb.stop_case(tap)

    d = tempfile.mkdtemp(prefix="pxltest-wsc-")
    cert, key = make_cert(d)
    tls = Server(app_config(plugins=PLUGINS, limits=LOAD).replace(
        'path = "/ws"; };',
        'path = "/ws"; tls = { certificate = "%s"; key = "%s"; }; };'
        % (cert, key)), "tls")
    if tap.case("pxl-serve starts with listen.tls", tls.start):
        tap.case("wss://: verified with a CA file, refused without, "
                 "insecure on request; pxl-bench --tls", t_tls, tls, cert)
        tls.stop_case(tap)


tap.run(main)
