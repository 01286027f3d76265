/*
 * pxl_urlpath.c - request paths to safe relative file paths, content
 * types and HTTP dates (pure; see pxl_urlpath.h). The file system is
 * not consulted: the static server opens the result beneath its folder
 * (openat2 RESOLVE_BENEATH), so symlinks are the kernel's to check.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pxl_text.h"
#include "pxl_urlpath.h"

/* A decoded segment of n bytes is usable as a file name. */
static bool segment_ok(const char *s, size_t n)
{
        if (n == 2 && s[0] == '.' && s[1] == '.')
                return false;
        /* Hidden files (.git, .env) are not served; ".well-known" is. */
        if (s[0] == '.' && !(n == 11 && memcmp(s, ".well-known", 11) == 0))
                return false;
        return true;
}

int pxl_urlpath_resolve(const char *path, size_t len, char *out, size_t cap,
                        bool *dir_index)
{
        size_t o = 0, seg = 0; /* out: length, start of the segment */

        *dir_index = false;
        if (cap == 0)
                return 414;
        if (len == 0 || path[0] != '/')
                return 400;
        for (size_t i = 1; i <= len; i++) {
                unsigned char c;

                if (i == len || path[i] == '/') {
                        size_t n = o - seg;

                        /* "" and "." segments: nothing to keep. */
                        if (n == 0 || (n == 1 && out[seg] == '.')) {
                                o = seg;
                        } else if (!segment_ok(out + seg, n)) {
                                return 400;
                        } else if (i < len) {
                                if (o + 1 >= cap)
                                        return 414;
                                out[o++] = '/';
                                seg = o;
                        }
                        continue;
                }
                c = (unsigned char)path[i];
                if (c == '%') {
                        int hi, lo;

                        if (i + 2 >= len)
                                return 400;
                        hi = pxl_hexval(path[i + 1]);
                        lo = pxl_hexval(path[i + 2]);
                        if (hi < 0 || lo < 0)
                                return 400;
                        c = (unsigned char)(hi << 4 | lo);
                        /* An encoded separator is a name with a slash. */
                        if (c == '/' || c == '\\')
                                return 400;
                        i += 2;
                }
                if (c < 0x20 || c == 0x7f || c == '\\')
                        return 400;
                if (o + 1 >= cap)
                        return 414;
                out[o++] = (char)c;
        }
        /* A path naming a folder ("/", "/docs/"): its index. */
        if (o == 0 || (o > 0 && out[o - 1] == '/')) {
                static const char index[] = "index.html";

                if (o + sizeof(index) > cap)
                        return 414;
                memcpy(out + o, index, sizeof(index));
                *dir_index = true;
                return 0;
        }
        out[o] = '\0';
        return 0;
}

const char *pxl_urlpath_type(const char *name)
{
        static const struct {
                const char *ext, *type;
        } types[] = {
                {"html", "text/html; charset=utf-8"},
                {"htm", "text/html; charset=utf-8"},
                {"css", "text/css; charset=utf-8"},
                {"js", "text/javascript; charset=utf-8"},
                {"mjs", "text/javascript; charset=utf-8"},
                {"json", "application/json"},
                {"map", "application/json"},
                {"txt", "text/plain; charset=utf-8"},
                {"md", "text/markdown; charset=utf-8"},
                {"svg", "image/svg+xml"},
                {"png", "image/png"},
                {"jpg", "image/jpeg"},
                {"jpeg", "image/jpeg"},
                {"gif", "image/gif"},
                {"webp", "image/webp"},
                {"ico", "image/x-icon"},
                {"avif", "image/avif"},
                {"woff", "font/woff"},
                {"woff2", "font/woff2"},
                {"wasm", "application/wasm"},
                {"pdf", "application/pdf"},
                {"xml", "application/xml"},
                {"webmanifest", "application/manifest+json"},
        };
        const char *slash = strrchr(name, '/');
        const char *dot = strrchr(slash ? slash + 1 : name, '.');

        if (dot != NULL)
                for (size_t i = 0; i < sizeof(types) / sizeof(*types); i++)
                        if (strcasecmp(dot + 1, types[i].ext) == 0)
                                return types[i].type;
        return "application/octet-stream";
}

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                 "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void pxl_http_date(time_t t, char out[30])
{
        char buf[64]; /* room for any int the compiler imagines */
        struct tm tm;

        gmtime_r(&t, &tm);
        /* Not strftime: its %a and %b follow the locale. */
        (void)snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                       days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                       tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        memcpy(out, buf, 29);
        out[29] = '\0';
}

static int digits(const char *s, size_t n)
{
        int v = 0;

        for (size_t i = 0; i < n; i++) {
                if (!pxl_is_digit(s[i]))
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        return v;
}

time_t pxl_http_date_parse(const char *s, size_t len)
{
        /* "Sun, 06 Nov 1994 08:49:37 GMT" */
        struct tm tm = {0};
        int mon = -1;

        if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' ||
            s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' ||
            memcmp(s + 25, " GMT", 4) != 0)
                return -1;
        for (int i = 0; i < 12; i++)
                if (memcmp(s + 8, months[i], 3) == 0)
                        mon = i;
        tm.tm_mday = digits(s + 5, 2);
        tm.tm_year = digits(s + 12, 4) - 1900;
        tm.tm_hour = digits(s + 17, 2);
        tm.tm_min = digits(s + 20, 2);
        tm.tm_sec = digits(s + 23, 2);
        if (mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_year < 70 ||
            tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 ||
            tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60)
                return -1;
        tm.tm_mon = mon;
        return timegm(&tm);
}
