"""
pxltest - what every Python integration test of pxl shares (stdlib only).

- TAP output: cases are functions; a case passes when it returns and fails
  when it raises (the exception becomes "# ..." diagnostics). done() prints
  the plan and exits 1 if any case failed.
- Servers: Server(config_text) writes the app file into a private temp dir,
  start() runs $PXL_SERVE on port 0 with stderr in a file and polls for the
  "listening on HOST:PORT/PATH" line, noting how long that took
  (Server.startup; slowest_startup() and load_slack() let timing bounds
  grow with the machine's load); stop() sends SIGTERM once and checks the
  exit code and the log (no level=err line, no sanitizer report).
  With workers > 1 (app_config(workers=N), Server(..., workers=N)) start()
  waits for the master's "cluster of N workers listening" line instead.
  stop_servers() (astop_servers() from a coroutine) is the end of a test
  file: each server's stop() as a TAP case named after its app file.
- A raw WebSocket client (RawWS) and an HTTP upgrade helper on plain
  sockets, for conformance tests that need hand-made bytes; send_raw()
  sends a request the server may refuse before reading it all, and
  check_refusal() checks what every refused upgrade's response has.

Every file bounds its own time with TAP.deadline(): when it expires, all
servers are killed and the test bails out.
"""
import atexit
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

# ---- environment ---------------------------------------------------------

ENV_VARS = ("PXL_SERVE", "PXL_PLUGIN_PATH", "PXL_TEST_PLUGINS")


def env(name):
    """An environment variable the tests need; missing is a failure."""
    v = os.environ.get(name)
    if not v:
        print("Bail out! %s is not set (run through make check, or set it)"
              % name, flush=True)
        sys.exit(1)
    return v


def plugin_file(name):
    """The path pxl-serve resolves a bare plugin name to (PXL_PLUGIN_PATH)."""
    for d in env("PXL_PLUGIN_PATH").split(":"):
        if d and os.access(os.path.join(d, name + ".so"), os.R_OK):
            return os.path.join(d, name + ".so")
    raise AssertionError("%s.so not found in PXL_PLUGIN_PATH" % name)


def test_plugin(name):
    """A deliberately bad plugin from $PXL_TEST_PLUGINS."""
    p = os.path.join(env("PXL_TEST_PLUGINS"), name + ".so")
    if not os.access(p, os.R_OK):
        raise AssertionError("%s not readable" % p)
    return p


# ---- TAP -----------------------------------------------------------------

class TAP:
    def __init__(self):
        self.n = 0
        self.failed = []

    def diag(self, text):
        for line in str(text).splitlines() or [""]:
            print("# " + line, flush=True)

    def ok(self, cond, name, diag=None):
        self.n += 1
        name = name.replace("#", "\\#")
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name),
              flush=True)
        if not cond:
            self.failed.append(name)
            if diag:
                self.diag(diag)
        return cond

    def case(self, name, fn, *args, **kw):
        """Run fn(*args, **kw) as one test case."""
        try:
            fn(*args, **kw)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            return self.ok(False, name, describe(e))
        return self.ok(True, name)

    async def acase(self, name, fn, *args, timeout=20, **kw):
        """Run the coroutine fn(*args, **kw) as one case, within timeout s."""
        import asyncio
        try:
            await asyncio.wait_for(fn(*args, **kw), timeout)
        except asyncio.TimeoutError:
            return self.ok(False, name, "timed out after %ss" % timeout)
        except Exception as e:  # noqa: BLE001
            return self.ok(False, name, describe(e))
        return self.ok(True, name)

    def deadline(self, seconds):
        """Kill every server and bail out if the file runs longer."""
        def expired(signo, frame):
            print("Bail out! %s did not finish within %d s"
                  % (os.path.basename(sys.argv[0]), seconds), flush=True)
            kill_all_servers()
            os._exit(1)
        signal.signal(signal.SIGALRM, expired)
        signal.alarm(seconds)

    def run(self, main):
        """Run main() (a function or a coroutine function) and end the
        TAP stream: an exception that escapes main is one more failure."""
        try:
            r = main()
            if hasattr(r, "__await__"):
                import asyncio
                asyncio.run(r)
        except BaseException as e:  # noqa: BLE001 - reported, then done
            self.ok(False, "the test program ran to its end", describe(e))
        self.done()

    def done(self):
        signal.alarm(0)
        print("1..%d" % self.n, flush=True)
        if self.failed:
            self.diag("%d of %d failed" % (len(self.failed), self.n))
        sys.stdout.flush()
        sys.exit(1 if self.failed or self.n == 0 else 0)


