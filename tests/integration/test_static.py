"""
test_static - static files on the WebSocket listener (issue 15,
static.root): GET and HEAD with Content-Type, Content-Length, ETag and
Last-Modified; 304 for If-None-Match and If-Modified-Since; index.html
for folders and a 301 to the folder's slash; 404 for what is missing,
405 for other methods; and nothing served from outside the folder, for
every escape attempt: "..", %2e%2e, encoded slashes and backslashes,
NUL, control characters, hidden files, symlinks pointing out, overlong
paths. /pxl.js is the client library pxl-serve comes with. The
WebSocket endpoint keeps working beside it, and -t names a missing
folder with its line.
"""
import os
import socket
import sys

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, Server, check, check_text, eq,  # noqa: E402
                     tmpdir)

tap = TAP()
tap.deadline(60)

SECRET = "the secret outside the folder"


def http(port, request):
    """Send raw request bytes, read until the server closes: (status,
    headers dict (lower-case names), body bytes)."""
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def get(port, path, method="GET", extra=""):
    return http(port, ("%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n"
                       % (method, path, extra)).encode("latin-1"))


def site():
    """A folder to serve, and a secret beside it (outside)."""
    top = tmpdir()
    web = os.path.join(top, "web")
    os.makedirs(os.path.join(web, "docs"))
    os.makedirs(os.path.join(web, "empty"))
    with open(os.path.join(top, "secret.txt"), "w") as f:
        f.write(SECRET)
    files = {"index.html": "<!doctype html><title>home</title>\n",
             "app.js": "export const x = 1;\n",
             "style.css": "body { color: #222; }\n",
             "docs/index.html": "<p>docs</p>\n",
             "data.bin": "\x00\x01\x02",
             ".env": "SECRET=1\n",
             "big.txt": "x" * 5000}
    for name, text in files.items():
        with open(os.path.join(web, name), "w") as f:
            f.write(text)
    os.symlink(os.path.join(top, "secret.txt"), os.path.join(web, "out.txt"))
    os.symlink("../secret.txt", os.path.join(web, "rel.txt"))
    os.symlink("app.js", os.path.join(web, "alias.js"))
    return top, web, files


def t_serve(srv, files):
    p = srv.port
    st, h, body = get(p, "/")
    eq((st, body.decode()), (200, files["index.html"]), "GET /")
    eq(h["content-type"], "text/html; charset=utf-8", "type of /")
    eq(int(h["content-length"]), len(body), "Content-Length")
    check("etag" in h and "last-modified" in h, "ETag and Last-Modified: %r"
          % h)
    for path, typ in (("/app.js", "text/javascript; charset=utf-8"),
                      ("/style.css", "text/css; charset=utf-8"),
                      ("/data.bin", "application/octet-stream")):
        st, h, body = get(p, path)
        eq((st, h["content-type"], body.decode("latin-1")),
           (200, typ, files[path[1:]]), path)
    st, h, body = get(p, "/docs/")
    eq((st, body.decode()), (200, files["docs/index.html"]), "a folder's "
       "index.html")
    st, h, _ = get(p, "/docs?x=1")
    eq((st, h.get("location")), (301, "/docs/?x=1"), "a folder without "
       "its slash")
    st, h, body = get(p, "/app.js", "HEAD")
    eq((st, body, int(h["content-length"])), (200, b"", len(files["app.js"])),
       "HEAD: the head, no body")
    st, h, _ = get(p, "/app.js")
    etag, modified = h["etag"], h["last-modified"]
    eq(get(p, "/app.js", extra="If-None-Match: %s\r\n" % etag)[0], 304,
       "If-None-Match with the ETag")
    eq(get(p, "/app.js", extra="If-None-Match: \"x\", W/%s\r\n" % etag)[0],
       304, "If-None-Match in a list, weak")
    eq(get(p, "/app.js", extra="If-None-Match: \"other\"\r\n")[0], 200,
       "If-None-Match with another ETag")
    eq(get(p, "/app.js", extra="If-Modified-Since: %s\r\n" % modified)[0],
       304, "If-Modified-Since the Last-Modified")
    eq(get(p, "/app.js", extra="If-Modified-Since: Thu, 01 Jan 1970 "
           "00:00:01 GMT\r\n")[0], 200, "If-Modified-Since long ago")
    eq(get(p, "/alias.js")[2].decode(), files["app.js"], "a symlink that "
       "stays inside")
    eq(get(p, "/nope.html")[0], 404, "missing file")
    eq(get(p, "/empty/")[0], 404, "a folder without index.html")
    eq(get(p, "/big.txt")[0], 404, "a file over static.max_file_size")
    for m in ("POST", "PUT", "DELETE", "OPTIONS"):
        st, h, _ = get(p, "/index.html", m)
        eq((st, h.get("allow")), (405, "GET, HEAD"), m)


