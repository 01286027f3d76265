"""
test_systemd - pxl-serve speaks systemd's sd_notify protocol itself
(issue 14): with NOTIFY_SOCKET naming a datagram socket (a path, or an
abstract name starting with '@') it sends READY=1 with a STATUS once it
listens, and STOPPING=1 at SIGTERM; in a cluster the master alone speaks,
and READY=1 comes only after both workers listen. Without NOTIFY_SOCKET
nothing changes. The unit file is built with the installed pxl-serve's
path and has what Type=notify needs.
"""
import os
import re
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, Server, app_config, check, eq,  # noqa: E402
                     tmpdir, wait_until)

tap = TAP()
tap.deadline(90)


class Notify:
    """A socket bound like systemd's: a path, or an abstract name."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "pxltest-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.value = "@" + name
        else:
            self.value = os.path.join(tmpdir(), "notify.sock")
            self.sock.bind(self.value)
        self.sock.setblocking(False)
        self.got = []

    def messages(self):
        while True:
            try:
                data, _ = self.sock.recvfrom(4096)
            except BlockingIOError:
                return self.got
            self.got.append(data.decode("utf-8"))

    def close(self):
        self.sock.close()


def launch(server, notify):
    """Start server with NOTIFY_SOCKET set for it (and only for it)."""
    os.environ["NOTIFY_SOCKET"] = notify.value
    try:
        server.launch()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    return server


def ready_after(srv, notify, listening):
    """Waits for READY=1; the log says `listening` (a list of regexes)
    by then, and no other message came before it."""
    def ready():
        msgs = notify.messages()
        if msgs:
            return msgs, srv.log()
    msgs, log_then = wait_until(ready, timeout=20, what="a READY=1")
    m = re.match(r"^READY=1\nSTATUS=(.*)$", msgs[0])
    check(m is not None, "the first message is %r" % msgs[0])
    for pat in listening:
        check(re.search(pat, log_then), "READY=1 came before the log said "
              "%r:\n%s" % (pat, log_then))
    return m.group(1)


def stopping(srv, notify):
    srv.stop()
    msgs = notify.messages()
    eq(msgs[1:], ["STOPPING=1\nSTATUS=stopping"],
       "messages after READY=1")


def t_single(abstract):
    notify = Notify(abstract)
    srv = launch(Server(app_config()), notify)
    try:
        status = ready_after(srv, notify, [r"listening on 127\.0\.0\.1:\d+"])
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)",
                             srv.log()).group(1))
        eq(status, "listening on 127.0.0.1:%d/ws" % port, "STATUS")
        socket.create_connection(("127.0.0.1", port), 5).close()
        stopping(srv, notify)
    finally:
        notify.close()


def t_reload():
    """SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 once the
    reload is done (refused or not)."""
    notify = Notify()
    srv = launch(Server(app_config()), notify)
    try:
        ready_after(srv, notify, [r"listening on"])
        for n in (1, 2):
            if n == 2:  # a refused reload ends with READY=1 too
                with open(srv.cfg, "a") as f:
                    f.write("bogus = 1;\n")
            srv.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: len(notify.messages()) >= 1 + 2 * n,
                       timeout=10, what="RELOADING=1 and READY=1")
            msgs = notify.messages()[-2:]
            check(re.match(r"^RELOADING=1\nMONOTONIC_USEC=\d+$", msgs[0]),
                  "the reload's first message is %r" % msgs[0])
            eq(msgs[1], "READY=1", "the reload's last message")
        check("reload refused" in srv.log(), "the second reload was not "
              "refused:\n" + srv.log())
        srv.terminate()
        eq(srv.wait(20), 0, "exit code")
    finally:
        notify.close()


def t_cluster():
    notify = Notify()
    srv = launch(Server(app_config(workers=2), workers=2), notify)
    try:
        status = ready_after(
            srv, notify,
            [r"worker=0 msg=\"app .* listening on",
             r"worker=1 msg=\"app .* listening on",
             r"worker=master msg=\"cluster of 2 workers listening"])
        check(re.match(r"^2 workers listening on 127\.0\.0\.1:\d+/ws$",
                       status), "STATUS %r" % status)
        time.sleep(0.3)  # a worker's own READY=1 would be here by now
        eq(len(notify.messages()), 1, "messages while running: %r"
           % notify.messages())
        stopping(srv, notify)
    finally:
        notify.close()


def t_no_socket():
    """An unusable NOTIFY_SOCKET changes nothing: the server serves."""
    os.environ["NOTIFY_SOCKET"] = os.path.join(tmpdir(), "nobody-here")
    try:
        srv = Server(app_config()).start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    srv.stop()


def t_unit_file():
    builddir = os.environ["PXL_BUILDDIR"]
    path = os.path.join(builddir, "scripts", "pxl-serve@.service")
    with open(path) as f:
        text = f.read()
    keys = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    eq(keys["Type"], "notify", "Type")
    check(re.match(r"^/\S+/pxl-serve %f$", keys["ExecStart"]),
          "ExecStart=%s" % keys["ExecStart"])
    eq(keys["ExecReload"], "/bin/kill -HUP $MAINPID", "ExecReload")
    for k, v in (("KillMode", "mixed"), ("Restart", "on-failure"),
                 ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
                 ("ProtectHome", "yes"), ("ProtectSystem", "full")):
        eq(keys.get(k), v, k)
    check(int(keys["LimitNOFILE"]) >= 20000, "LimitNOFILE")


def main():
    C = tap.case
    C("one process: READY=1 with STATUS once listening, STOPPING=1 at "
      "SIGTERM", t_single, False)
    C("an abstract NOTIFY_SOCKET (@name)", t_single, True)
    C("cluster: the master's READY=1 after both workers listen, nothing "
      "from the workers", t_cluster)
    C("SIGHUP: RELOADING=1 then READY=1, for a good and a refused file",
      t_reload)
    C("a NOTIFY_SOCKET nobody reads: the server starts and stops as usual",
      t_no_socket)
    C("pxl-serve@.service: Type=notify, ExecStart, ExecReload, hardening",
      t_unit_file)


tap.run(main)