def describe(e):
    if isinstance(e, AssertionError) and e.args:
        return str(e.args[0])
    return "".join(traceback.format_exception(type(e), e, e.__traceback__))


def eq(got, expected, what="value"):
    if got != expected:
        raise AssertionError("%s:\n  got:      %r\n  expected: %r"
                             % (what, got, expected))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ---- strict JSON -----------------------------------------------------------

def _no_dups(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key %r" % k)
        d[k] = v
    return d


def _no_constant(name):
    raise ValueError("non-JSON constant %s" % name)


def loads(text, parse_float=None):
    """json.loads that refuses duplicate keys, NaN and Infinity
    (parse_float=decimal.Decimal keeps every digit of a decimal)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    return json.loads(text, parse_float=parse_float,
                      object_pairs_hook=_no_dups,
                      parse_constant=_no_constant)


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def error_frame(text, rid=None, has_rid=False):
    f = {"type": "error", "action": "message", "data": {"error": text}}
    if has_rid:
        f["requestId"] = rid
    return f


CLIENT_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def is_connected_frame(obj):
    """The (pxl) system/connected frame a server sends after the 101."""
    return (isinstance(obj, dict) and obj.get("type") == "system"
            and obj.get("action") == "connected")


# ---- app files and servers ---------------------------------------------------

def unused_port():
    """A TCP port nothing listens on (as of now) on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_config(plugins=("echo", "testkit"), name="pxltest", raw_text=None,
               limits=None, extra="", log_level="info", path="/ws",
               shutdown_timeout=None, workers=None, log_format="logfmt",
               port=0):
    """An app file: plugins are bare names/paths, or raw libconfig groups.
    workers > 1 adds the redis group it needs, on a port where no Redis
    runs (required = false: the workers serve without it)."""
    entries = []
    for p in plugins:
        entries.append(p if p.lstrip().startswith("{") else '"%s"' % p)
    out = ['name = "%s";' % name,
           'listen = { host = "127.0.0.1"; port = %d; path = "%s"; };'
           % (port, path),
           "plugins = ( %s );" % ", ".join(entries),
           'log = { level = "%s"; format = "%s"; };' % (log_level,
                                                        log_format)]
    if workers is not None:
        out.append("workers = %s;" % workers)
        if workers != 1:
            out.append("redis = { port = %d; required = false; };"
                       % unused_port())
    if raw_text is not None:
        out.append("raw_text = %s;" % ("true" if raw_text else "false"))
    if shutdown_timeout is not None:
        out.append("shutdown_timeout = %d;" % shutdown_timeout)
    if limits:
        out.append("limits = { %s };" % " ".join(
            "%s = %s;" % (k, v) for k, v in limits.items()))
    if extra:
        out.append(extra)
    return "\n".join(out) + "\n"


_servers = []
_tmpdirs = []
_startups = []  # seconds each Server.start() took, launch to listening


def slowest_startup():
    """The longest start-up (launch to the listening line) of the servers
    this test started so far, in seconds; 0 before any. An ASan pxl-serve
    starts in about 0.08 s on an idle 2-core VM and several times slower
    when the machine is loaded (make -j2 check runs two test files at
    once): a measure of how late timers and replies may come on this run,
    for timing bounds to scale their slack by (see load_slack)."""
    return max(_startups, default=0.0)


def load_slack(factor, cap):
    """Extra seconds for a timing bound: factor times the slowest start-up
    so far, at most cap (chosen per bound so that it still catches the
    bug it is there for)."""
    return min(cap, factor * slowest_startup())


def tmpdir():
    d = tempfile.mkdtemp(prefix="pxltest-")
    _tmpdirs.append(d)
    return d


def kill_all_servers():
    for s in list(_servers):
        try:
            if s.proc is not None and s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _cleanup():
    kill_all_servers()
    if os.environ.get("PXL_KEEP_TMP"):
        return
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer")
ERR_LINE = re.compile(r'(^|\s)level=err(\s|$)|"level":"err"')


def log_problems(text):
    """Lines of a server log that fail a test: ERR lines and sanitizers."""
    bad = []
    for line in text.splitlines():
        if ERR_LINE.search(line) or any(m in line for m in SANITIZER_MARKS):
            bad.append(line)
    return bad


def read_text(path):
    """A log file's text so far ("" before it exists)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def run_serve(args, timeout=30, cwd=None):
    """Run pxl-serve to completion: (exit code, stdout, stderr)."""
    p = subprocess.run([env("PXL_SERVE")] + list(args), cwd=cwd,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def check_text(text, args=()):
    """pxl-serve -t on text written to a fresh app.cfg: (exit code,
    stdout, stderr, the file's path)."""
    path = os.path.join(tmpdir(), "app.cfg")
    with open(path, "w") as f:
        f.write(text)
    return run_serve(list(args) + ["-t", path]) + (path,)


class Server:
    LISTEN_RE = re.compile(r"listening on (\S+):(\d+)(/[^\s\"]*)")
    CLUSTER_RE = re.compile(r"cluster of (\d+) workers listening on (\S+):"
                            r"(\d+)(/[^\s\"]*) \(node ([0-9a-f]+)\)")
    WORKER_RE = re.compile(r"worker (\d+) (?:re)?started \(pid (\d+)")

    def __init__(self, config, name="app", workers=1, nofile=None, args=()):
        self.name = name  # the app file is NAME.cfg, its log NAME.log
        self.args = list(args)  # pxl-serve options before the app file
        self.workers = workers
        self.nofile = nofile  # RLIMIT_NOFILE (soft and hard), or None
        self.node_id = None
        self.dir = tmpdir()
        self.cfg = os.path.join(self.dir, name + ".cfg")
        with open(self.cfg, "w") as f:
            f.write(config)
        self.log_path = os.path.join(self.dir, name + ".log")
        self.proc = None
        self.port = None
        self.host = None
        self.path = None
        self.signalled = False
        self.startup = None  # seconds start() took, launch to listening

    def _limits(self):
        if self.nofile is not None:
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (self.nofile, self.nofile))

    def launch(self):
        """Run pxl-serve without waiting for it to listen."""
        self.signalled = False  # a restarted server gets its own SIGTERM
        logf = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen([env("PXL_SERVE")] + self.args +
                                         [self.cfg],
                                         stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf,
                                         preexec_fn=self._limits)
        finally:
            logf.close()
        _servers.append(self)
        return self

    def start(self, timeout=20):
        t0 = time.monotonic()
        self.launch()
        end = t0 + timeout
        delay = 0.005
        while time.monotonic() < end:
            if self.workers > 1:
                m = self.CLUSTER_RE.search(self.log())
                if m:
                    eq(int(m.group(1)), self.workers, "workers in " +
                       m.group(0))
                    self.host, self.port, self.path, self.node_id = (
                        m.group(2), int(m.group(3)), m.group(4), m.group(5))
                    self._started(t0)
                    return self
            else:
                m = self.LISTEN_RE.search(self.log())
                if m:
                    self.host, self.port, self.path = (m.group(1),
                                                       int(m.group(2)),
                                                       m.group(3))
                    self._started(t0)
                    return self
            if self.proc.poll() is not None:
                raise AssertionError("pxl-serve exited with %s before "
                                     "listening; log:\n%s"
                                     % (self.proc.returncode, self.log()))
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        self.proc.kill()
        raise AssertionError("pxl-serve did not log '%s' within %ss; log:\n%s"
                             % ("cluster of %d workers listening" %
                                self.workers if self.workers > 1 else
                                "listening on", timeout, self.log()))

    def _started(self, t0):
        self.startup = time.monotonic() - t0
        _startups.append(self.startup)

    def worker_pids(self):
        """{slot: pid} of the workers the master started last (a cluster)."""
        return {int(m.group(1)): int(m.group(2))
                for m in self.WORKER_RE.finditer(self.log())}

    def log(self):
        return read_text(self.log_path)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self):
        """Send SIGTERM once (a second one would mean 'stop at once')."""
        if self.running() and not self.signalled:
            self.signalled = True
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout=20):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("pxl-serve did not exit within %ss of "
                                 "SIGTERM" % timeout)

    def stop(self, timeout=20):
        """SIGTERM, then raise unless exit 0 and a clean log."""
        if self.proc is None:
            raise AssertionError("the server was never started")
        self.terminate()
        rc = self.wait(timeout)
        if self in _servers:
            _servers.remove(self)
        problems = []
        if rc != 0:
            problems.append("exit code %s, expected 0" % rc)
        bad = log_problems(self.log())
        if bad:
            problems.append("bad log lines:\n" + "\n".join(bad[:40]))
        if problems:
            raise AssertionError("\n".join(problems) + "\n-- log tail --\n"
                                 + "\n".join(self.log().splitlines()[-60:]))

    def stop_case(self, tap, name=None):
        """stop() as a TAP case."""
        return tap.case(name or "server exits 0 on SIGTERM with a clean log",
                        self.stop)

    def url(self, path=None):
        return "ws://127.0.0.1:%d%s" % (self.port, path or self.path)


