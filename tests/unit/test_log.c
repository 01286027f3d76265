/*
 * test_log.c - the pure parts of the logger and the readiness protocol:
 * a line in logfmt and JSON, with and without a timestamp, the syslog
 * header's priority, tag and pid, text and number fields, a cut line;
 * facility names; settings out of range; threads logging while the
 * destination changes and reopens (no line lost, cut or mixed); the
 * NOTIFY_SOCKET address (path and abstract) and the
 * RELOADING message.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pxl_log.h"
#include "pxl_notify.h"

static char buf[4096];

static const char *format(const struct pxl_log_line *l)
{
        size_t n = pxl_log_format_line(buf, sizeof(buf), l);

        assert_true(n < sizeof(buf));
        buf[n] = '\0';
        return buf;
}

static const struct pxl_log_text texts[] = {{"peer", "10.0.0.5:51234"},
                                            {"note", "two words"}};
static const struct pxl_log_field fields[] = {{"msgs_in", false, 3, 0},
                                              {"ratio", true, 0, 41.6}};

static void test_logfmt(void **state)
{
        struct pxl_log_line l = {.level = PXL_LOG_INFO,
                                 .worker = 2,
                                 .ts = "T",
                                 .client = "c1",
                                 .msg = "access",
                                 .texts = texts,
                                 .ntexts = 2,
                                 .fields = fields,
                                 .nfields = 2};

        (void)state;
        assert_string_equal(format(&l),
                            "ts=T level=info worker=2 client=c1 msg=access "
                            "peer=10.0.0.5:51234 note=\"two words\" "
                            "msgs_in=3 ratio=42\n");
        l.worker = PXL_LOG_WORKER_MASTER;
        l.ntexts = l.nfields = 0;
        l.client = NULL;
        l.plugin = "chat";
        l.msg = "say \"hi\"";
        assert_string_equal(format(&l), "ts=T level=info worker=master "
                                        "plugin=chat msg=\"say \\\"hi\\\"\"\n");
}

static void test_json(void **state)
{
        struct pxl_log_line l = {.level = PXL_LOG_ERR,
                                 .format = PXL_LOG_JSON,
                                 .worker = -1,
                                 .ts = "T",
                                 .client = "c1",
                                 .msg = "access",
                                 .texts = texts,
                                 .ntexts = 1,
                                 .fields = fields,
                                 .nfields = 1};

        (void)state;
        assert_string_equal(format(&l),
                            "{\"ts\":\"T\",\"level\":\"err\",\"client\":\"c1\","
                            "\"msg\":\"access\",\"peer\":\"10.0.0.5:51234\","
                            "\"msgs_in\":3}\n");
}

static void test_syslog(void **state)
{
        struct pxl_log_line l = {.level = PXL_LOG_WARN,
                                 .worker = -1,
                                 .facility = 3,
                                 .pid = 42,
                                 .syslog_tag = "chat",
                                 .msg = "m"};

        (void)state;
        /* daemon (3) * 8 + warning (4); no timestamp, no newline. */
        assert_string_equal(format(&l), "<28>chat[42]: level=warn msg=m");
        l.level = PXL_LOG_DEBUG;
        l.facility = 23; /* local7 */
        l.format = PXL_LOG_JSON;
        assert_string_equal(
                format(&l),
                "<191>chat[42]: {\"level\":\"debug\",\"msg\":\"m\"}");
        l.level = PXL_LOG_ERR;
        l.facility = 0;
        assert_int_equal(strncmp(format(&l), "<3>", 3), 0);
}

static void test_long_line_is_cut(void **state)
{
        static char big[8000];
        struct pxl_log_line l = {.level = PXL_LOG_INFO,
                                 .worker = -1,
                                 .msg = "m",
                                 .texts = texts,
                                 .ntexts = 1};
        struct pxl_log_text t = {"big", big};
        size_t n;

        (void)state;
        memset(big, 'x', sizeof(big) - 1);
        l.texts = &t;
        n = pxl_log_format_line(buf, sizeof(buf), &l);
        assert_int_equal(n, sizeof(buf));
        assert_int_equal(buf[n - 1], '\n');
}

static void test_facilities(void **state)
{
        (void)state;
        assert_int_equal(pxl_log_facility_from_name("daemon"), 3);
        assert_int_equal(pxl_log_facility_from_name("local0"), 16);
        assert_int_equal(pxl_log_facility_from_name("local7"), 23);
        assert_int_equal(pxl_log_facility_from_name("authpriv"), 10);
        assert_int_equal(pxl_log_facility_from_name("local8"), -1);
        assert_int_equal(pxl_log_facility_from_name(""), -1);
}

