"""
pxlredis - a real redis-server for the Redis integration tests (stdlib
only, no redis-py).

- RedisServer(password=..., user=..., socket=True, tcp=True): start() runs
  $REDIS_SERVER (default /usr/bin/redis-server) on an unused 127.0.0.1
  port with --save "" --appendonly no in a private temp dir and waits
  until it answers PING; stop() ends it (SHUTDOWN NOSAVE, then SIGTERM,
  then SIGKILL) and waits; start() again restarts it on the same port
  (and socket path), empty, unless stop(save=True) ended it (SHUTDOWN
  SAVE): then it starts with what it held (dump.rdb in its dir). Every
  RedisServer is killed when the test ends or its deadline expires (it
  is registered with pxltest's servers).
- user=NAME makes NAME an ACL user with every permission and turns the
  default user off: only AUTH NAME PASSWORD gets in.
- client() / command(*args): a tiny RESP2 client on a plain socket.
- config(**overrides): the app file's `redis = { ... };` group for this
  server (keys with the value None are left out).
"""
import os
import signal
import socket
import subprocess
import time

import pxltest


class RedisError(Exception):
    """An error reply (-ERR ...)."""


class RedisClient(pxltest.SocketClient):
    """One connection; command() sends one command and returns its reply:
    str/bytes for bulk and simple strings (decoded as UTF-8 when
    possible), int, None, list; an error reply raises RedisError (or is
    returned with errors_ok=True)."""

    def __init__(self, port=None, host="127.0.0.1", unix=None, timeout=5,
                 user=None, password=None, db=0):
        if unix is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix)
        else:
            self.sock = socket.create_connection((host, port), timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        if password is not None:
            if user is not None:
                self.command("AUTH", user, password)
            else:
                self.command("AUTH", password)
        if db:
            self.command("SELECT", db)

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode("utf-8")
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def send(self, *args):
        self.sock.sendall(self.encode(args))

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("Redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("Redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    @staticmethod
    def _text(b):
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return b

    def read_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return self._text(rest)
        if kind == b"-":
            return RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._text(self._exact(n))
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read_reply()
                                       for _ in range(n)]
        raise AssertionError("bad RESP line %r" % line)

    def command(self, *args, errors_ok=False):
        self.send(*args)
        r = self.read_reply()
        if isinstance(r, RedisError) and not errors_ok:
            raise r
        return r


def redis_binary():
    return os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")


class RedisServer:
    def __init__(self, password=None, user=None, socket=False, tcp=True,
                 port=None, name="redis"):
        self.password = password
        self.user = user
        self.tcp = tcp
        self.name = name
        self.dir = pxltest.tmpdir()
        self.socket = os.path.join(self.dir, "redis.sock") if socket else None
        self.port = (port or pxltest.unused_port()) if tcp else 0
        self.log_path = os.path.join(self.dir, name + ".log")
        self.proc = None
        self.starts = 0

    # -- life --

    def args(self):
        a = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--daemonize", "no", "--logfile", self.log_path,
             "--databases", "16"]
        if self.socket:
            a += ["--unixsocket", self.socket, "--unixsocketperm", "700"]
        if self.user is not None:
            a += ["--user", self.user, "on", ">" + self.password, "~*", "&*",
                  "+@all", "--user", "default", "off"]
        elif self.password is not None:
            a += ["--requirepass", self.password]
        return a

    def start(self, timeout=10):
        """Run redis-server (again: same port and socket) and wait until it
        answers PING."""
        pxltest.check(os.access(redis_binary(), os.X_OK),
                      "%s is not installed" % redis_binary())
        pxltest.check(not self.running(), "redis-server is already running")
        self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        self.starts += 1
        if self not in pxltest._servers:
            pxltest._servers.append(self)
        end = time.monotonic() + timeout
        delay = 0.005
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited with %s; log:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                with self.client(timeout=1) as c:
                    if c.command("PING") == "PONG":
                        return self
            except (OSError, EOFError, RedisError) as e:
                last = e
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        self.kill()
        raise AssertionError("redis-server did not answer PING within %ss "
                             "(%r); log:\n%s" % (timeout, last, self.log()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10, save=False):
        """SHUTDOWN NOSAVE (SIGTERM if that fails), wait for the exit.
        save: SHUTDOWN SAVE, so that the next start() loads the data."""
        if not self.running():
            return
        try:
            with self.client(timeout=2) as c:
                c.send("SHUTDOWN", "SAVE" if save else "NOSAVE")
                try:
                    c.read_reply()
                except (OSError, EOFError):
                    pass  # the normal answer: the connection closes
        except (OSError, EOFError, RedisError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("redis-server did not stop within %ss"
                                 % timeout)
        if self in pxltest._servers:
            pxltest._servers.remove(self)
        dump = os.path.join(self.dir, "dump.rdb")
        if save:
            pxltest.check(os.path.exists(dump), "SHUTDOWN SAVE left no "
                          "dump.rdb; log:\n%s" % self.log())
        elif os.path.exists(dump):
            os.remove(dump)  # the next start() is empty

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait(5)
        if self in pxltest._servers:
            pxltest._servers.remove(self)

    def log(self):
        return pxltest.read_text(self.log_path)

    # -- talking to it --

    def client(self, timeout=5, db=0):
        if self.tcp:
            return RedisClient(self.port, timeout=timeout, user=self.user,
                               password=self.password, db=db)
        return RedisClient(unix=self.socket, timeout=timeout, user=self.user,
                           password=self.password, db=db)

    def command(self, *args, db=0, errors_ok=False):
        with self.client(db=db) as c:
            return c.command(*args, errors_ok=errors_ok)

    # -- the app file --

    def config(self, **overrides):
        """`redis = { ... };` for this server: host/port (or socket when
        it has no TCP port), user/password as started, small timings for
        tests (heartbeat 1 s, dead_after 2 s, retry_max_delay 1 s);
        overrides replace or add keys, None removes one."""
        keys = {"host": "127.0.0.1", "port": self.port if self.tcp else None,
                "socket": None if self.tcp else self.socket,
                "user": self.user, "password": self.password,
                "heartbeat_interval": 1, "dead_after": 2,
                "retry_max_delay": 1, "connect_timeout": 2}
        keys.update(overrides)
        return redis_group(keys)


def redis_group(keys):
    """libconfig text of a redis group from a dict (None: left out)."""
    items = []
    for k, v in keys.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, str):
            v = '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
        items.append("%s = %s;" % (k, v))
    return "redis = { %s };" % " ".join(items)
