"""
test_logging - where the log goes and what it says about clients (issue
14): log.destination = "file" appends to log.file and SIGUSR1 reopens it
after logrotate moved it (one process, and a cluster whose master passes
the signal on); "syslog" sends RFC 3164-style datagrams "<PRI>TAG[PID]:
LINE" to log.syslog_socket (a socket this test binds), reconnecting when
the socket is replaced; the access line (log.access, on by default) gives
each client's peer, duration, messages and frame bytes each way and close
code, counted here from the frames on the wire; -t names a log file that
cannot be written.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pxltest  # noqa: E402
from pxltest import (TAP, RawWS, Server, app_config, check, eq,  # noqa: E402
                     log_problems, read_text, run_serve, tmpdir, wait_until)

tap = TAP()
tap.deadline(120)


def with_log(text, keys):
    """app_config's text with more keys in its log = { ... } group."""
    extra = " ".join("%s = %s;" % (k, v) for k, v in keys.items())
    out, n = re.subn(r"(log = \{[^}]*)\};", r"\1 %s };" % extra, text)
    eq(n, 1, "log groups in the app file")
    return out


class LogServer(Server):
    """A server whose log is not its stderr: log() reads where the lines
    go (a file, or the datagrams collected from a socket); stderr is
    kept apart and must stay free of problems."""

    def __init__(self, config, **kw):
        super().__init__(config, **kw)
        self.stderr_path = os.path.join(self.dir, "stderr.txt")

    def launch(self):
        self.signalled = False
        errf = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen([pxltest.env("PXL_SERVE")] +
                                         self.args + [self.cfg],
                                         stdin=subprocess.DEVNULL,
                                         stdout=errf, stderr=errf)
        finally:
            errf.close()
        pxltest._servers.append(self)
        return self

    def stderr(self):
        return read_text(self.stderr_path)

    def stop(self, timeout=20):
        super().stop(timeout)
        bad = log_problems(self.stderr())
        check(not bad, "stderr: " + "\n".join(bad))


class FileServer(LogServer):
    def __init__(self, config, rel="logs/pxl.log", **kw):
        super().__init__(config, **kw)
        os.makedirs(os.path.join(self.dir, os.path.dirname(rel)),
                    exist_ok=True)
        self.log_path = os.path.join(self.dir, rel)