static void test_bad_settings(void **state)
{
        struct pxl_log_settings ls = {.level = PXL_LOG_INFO,
                                      .dest = PXL_LOG_TO_FILE};

        (void)state;
        assert_int_equal(pxl_log_configure(&ls, NULL), PXL_EINVAL);
        ls.dest = PXL_LOG_TO_STDERR;
        ls.level = 7;
        assert_int_equal(pxl_log_configure(&ls, NULL), PXL_EINVAL);
}

#define THREADS 4
#define LINES   2000

static void *logger(void *arg)
{
        for (int i = 0; i < LINES; i++)
                pxl_log_ctx(PXL_LOG_INFO, NULL, NULL, "thread %d line %d",
                            (int)(intptr_t)arg, i);
        return NULL;
}

/* Lines of the file at path; each must be a whole line of a thread. */
static int count_lines(const char *path)
{
        FILE *f = fopen(path, "r");
        char line[256];
        int n = 0;

        if (f == NULL)
                return 0;
        while (fgets(line, sizeof(line), f) != NULL) {
                assert_int_equal(strncmp(line, "ts=", 3), 0);
                assert_non_null(strstr(line, " msg=\"thread "));
                assert_int_equal(line[strlen(line) - 1], '\n');
                n++;
        }
        fclose(f);
        return n;
}

static void test_swap_while_logging(void **state)
{
        char dir[] = "/tmp/pxl-test-log-XXXXXX", a[64], b[64], moved[64];
        struct pxl_log_settings ls = {.level = PXL_LOG_INFO,
                                      .dest = PXL_LOG_TO_FILE};
        pthread_t t[THREADS];
        int total;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(a, sizeof(a), "%s/a.log", dir);
        snprintf(b, sizeof(b), "%s/b.log", dir);
        snprintf(moved, sizeof(moved), "%s/a.log.1", dir);
        ls.file = a;
        assert_int_equal(pxl_log_configure(&ls, NULL), 0);
        for (int i = 0; i < THREADS; i++)
                assert_int_equal(pthread_create(&t[i], NULL, logger,
                                                (void *)(intptr_t)i),
                                 0);
        for (int i = 0; i < 200; i++) {
                ls.file = i % 2 ? a : b;
                assert_int_equal(pxl_log_configure(&ls, NULL), 0);
                if (i == 100) {
                        assert_int_equal(rename(a, moved), 0);
                        assert_int_equal(pxl_log_reopen(NULL), 0);
                }
        }
        for (int i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
        pxl_log_close();
        total = count_lines(a) + count_lines(b) + count_lines(moved);
        assert_int_equal(total, THREADS * LINES);
        unlink(a);
        unlink(b);
        unlink(moved);
        rmdir(dir);
}

static void test_notify_address(void **state)
{
        struct sockaddr_un sa;
        socklen_t len;

        (void)state;
        assert_int_equal(pxl_notify_address("/run/systemd/notify", &sa, &len),
                         0);
        assert_string_equal(sa.sun_path, "/run/systemd/notify");
        assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 20);
        assert_int_equal(pxl_notify_address("@sd/n", &sa, &len), 0);
        assert_int_equal(sa.sun_path[0], '\0');
        assert_memory_equal(sa.sun_path + 1, "sd/n", 4);
        assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 5);
        assert_int_equal(pxl_notify_address("", &sa, &len), PXL_EINVAL);
        assert_int_equal(pxl_notify_address("@", &sa, &len), PXL_EINVAL);
        assert_int_equal(pxl_notify_address("relative", &sa, &len), PXL_EINVAL);
        memset(buf, 'a', 200);
        buf[0] = '/';
        buf[200] = '\0';
        assert_int_equal(pxl_notify_address(buf, &sa, &len), PXL_EINVAL);
}

static void test_notify_reloading(void **state)
{
        char b[64];

        (void)state;
        assert_int_equal(
                pxl_notify_format_reloading(b, sizeof(b), 1234567890123ULL),
                40);
        assert_string_equal(b, "RELOADING=1\nMONOTONIC_USEC=1234567890123");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_logfmt),
                cmocka_unit_test(test_json),
                cmocka_unit_test(test_syslog),
                cmocka_unit_test(test_long_line_is_cut),
                cmocka_unit_test(test_facilities),
                cmocka_unit_test(test_bad_settings),
                cmocka_unit_test(test_swap_while_logging),
                cmocka_unit_test(test_notify_address),
                cmocka_unit_test(test_notify_reloading),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
