/*
 * wsc_reconnect - a driver for the outbound client (pxl_wsc), used by
 * tests/integration/test_wsc.py: it connects to a URL, prints every
 * callback as one line on stdout, and obeys commands read from stdin.
 * It owns no logic of its own beyond turning lines into API calls.
 *
 *   usage: wsc_reconnect [-r max_retries] [-d first_delay_ms]
 *                        [-C ca_file] [-k] [-T token] URL
 *   stdout: open ID | close CODE REASON | reconnecting N DELAY_MS |
 *           failed N | reply TYPE/ACTION RID DATA | message TYPE/ACTION DATA
 *           (or "N bytes" over 1000 bytes)
 *   stdin:  echo TEXT | close [CODE] | free | quit
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include <pxl/pxl.h>

struct drv {
        struct event_base *base;
        struct pxl_wsc *w;
        struct event *in;
        int next_rid;
};

static void out(const char *fmt, ...) PXL_PRINTF(1, 2);

static void out(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
}

static void on_open(struct pxl_wsc *w, void *arg)
{
        (void)arg;
        out("open %s", pxl_wsc_client_id(w));
}

static void on_close(struct pxl_wsc *w, int code, const char *reason, void *arg)
{
        (void)w;
        (void)arg;
        out("close %d %s", code, reason);
}

static void on_reconnecting(struct pxl_wsc *w, unsigned attempt,
                            unsigned delay_ms, void *arg)
{
        (void)w;
        (void)arg;
        out("reconnecting %u %u", attempt, delay_ms);
}

static void on_failed(struct pxl_wsc *w, unsigned attempts, void *arg)
{
        (void)w;
        (void)arg;
        out("failed %u", attempts);
}

static void on_echo(struct pxl_wsc *w, const struct pxl_msg *m, void *arg)
{
        const char *d, *rid;
        size_t dl, rl;

        (void)w;
        (void)arg;
        d = pxl_wsc_msg_data_json(m, &dl);
        rid = pxl_wsc_msg_request_id(m, &rl);
        out("reply %s/%s %.*s %.*s%s", pxl_msg_type(m), pxl_msg_action(m),
            (int)rl, rid ? rid : "-", (int)dl, d ? d : "-",
            pxl_wsc_msg_is_reply(m) ? "" : " (not a reply)");
}

static void on_message(struct pxl_wsc *w, const struct pxl_msg *m, void *arg)
{
        struct json_object *data;
        size_t len;

        (void)w;
        (void)arg;
        pxl_msg_payload(m, &len);
        if (len > 1000) {
                out("message %s/%s %zu bytes", pxl_msg_type(m),
                    pxl_msg_action(m), len);
                return;
        }
        data = pxl_msg_data(m);
        out("message %s/%s %s", pxl_msg_type(m), pxl_msg_action(m),
            data ? json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN)
                 : "-");
}

static const struct pxl_wsc_route routes[] = {
        {"bench", "echo", on_echo},
        PXL_WSC_ROUTE_END,
};

static void command(struct drv *d, char *line)
{
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "echo ", 5) == 0) {
                struct json_object *data = json_object_new_string(line + 5);
                struct json_object *rid = json_object_new_int(++d->next_rid);
                int rc = d->w ? pxl_wsc_send(d->w, "bench", "echo", data, rid)
                              : PXL_ECLOSED;

                json_object_put(data);
                json_object_put(rid);
                out("sent %d", rc);
        } else if (strncmp(line, "close", 5) == 0) {
                int code = line[5] ? atoi(line + 6) : PXL_CLOSE_NORMAL;

                out("closing %d",
                    d->w ? pxl_wsc_close(d->w, code, "bye") : PXL_ECLOSED);
        } else if (strcmp(line, "free") == 0) {
                pxl_wsc_free(d->w);
                d->w = NULL;
                out("freed");
        } else if (strcmp(line, "quit") == 0) {
                event_base_loopexit(d->base, NULL);
        } else {
                out("unknown command %s", line);
        }
}

static void stdin_cb(evutil_socket_t fd, short what, void *arg)
{
        struct drv *d = arg;
        char buf[512];
        ssize_t n;

        (void)what;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0) {
                event_base_loopexit(d->base, NULL);
                return;
        }
        buf[n] = '\0';
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
                command(d, line);
}

int main(int argc, char **argv)
{
        struct pxl_wsc_options o;
        struct drv d;
        char err[256];
        int opt, rc = 1;

        memset(&o, 0, sizeof(o));
        memset(&d, 0, sizeof(d));
        o.max_retries = 5;
        while ((opt = getopt(argc, argv, "r:d:C:kT:")) != -1) {
                if (opt == 'r')
                        o.max_retries = atoi(optarg);
                else if (opt == 'd')
                        o.retry_delay_ms = (unsigned)atoi(optarg);
                else if (opt == 'C')
                        o.tls_ca_file = optarg;
                else if (opt == 'k')
                        o.tls_insecure = true;
                else if (opt == 'T')
                        o.token = optarg;
                else
                        return 2;
        }
        if (optind != argc - 1) {
                fprintf(stderr, "usage: wsc_reconnect [-r retries] "
                                "[-d delay_ms] [-C ca] [-k] [-T token] "
                                "URL\n");
                return 2;
        }
        o.url = argv[optind];
        o.routes = routes;
        o.on_open = on_open;
        o.on_close = on_close;
        o.on_reconnecting = on_reconnecting;
        o.on_reconnect_failed = on_failed;
        o.on_message = on_message;
        o.arg = &d;
        d.base = event_base_new();
        if (d.base == NULL)
                return 1;
        d.w = pxl_wsc_new(d.base, &o, err, sizeof(err));
        if (d.w == NULL) {
                out("error %s", err);
                goto out;
        }
        out("started");
        /* Commands are optional: /dev/null cannot be polled. */
        d.in = event_new(d.base, 0, EV_READ | EV_PERSIST, stdin_cb, &d);
        if (d.in != NULL && event_add(d.in, NULL) < 0) {
                event_free(d.in);
                d.in = NULL;
        }
        event_base_dispatch(d.base);
        rc = 0;
out:
        pxl_wsc_free(d.w);
        if (d.in)
                event_free(d.in);
        event_base_free(d.base);
        return rc;
}