def was_started(server):
    """stop_servers()'s default choice: the servers start() or launch()
    ran (a server whose start failed is still stopped and checked)."""
    return server.proc is not None


def stop_servers(tap, servers, name="%s server exits 0, clean log",
                 only=was_started, after=None):
    """The end of a test file: for each server in turn, stop_case() named
    name % server.name. only(server) says which to stop (default: the
    ones that were started; None: every one, so that one never started
    fails its case); after(server), if given, runs after each one's
    stop case."""
    for s in servers:
        if only is not None and not only(s):
            continue
        s.stop_case(tap, name % s.name)
        if after is not None:
            after(s)


async def astop_servers(tap, servers, **kw):
    """stop_servers() from a coroutine: in a thread, so that the event
    loop goes on serving the clients still open while servers stop."""
    import asyncio
    await asyncio.to_thread(stop_servers, tap, servers, **kw)


def wait_until(pred, timeout=10, what="condition"):
    """Poll pred() (no fixed sleeps) until true; raise after timeout."""
    end = time.monotonic() + timeout
    delay = 0.002
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


# ---- raw HTTP / WebSocket on plain sockets --------------------------------------

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode())
                            .digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(path="/ws", key=None, host="127.0.0.1", version="13",
                    method="GET", upgrade="websocket", connection="Upgrade",
                    extra=()):
    """Request bytes; pass None for a header to leave it out."""
    lines = ["%s %s HTTP/1.1" % (method, path)]
    if host is not None:
        lines.append("Host: %s" % host)
    if upgrade is not None:
        lines.append("Upgrade: %s" % upgrade)
    if connection is not None:
        lines.append("Connection: %s" % connection)
    if key is not None:
        lines.append("Sec-WebSocket-Key: %s" % key)
    if version is not None:
        lines.append("Sec-WebSocket-Version: %s" % version)
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HTTPResponse:
    def __init__(self, status, reason, headers, body, raw):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> list of values
        self.body = body
        self.raw = raw

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None


