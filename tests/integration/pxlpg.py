"""
pxlpg - a throwaway PostgreSQL server for the integration tests
(tests/pg/pgctl), killed with the other servers when a test's deadline
expires: role pxl (password pxl) owns database pxl.
"""
import os
import re
import subprocess
import sys

import pxltest
from pxltest import check, eq, tmpdir

PGCTL = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(
    __file__)), "..", "pg", "pgctl"))
PASSWORD_ENV = "PXLTEST_PG_PASSWORD"


class PG:
    def __init__(self):
        root = tmpdir()
        os.chmod(root, 0o711)  # the user postgres goes through it
        self.dir = os.path.join(root, "pg")
        self.port = None
        self.proc = self  # for pxltest.kill_all_servers
        self.up = False
        self.ndb = 0

    def ctl(self, *args, timeout=90):
        p = subprocess.run([sys.executable, PGCTL] + list(args) + [self.dir],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        check(p.returncode == 0, "pgctl %s failed (exit %d): %s%s"
              % (" ".join(args), p.returncode, err, out))
        return out

    def start(self):
        if self not in pxltest._servers:
            pxltest._servers.append(self)
        out = self.ctl("start").strip()
        check(re.fullmatch(r"\d+", out), "pgctl start printed %r, not a port"
              % out)
        if self.port is not None:
            eq(int(out), self.port, "port after a restart")
        self.port = int(out)
        self.up = True
        os.environ[PASSWORD_ENV] = "pxl"

    def stop(self):
        self.ctl("stop")
        self.up = False

    def destroy(self):
        self.ctl("destroy")
        self.up = False
        if self in pxltest._servers:
            pxltest._servers.remove(self)

    # pxltest.kill_all_servers' view: a process that may be running
    def poll(self):
        return None if self.up else 0

    def kill(self):
        subprocess.run([sys.executable, PGCTL, "destroy", self.dir],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        self.up = False

    def wait(self, timeout=None):
        return 0

    def psql(self, sql, db="pxl"):
        """Run sql as the superuser (outside pxl): psql -At's output."""
        p = subprocess.run([sys.executable, PGCTL, "psql", self.dir, "-d", db,
                            "-At", "-c", sql], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        check(p.returncode == 0, "psql %r: %s" % (sql, p.stderr.decode()))
        return p.stdout.decode().strip()

    def new_db(self):
        """A new empty database owned by pxl: its name."""
        self.ndb += 1
        name = "pxl_t%d" % self.ndb
        self.psql("CREATE DATABASE %s OWNER pxl" % name)
        return name

    def database_group(self):
        """The app file's database group for role pxl on database pxl."""
        return ('database = { driver = "postgresql"; url = "hostaddr='
                '127.0.0.1 port=%d dbname=pxl user=pxl"; password_env = '
                '"%s"; connect_timeout = 5; };' % (self.port, PASSWORD_ENV))