class SyslogServer(LogServer):
    """log() is the datagrams received on a socket bound by the test."""

    def __init__(self, config_fn, **kw):
        self.sock_dir = tmpdir()
        self.sock_path = os.path.join(self.sock_dir, "log.sock")
        self.grams = []
        self.sock = None
        self.bind()
        super().__init__(config_fn(self.sock_path), **kw)

    def bind(self):
        if self.sock is not None:
            self.sock.close()
            os.unlink(self.sock_path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.sock.setblocking(False)

    def datagrams(self):
        while True:
            try:
                self.grams.append(self.sock.recv(8192).decode("utf-8"))
            except BlockingIOError:
                return self.grams

    def log(self):
        return "\n".join(self.datagrams())


# ---- a client whose bytes are counted ------------------------------------

class CountingWS(RawWS):
    """Counts the frame bytes read after the handshake."""

    def __init__(self, port):
        super().__init__(port)
        self.taken = None

    def _take(self, n):
        out = super()._take(n)
        if self.taken is not None:
            self.taken += len(out)
        return out

    def handshake(self, **kw):
        r = super().handshake(**kw)
        self.taken = 0
        return r


def session(port, n):
    """A client sends n masked text frames of an echo route, reads the
    replies, closes with 1000 and reads the close and EOF. Returns (id,
    bytes sent as frames, bytes received as frames, messages received)."""
    ws = CountingWS(port)
    ws.handshake()
    sent = received = 0
    for i in range(n):
        msg = json.dumps({"type": "test", "action": "echo",
                          "data": {"i": i, "pad": "x" * (i * 30)}})
        frame = RawWS.frame(1, msg)
        ws.send(frame)
        sent += len(frame)
        ws.expect_frame(1, None, "reply %d" % i)
        received += 1
    frame = RawWS.frame(8, b"\x03\xe8")
    ws.send(frame)
    sent += len(frame)
    ws.expect_close(1000)
    ws.expect_eof()
    cid = ws.connected["data"]["clientId"]
    ws.close()
    return cid, sent, ws.taken, received + 1  # and the connected frame


def access_lines(text, cid):
    return [x for x in text.splitlines()
            if "client=%s" % cid in x and "msg=access" in x]


# ---- cases ---------------------------------------------------------------

def t_access_counts():
    srv = Server(app_config()).start()
    try:
        cid, sent, received, msgs = session(srv.port, 4)
        lines = wait_until(lambda: access_lines(srv.log(), cid), timeout=5,
                           what="the access line")
        eq(len(lines), 1, "access lines of the client")
        m = re.search(r'level=info client=%s msg=access '
                      r'peer=127\.0\.0\.1:(\d+) duration_ms=(\d+) '
                      r'msgs_in=(\d+) msgs_out=(\d+) bytes_in=(\d+) '
                      r'bytes_out=(\d+) code=(\d+)$' % cid, lines[0])
        check(m is not None, "access line format: %r" % lines[0])
        got = tuple(int(g) for g in m.groups()[2:])
        eq(got, (4, msgs, sent, received, 1000),
           "msgs_in, msgs_out, bytes_in, bytes_out, code")
        check(int(m.group(2)) < 10000, "duration_ms %s" % m.group(2))
    finally:
        srv.stop()


def t_access_json():
    srv = Server(app_config(log_format="json")).start()
    try:
        cid, sent, received, msgs = session(srv.port, 2)

        def record():
            for x in srv.log().splitlines():
                r = json.loads(x)
                if r.get("client") == cid and r.get("msg") == "access":
                    return r
        r = wait_until(record, timeout=5, what="the JSON access line")
        check(re.match(r"^127\.0\.0\.1:\d+$", r["peer"]), "peer %r"
              % r["peer"])
        eq((r["level"], r["msgs_in"], r["msgs_out"], r["bytes_in"],
            r["bytes_out"], r["code"]),
           ("info", 2, msgs, sent, received, 1000), "JSON access fields")
        check(isinstance(r["duration_ms"], int), "duration_ms is a number")
    finally:
        srv.stop()


def t_access_off():
    srv = Server(with_log(app_config(log_level="debug"),
                          {"access": "false"})).start()
    try:
        cid, _, _, _ = session(srv.port, 1)
        wait_until(lambda: "client=%s msg=\"disconnected" % cid in srv.log(),
                   timeout=5, what="the debug disconnect line")
        check(not access_lines(srv.log(), cid),
              "an access line with log.access = false:\n" + srv.log())
    finally:
        srv.stop()


def rotate(srv, lines_before):
    """mv the log away, SIGUSR1; the new file gets new lines (one
    'reopened' line per process), the moved one keeps the old."""
    moved = srv.log_path + ".1"
    os.rename(srv.log_path, moved)
    srv.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: srv.log().count("SIGUSR1: log reopened") ==
               lines_before, timeout=5,
               what="%d 'reopened' lines in the new file" % lines_before)
    cid, _, _, _ = session(srv.port, 1)
    wait_until(lambda: access_lines(srv.log(), cid), timeout=5,
               what="the second client's access line in the new file")
    old = read_text(moved)
    check("listening on" in old, "the moved file lost its lines")
    check(cid not in old, "a new line went to the moved file")
    check("listening on" not in srv.log(), "old lines in the new file")
    eq(oct(os.stat(srv.log_path).st_mode & 0o777), "0o640",
       "the new file's mode")


def t_file_and_rotation():
    srv = FileServer(with_log(app_config(log_level="debug"),
                              {"destination": '"file"',
                               "file": '"logs/pxl.log"'})).start()
    try:
        cid, _, _, _ = session(srv.port, 1)
        wait_until(lambda: access_lines(srv.log(), cid), timeout=5,
                   what="the access line in the file")
        check('msg="connected from 127.0.0.1"' in srv.log(),
              "no debug connect line in the file")
        eq(srv.stderr(), "", "stderr with a log file")
        rotate(srv, 1)
    finally:
        srv.stop()


def t_cluster_rotation():
    srv = FileServer(with_log(app_config(workers=2),
                              {"destination": '"file"',
                               "file": '"logs/pxl.log"'}),
                     workers=2).start()
    try:
        rotate(srv, 3)  # the master and both workers
        for who in ("master", "0", "1"):
            check(re.search(r"worker=%s msg=\"SIGUSR1: log reopened\"" % who,
                            srv.log()), "no reopen line of worker=%s:\n%s"
                  % (who, srv.log()))
    finally:
        srv.stop()


def syslog_config(fmt):
    def make(path):
        return with_log(app_config(log_format=fmt, name="logapp"),
                        {"destination": '"syslog"',
                         "syslog_socket": '"%s"' % path,
                         "syslog_facility": '"local3"'})
    return make