class EOFBeforeResponse(AssertionError):
    pass


class SocketClient:
    """What the plain-socket clients share: self.sock, closed once, and
    usable in a with statement."""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class RawWS(SocketClient):
    """One TCP connection, hand-made bytes, frame reader."""

    def __init__(self, port, timeout=10, rcvbuf=None, source=None):
        """rcvbuf: SO_RCVBUF, set before connecting (a client whose kernel
        holds little of what the server sends); source: the local address
        to connect from (e.g. "127.0.0.2")."""
        if rcvbuf is None and source is None:
            self.sock = socket.create_connection(("127.0.0.1", port),
                                                 timeout)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                if rcvbuf is not None:
                    self.sock.setsockopt(socket.SOL_SOCKET,
                                         socket.SO_RCVBUF, rcvbuf)
                if source is not None:
                    self.sock.bind((source, 0))
                self.sock.settimeout(timeout)
                self.sock.connect(("127.0.0.1", port))
            except BaseException:
                self.sock.close()
                raise
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = b""
        self.first_frame = True
        self.connected = None  # the system/connected frame, if one came

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError("timed out after %ss waiting for data "
                                 "(have %r)" % (self.timeout, self.buf[:200]))
        if not chunk:
            raise EOFError("connection closed by the server (pending %r)"
                           % self.buf[:200])
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self):
        """Read an HTTP response head (and body per Content-Length)."""
        while b"\r\n\r\n" not in self.buf:
            try:
                self._fill()
            except EOFError:
                raise EOFBeforeResponse("EOF before a complete HTTP "
                                        "response: %r" % self.buf)
            check(len(self.buf) < 65536, "response head too long")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"^HTTP/1\.1 (\d{3}) (.*)$", lines[0])
        check(m is not None, "bad status line %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            check(sep == ":", "bad header line %r" % line)
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        status = int(m.group(1))
        body = b""
        if status != 101:
            cl = headers.get("content-length")
            if cl:
                body = self._take(int(cl[0]))
        return HTTPResponse(status, m.group(2), headers, body, head)

    def handshake(self, key=None, path="/ws", **kw):
        """Upgrade; returns the response (asserting 101 and the accept)."""
        key = key or new_key()
        self.send(upgrade_request(path=path, key=key, **kw))
        r = self.read_response()
        eq(r.status, 101, "handshake status (head %r)" % r.raw)
        eq(r.header("sec-websocket-accept"), accept_key(key),
           "Sec-WebSocket-Accept")
        return r

    # -- frames --

    @staticmethod
    def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None,
              len_form=None, mask_key=None):
        """A frame; len_form 7/16/64 forces a length encoding, length
        overrides the announced payload length."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | (rsv << 4) | (opcode & 0x0F)
        mbit = 0x80 if mask else 0
        if len_form is None:
            len_form = 7 if n <= 125 else 16 if n <= 0xFFFF else 64
        if len_form == 7:
            hdr = struct.pack("!BB", b0, mbit | n)
        elif len_form == 16:
            hdr = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, mbit | 127, n)
        if not mask:
            return hdr + payload
        key = mask_key if mask_key is not None else os.urandom(4)
        return hdr + key + mask_bytes(payload, key)

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(self.frame(opcode, payload, **kw))

    def recv_frame(self):
        """(fin, rsv, opcode, payload) of the next server frame; a first
        text frame that is system/connected is kept in self.connected and
        skipped. Server frames must not be masked."""
        while True:
            b0, b1 = self._take(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._take(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._take(8))[0]
            check(not (b1 & 0x80), "server frame is masked")
            payload = self._take(n) if n else b""
            f = (bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload)
            first, self.first_frame = self.first_frame, False
            if first and f[2] == 1:
                try:
                    obj = loads(payload)
                except ValueError:
                    obj = None
                if is_connected_frame(obj):
                    self.connected = obj
                    continue
            return f

    def expect_frame(self, opcode, payload=None, what="frame"):
        fin, rsv, op, data = self.recv_frame()
        eq((fin, rsv, op), (True, 0, opcode), what + " (fin, rsv, opcode)"
           " with payload %r" % data[:200])
        if payload is not None:
            if isinstance(payload, str):
                payload = payload.encode("utf-8")
            if data != payload:
                raise AssertionError(
                    "%s payload: got %d bytes %r, expected %d bytes %r"
                    % (what, len(data), data[:120], len(payload),
                       payload[:120]))
        return data

    def expect_close(self, code, what="close frame"):
        """Next frame is a close with this code; returns the reason."""
        data = self.expect_frame(8, None, what)
        check(len(data) >= 2, "%s: payload %r has no status code (expected "
              "%d)" % (what, data, code))
        got = struct.unpack("!H", data[:2])[0]
        eq(got, code, what + " code (payload %r)" % data)
        reason = data[2:]
        try:
            return reason.decode("utf-8")
        except UnicodeDecodeError:
            raise AssertionError("close reason is not UTF-8: %r" % reason)

    def expect_eof(self, timeout=None):
        """The server closes the TCP connection (recv returns b"")."""
        self.sock.settimeout(timeout or self.timeout)
        while True:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError("server did not close the TCP "
                                     "connection (pending %r)"
                                     % self.buf[:200])
            except ConnectionResetError:
                raise AssertionError("connection reset instead of an "
                                     "orderly close")
            if not chunk:
                check(not self.buf, "unread bytes before EOF: %r"
                      % self.buf[:200])
                return
            self.buf += chunk
            raise AssertionError("unexpected bytes instead of EOF: %r"
                                 % self.buf[:200])


def mask_bytes(data, key):
    if not data:
        return b""
    k = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")) \
        .to_bytes(len(data), "big")


def send_raw(port, data, timeout=10):
    """A RawWS that sent data. A server may refuse a request before it has
    read all of it: a broken pipe or reset while sending is no error, the
    response is there to read."""
    c = RawWS(port, timeout)
    try:
        c.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    except BaseException:
        c.close()
        raise
    return c


def check_refusal(r):
    """What the response to every refused upgrade has: Content-Type
    text/plain; charset=utf-8, a short UTF-8 body whose length
    Content-Length gives, and no Sec-WebSocket-Accept."""
    eq(r.header("content-type"), "text/plain; charset=utf-8",
       "Content-Type")
    eq(r.header("content-length"), str(len(r.body)), "Content-Length")
    check(0 < len(r.body) < 200, "body %r is not short plain text"
          % r.body)
    r.body.decode("utf-8")
    check(r.header("sec-websocket-accept") is None,
          "a refusal carries Sec-WebSocket-Accept")


def http_request(port, data, timeout=10):
    """Send raw request bytes; return (HTTPResponse, RawWS)."""
    c = RawWS(port, timeout)
    c.send(data)
    return c.read_response(), c


# ---- JWT (HMAC) -------------------------------------------------------------

def b64url(data):
    """base64url without padding (JWS)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
       "HS512": hashlib.sha512}


def jwt_hs(payload, secret, alg="HS256", header=None):
    """An HS256/384/512 token (stdlib only); secret is str or bytes,
    payload a dict (or a ready JSON text), header overrides the default."""
    import hmac
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    h = header if header is not None else {"alg": alg, "typ": "JWT"}
    hp = "%s.%s" % (b64url(dumps(h) if not isinstance(h, str) else h),
                    b64url(dumps(payload) if not isinstance(payload, str)
                           else payload))
    sig = hmac.new(secret, hp.encode("ascii"), _HS[alg]).digest()
    return hp + "." + b64url(sig)