def t_escapes(srv):
    p = srv.port
    attempts = ["/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
                "/docs/../../secret.txt", "/docs/%2e%2e/%2e%2e/secret.txt",
                "/..%2fsecret.txt", "/..%2Fsecret.txt", "/..%5csecret.txt",
                "/..\\secret.txt", "/out.txt", "/rel.txt", "/.env",
                "/%2eenv", "/index.html%00.js", "/%00", "/a%0a",
                "/" + "a/" * 3000 + "x", "/%zz", "//../secret.txt"]
    for a in attempts:
        st, _, body = get(p, a)
        check(st in (400, 403, 404, 414), "%r: status %d" % (a[:60], st))
        check(SECRET.encode() not in body, "%r served the secret" % a[:60])
    # A raw NUL in the request line is a malformed request.
    st, _, body = http(p, b"GET /index.html\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
    eq(st, 400, "a NUL in the request line")


def t_websocket_beside(srv):
    """The WebSocket path still upgrades; an upgrade elsewhere is 404."""
    import base64
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode()
    with socket.create_connection(("127.0.0.1", srv.port), 10) as s:
        s.sendall(req)
        eq(s.recv(12), b"HTTP/1.1 101", "the upgrade on /ws")
    eq(http(srv.port, req.replace(b"/ws", b"/index.html"))[0], 404,
       "an upgrade on a file's path")


def t_pxl_js(srv):
    """/pxl.js is the client library pxl-serve comes with (PXL_JS in the
    test environment), whatever the folder holds."""
    with open(os.environ["PXL_JS"], "rb") as f:
        lib = f.read()
    st, h, body = get(srv.port, "/pxl.js")
    eq((st, h["content-type"], body), (200, "text/javascript; charset=utf-8",
                                       lib), "GET /pxl.js")
    eq(get(srv.port, "/pxl.js", extra="If-None-Match: %s\r\n"
           % h["etag"])[0], 304, "/pxl.js If-None-Match")
    eq(get(srv.port, "/pxl.js", "POST")[0], 405, "POST /pxl.js")


def t_missing_folder():
    rc, out, err, path = check_text('name = "x";\nstatic = {\n  root = '
                                    '"nowhere";\n};\n')
    eq((rc, err), (1, "%s:3: static.root: %s/nowhere is not a folder: No "
                      "such file or directory\n"
                   % (path, os.path.dirname(path))), "-t of a missing folder")


def main():
    top, web, files = site()
    srv = Server('name = "static";\nlisten = { host = "127.0.0.1"; port = 0; '
                 '};\nstatic = { root = "%s"; max_file_size = 4096; };\n'
                 % web)
    try:
        srv.start()
        tap.case("GET and HEAD: types, lengths, ETag, 304, index.html, 301, "
                 "404, 405", t_serve, srv, files)
        tap.case("escape attempts: .., %2e%2e, encoded separators, symlinks "
                 "out, hidden files, NUL, overlong", t_escapes, srv)
        tap.case("the WebSocket endpoint beside the files", t_websocket_beside,
                 srv)
        tap.case("/pxl.js: the client library, 200 and 304", t_pxl_js, srv)
        tap.case("-t: a static.root that is not a folder, with its line",
                 t_missing_folder)
    finally:
        srv.stop_case(tap)


tap.run(main)
