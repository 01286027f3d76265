/*
 * test_log.c - the pure parts of the logger and the readiness protocol:
 * a line in logfmt and JSON, with and without a timestamp, the syslog
 * header's priority, tag and pid, text and number fields, a cut line;
 * facility names; the NOTIFY_SOCKET address (path and abstract) and the
 * RELOADING message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
        struct pxl_log_line l = {
                .level = PXL_LOG_INFO, .worker = 2, .ts = "T",
                .client = "c1", .msg = "access", .texts = texts,
                .ntexts = 2, .fields = fields, .nfields = 2};

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
        struct pxl_log_line l = {
                .level = PXL_LOG_ERR, .format = PXL_LOG_JSON, .worker = -1,
                .ts = "T", .client = "c1", .msg = "access", .texts = texts,
                .ntexts = 1, .fields = fields, .nfields = 1};

        (void)state;
        assert_string_equal(format(&l),
                            "{\"ts\":\"T\",\"level\":\"err\",\"client\":\"c1\","
                            "\"msg\":\"access\",\"peer\":\"10.0.0.5:51234\","
                            "\"msgs_in\":3}\n");
}

static void test_syslog(void **state)
{
        struct pxl_log_line l = {.level = PXL_LOG_WARN, .worker = -1,
                                 .facility = 3, .pid = 42,
                                 .syslog_tag = "chat", .msg = "m"};

        (void)state;
        /* daemon (3) * 8 + warning (4); no timestamp, no newline. */
        assert_string_equal(format(&l), "<28>chat[42]: level=warn msg=m");
        l.level = PXL_LOG_DEBUG;
        l.facility = 23; /* local7 */
        l.format = PXL_LOG_JSON;
        assert_string_equal(format(&l),
                            "<191>chat[42]: {\"level\":\"debug\",\"msg\":\"m\"}");
        l.level = PXL_LOG_ERR;
        l.facility = 0;
        assert_int_equal(strncmp(format(&l), "<3>", 3), 0);
}

static void test_long_line_is_cut(void **state)
{
        static char big[8000];
        struct pxl_log_line l = {.level = PXL_LOG_INFO, .worker = -1,
                                 .msg = "m", .texts = texts, .ntexts = 1};
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
        assert_int_equal(pxl_notify_address("relative", &sa, &len),
                         PXL_EINVAL);
        memset(buf, 'a', 200);
        buf[0] = '/';
        buf[200] = '\0';
        assert_int_equal(pxl_notify_address(buf, &sa, &len), PXL_EINVAL);
}

static void test_notify_reloading(void **state)
{
        char b[64];

        (void)state;
        assert_int_equal(pxl_notify_format_reloading(b, sizeof(b),
                                                     1234567890123ULL),
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
                cmocka_unit_test(test_notify_address),
                cmocka_unit_test(test_notify_reloading),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