def t_syslog():
    srv = SyslogServer(syslog_config("logfmt")).start()
    try:
        pid = srv.proc.pid
        first = srv.datagrams()[0]
        # local3 = 19: notice 19*8+5, info 19*8+6.
        check(re.match(r'^<157>logapp\[%d\]: level=notice msg="app '
                       r'\\"logapp\\" listening on ' % pid, first),
              "first datagram %r" % first)
        check("ts=" not in first and not first.endswith("\n"),
              "a syslog line has no timestamp and no newline: %r" % first)
        cid, _, _, _ = session(srv.port, 1)
        line = wait_until(lambda: access_lines(srv.log(), cid), timeout=5,
                          what="the access datagram")[0]
        check(line.startswith("<158>logapp[%d]: level=info client=%s "
                              "msg=access " % (pid, cid)), repr(line))
        # syslog restarts: a new socket at the same path.
        srv.bind()
        cid, _, _, _ = session(srv.port, 1)
        wait_until(lambda: access_lines(srv.log(), cid), timeout=5,
                   what="an access datagram on the new socket")
        eq(srv.stderr(), "", "stderr with syslog")
    finally:
        srv.stop()


def t_syslog_json():
    srv = SyslogServer(syslog_config("json")).start()
    try:
        pid = srv.proc.pid
        first = srv.datagrams()[0]
        prefix = "<157>logapp[%d]: " % pid
        check(first.startswith(prefix), repr(first))
        r = json.loads(first[len(prefix):])
        check("ts" not in r and r["level"] == "notice", repr(r))
    finally:
        srv.stop()


def check_t(text):
    """pxl-serve -t on an app file of text: (its path, exit code, stderr)."""
    path = os.path.join(tmpdir(), "app.cfg")
    with open(path, "w") as f:
        f.write(text)
    rc, _, err = run_serve(["-t", path])
    return path, rc, err


def t_check_errors():
    path, rc, err = check_t('name = "x";\nlog = {\n  destination = "file";'
                            '\n  file = "nodir/x.log";\n};\n')
    eq((rc, err), (1, "%s:4: log.file: cannot append to %s/nodir/x.log: "
                      "No such file or directory\n"
                   % (path, os.path.dirname(path))),
       "-t with a log file in a missing folder")
    path, rc, err = check_t('name = "x";\nlog = {\n  destination = "file";'
                            '\n};\n')
    eq((rc, err), (1, "%s:3: log.destination: file needs log.file\n"
                   % path), "-t with destination file and no log.file")
    path, rc, err = check_t('name = "x";\nlog = {\n  file = "x.log";\n'
                            '  syslog_facility = "local9";\n};\n')
    eq(rc, 1, "-t's exit code")
    check("%s:3: log.file: is only for log.destination = \"file\"\n" % path
          in err and "%s:4: log.syslog_facility: \"local9\" must be one "
          "of" % path in err, "-t's errors:\n" + err)


def t_start_fails_on_unopenable_file():
    """-t passes (the folder is writable) but the file cannot be opened
    at start: pxl-serve says why and exits 1."""
    d = tmpdir()
    os.mkdir(os.path.join(d, "x.log"))  # a folder where the file would be
    path = os.path.join(d, "app.cfg")
    with open(path, "w") as f:
        f.write(with_log(app_config(), {"destination": '"file"',
                                        "file": '"x.log"'}))
    t0 = time.monotonic()
    rc, out, err = run_serve([path])
    eq((rc, err.endswith("log.file: cannot open %s/x.log for appending: "
                         "Is a directory\n" % d)), (1, True),
       "exit code and stderr:\n" + err)
    check(time.monotonic() - t0 < 10, "slow failure")


def main():
    C = tap.case
    C("access line: peer, msgs and frame bytes each way, close code 1000",
      t_access_counts)
    C("access line in json: numbers as JSON numbers", t_access_json)
    C("log.access = false: no access line", t_access_off)
    C("log.file: lines in the file, SIGUSR1 reopens it after a mv",
      t_file_and_rotation)
    C("cluster: SIGUSR1 to the master reopens its log and the workers'",
      t_cluster_rotation)
    C("syslog: <PRI>TAG[PID]: line datagrams, reconnect to a new socket",
      t_syslog)
    C("syslog json: the JSON line without ts after the header",
      t_syslog_json)
    C("-t: log.file in a missing folder, file without log.file, log.file "
      "without file, bad facility", t_check_errors)
    C("start: a log file that cannot be opened stops pxl-serve",
      t_start_fails_on_unopenable_file)


tap.run(main)
