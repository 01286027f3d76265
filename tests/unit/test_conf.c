/*
 * test_conf.c - the app file: defaults, and that every problem is
 * reported as "file:line: key: text", all of them at once; a plugin's
 * settings checked against its table the same way; the report lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pxl/pxl.h"
#include "pxl_conf.h"
#include "pxl_log.h"

/* NULL when the text has any problem, as pxl-serve treats it. */
static struct pxl_config *load(const char *text, struct pxl_str *errors)
{
        struct pxl_config *c;

        errors->len = 0;
        if (errors->p)
                errors->p[0] = '\0';
        c = pxl_conf_load_string(text, "app.cfg", NULL, errors);
        if (c != NULL && c->nerrors > 0) {
                assert_int_not_equal(errors->len, 0);
                pxl_conf_free(c);
                return NULL;
        }
        return c;
}

static void test_defaults(void **state)
{
        struct pxl_str errors = {0};
        struct pxl_config *c = load("name = \"x\";\n", &errors);

        (void)state;
        assert_non_null(c);
        assert_string_equal(c->name, "x");
        assert_string_equal(c->host, "0.0.0.0");
        assert_int_equal(c->port, 8080);
        assert_string_equal(c->path, "/ws");
        assert_int_equal(c->limits.max_message_size, 4 * 1024 * 1024);
        assert_int_equal(c->limits.max_frame_size, 4 * 1024 * 1024);
        assert_int_equal(c->limits.max_json_depth, 64);
        assert_int_equal(c->limits.handshake_timeout, 10);
        assert_int_equal(c->limits.max_header_size, 8192);
        assert_int_equal(c->limits.max_connections, 10000);
        assert_int_equal(c->limits.max_output_bytes, 8 * 1024 * 1024);
        assert_int_equal(c->log_level, PXL_LOG_INFO);
        assert_false(c->raw_text);
        assert_int_equal(c->nplugins, 0);
        /* Defaults that go through a check, and the rest of the table. */
        assert_int_equal(c->log_format, PXL_LOG_LOGFMT);
        assert_true(c->rooms.members_visible_to_all);
        assert_false(c->auth.secret_base64url);
        assert_string_equal(c->auth.algorithm, "HS256");
        assert_null(c->auth.secret);
        assert_null(c->origins);
        assert_null(c->tls_cert);
        assert_true(c->connected_frame);
        assert_true(c->rooms.multiple);
        assert_false(c->rooms.notify_members);
        assert_int_equal(c->backlog, 511);
        assert_int_equal(c->shutdown_timeout, 5);
        assert_int_equal(c->workers, 1);
        assert_int_equal(c->limits.max_handshakes, 1000);
        assert_int_equal(c->limits.max_connections_per_ip, 1000);
        assert_int_equal(c->limits.rate, 1000);
        assert_int_equal(c->limits.burst, 2000);
        assert_int_equal(c->limits.max_metadata_size, 65536);
        assert_int_equal(c->limits.max_metadata_entry_size, 16384);
        assert_int_equal(c->rooms.max_name_length, 128);
        assert_int_equal(c->rooms.max_per_client, 64);
        assert_int_equal(c->rooms.max_member_field_length, 256);
        assert_int_equal(c->presence_interval, 250);
        assert_int_equal(c->max_idle, 0);
        assert_int_equal(c->check_interval, 60);
        assert_int_equal(c->heartbeat_interval, 0);
        assert_int_equal(c->heartbeat_timeout, 30);
        assert_string_equal(c->redis.host, "127.0.0.1");
        assert_int_equal(c->redis.port, 6379);
        assert_int_equal(c->redis.connect_timeout, 2);
        assert_int_equal(c->redis.retry_max_delay, 5);
        assert_int_equal(c->redis.heartbeat_interval, 1);
        assert_int_equal(c->redis.dead_after, 5);
        assert_string_equal(c->warnings.p ? c->warnings.p : "", "");
        pxl_conf_free(c);
        pxl_str_fini(&errors);
}

static void test_values_are_read(void **state)
{
        struct pxl_str errors = {0};
        struct pxl_config *c = load(
                "name = \"chat\";\n"
                "listen = { host = \"127.0.0.1\"; port = 9000; path = \"/live\"; };\n"
                "limits = { max_message_size = 1024; max_frame_size = 512; };\n"
                "log = { level = \"debug\"; format = \"json\"; };\n"
                "raw_text = true;\n",
                &errors);

        (void)state;
        assert_non_null(c);
        assert_string_equal(c->host, "127.0.0.1");
        assert_int_equal(c->port, 9000);
        assert_string_equal(c->path, "/live");
        assert_int_equal(c->limits.max_message_size, 1024);
        assert_int_equal(c->limits.max_frame_size, 512);
        assert_int_equal(c->log_level, PXL_LOG_DEBUG);
        assert_int_equal(c->log_format, PXL_LOG_JSON);
        assert_true(c->raw_text);
        pxl_conf_free(c);
        pxl_str_fini(&errors);
}

static void test_every_problem_named(void **state)
{
        struct pxl_str errors = {0};
        struct pxl_config *c = load(
                "name = \"x\";\n"
                "listen = { port = 70000; colour = \"red\"; };\n"
                "limits = { max_json_depth = \"deep\"; };\n"
                "log = { level = \"loud\"; };\n"
                "raw_text = 1;\n"
                "extra = 3;\n",
                &errors);

        (void)state;
        assert_null(c);
        assert_string_equal(
                errors.p,
                "app.cfg:2: listen.port: 70000 is out of range 0..65535\n"
                "app.cfg:2: listen.colour: unknown key\n"
                "app.cfg:3: limits.max_json_depth: expected an integer, got a string\n"
                "app.cfg:4: log.level: \"loud\" must be one of err, warn, notice, info, debug\n"
                "app.cfg:5: raw_text: expected a boolean (true or false), got an integer\n"
                "app.cfg:6: extra: unknown key\n");
        pxl_str_fini(&errors);
}

static void test_syntax_error_has_line(void **state)
{
        struct pxl_str errors = {0};
        struct pxl_config *c = load("name = \"x\";\nlisten = { port = ; };\n",
                                    &errors);

        (void)state;
        assert_null(c);
        assert_string_equal(errors.p, "app.cfg:2: syntax error\n");
        pxl_str_fini(&errors);
}

static void test_missing_name_and_frame_over_message(void **state)
{
        struct pxl_str errors = {0};
        struct pxl_config *c = load(
                "limits = { max_message_size = 100; max_frame_size = 200; };\n",
                &errors);

        (void)state;
        assert_null(c);
        assert_non_null(strstr(errors.p, "app.cfg: name: missing (every app needs a name)\n"));
        assert_non_null(strstr(errors.p,
                               "app.cfg:1: limits.max_frame_size: 200 is larger "
                               "than limits.max_message_size (100)"));
        pxl_str_fini(&errors);
}

static void test_plugin_entries(void **state)
{
        struct pxl_str errors = {0};
        struct pxl_config *c = load(
                "name = \"x\";\n"
                "plugins = ( \"lib/a.so\", { path = \"/abs/b.so\"; settings = { k = 1; }; },\n"
                "  { settings = { }; }, 42, { path = \"c.so\"; colour = 1; } );\n",
                &errors);

        (void)state;
        assert_null(c);
        assert_string_equal(
                errors.p,
                "app.cfg:3: plugins[2]: missing path\n"
                "app.cfg:3: plugins[3]: expected a string or a group, got an integer\n"
                "app.cfg:3: plugins[4]: unknown key \"colour\" (expected path, settings)\n");
        c = load("name = \"x\";\n"
                 "plugins = ( \"lib/a.so\", { path = \"/abs/b.so\"; settings = { k = 1; }; } );\n",
                 &errors);
        assert_non_null(c);
        assert_int_equal(c->nplugins, 2);
        assert_string_equal(c->plugins[0].path, "./lib/a.so");
        assert_null(c->plugins[0].settings);
        assert_string_equal(c->plugins[1].path, "/abs/b.so");
        assert_non_null(c->plugins[1].settings);
        pxl_conf_free(c);
        pxl_str_fini(&errors);
}

/* A setting of each type, as a plugin declares them. */
static const struct pxl_setting table[] = {
        {.name = "count",
         .type = PXL_SETTING_INT,
         .min = 1,
         .max = 100,
         .def.i = 7,
         .help = "an integer"},
        {.name = "big",
         .type = PXL_SETTING_INT,
         .min = -5000000000LL,
         .max = 5000000000LL,
         .def.i = -4000000000LL,
         .help = "64 bits"},
        {.name = "any", .type = PXL_SETTING_INT, .help = "no range"},
        {.name = "flag",
         .type = PXL_SETTING_BOOL,
         .def.b = true,
         .help = "a boolean"},
        {.name = "word",
         .type = PXL_SETTING_STRING,
         .min = 2,
         .max = 8,
         .def.s = "abc",
         .help = "a string"},
        {.name = "path", .type = PXL_SETTING_STRING, .help = "no default"},
        {.name = "need",
         .type = PXL_SETTING_STRING,
         .required = true,
         .min = 1,
         .max = 16,
         .help = "the file must set it"},
        PXL_SETTING_END,
};

/* pxl_conf_settings for plugins[n] of text; NULL values when refused. */
static union pxl_conf_value *settings(const char *text, size_t n,
                                      const struct pxl_setting *t,
                                      struct pxl_str *errors)
{
        struct pxl_str conf_errors = {0};
        struct pxl_config *c =
                pxl_conf_load_string(text, "app.cfg", NULL, &conf_errors);
        union pxl_conf_value *v = (union pxl_conf_value *)1;
        int rc;

        assert_non_null(c);
        assert_int_equal(c->nerrors, 0);
        assert_true(n < c->nplugins);
        errors->len = 0;
        if (errors->p)
                errors->p[0] = '\0';
        rc = pxl_conf_settings(c, &c->plugins[n], "lib/x.so", t, &v, errors);
        if (rc == 0) {
                assert_non_null(v);
                assert_int_equal(errors->len, 0);
        } else {
                assert_int_equal(rc, PXL_ERR);
                assert_null(v);
                assert_int_not_equal(errors->len, 0);
        }
        pxl_conf_free(c); /* the values are copies */
        pxl_str_fini(&conf_errors);
        return v;
}

static void test_settings_values(void **state)
{
        struct pxl_str errors = {0};
        union pxl_conf_value *v = settings(
                "name = \"x\";\n"
                "plugins = ( \"a.so\", { path = \"b.so\"; settings = {\n"
                "  count = 100; big = 4999999999L; any = "
                "-9223372036854775807L;\n"
                "  flag = false; word = \"12345678\"; path = \"\"; need = "
                "\"n\";\n"
                "}; } );\n",
                1, table, &errors);

        (void)state;
        assert_int_equal(v[0].i, 100);
        assert_true(v[1].i == 4999999999LL);
        assert_true(v[2].i == -9223372036854775807LL);
        assert_false(v[3].b);
        assert_string_equal(v[4].s, "12345678");
        assert_string_equal(v[5].s, "");
        assert_string_equal(v[6].s, "n");
        pxl_conf_settings_free(table, v);
        pxl_str_fini(&errors);
}

static void test_settings_defaults(void **state)
{
        struct pxl_str errors = {0};
        union pxl_conf_value *v =
                settings("name = \"x\";\n"
                         "plugins = ( { path = \"b.so\"; settings = { need = "
                         "\"n\"; }; } );\n",
                         0, table, &errors);

        (void)state;
        assert_int_equal(v[0].i, 7);
        assert_true(v[1].i == -4000000000LL);
        assert_int_equal(v[2].i, 0);
        assert_true(v[3].b);
        assert_string_equal(v[4].s, "abc");
        assert_null(v[5].s);
        assert_string_equal(v[6].s, "n");
        pxl_conf_settings_free(table, v);
        /* An empty table: no value, and every key is unknown. */
        v = settings("name = \"x\";\nplugins = ( \"b.so\" );\n", 0, table + 7,
                     &errors);
        assert_non_null(v);
        pxl_conf_settings_free(table + 7, v);
        pxl_str_fini(&errors);
}

static void test_settings_every_problem_named(void **state)
{
        struct pxl_str errors = {0};

        (void)state;
        assert_null(settings(
                "name = \"x\";\n"
                "plugins = ( \"a.so\", { path = \"b.so\"; settings = {\n"
                "  count = 0;\n"
                "  big = -5000000001L; any = \"1\";\n"
                "  flag = 1;\n"
                "  word = \"123456789\";\n"
                "  path = 5; need = \"\";\n"
                "  colour = \"red\"; nested = { count = 1; };\n"
                "}; } );\n",
                1, table, &errors));
        assert_string_equal(
                errors.p,
                "app.cfg:3: plugins[1].settings.count: 0 is out of range "
                "1..100\n"
                "app.cfg:4: plugins[1].settings.big: -5000000001 is out of "
                "range "
                "-5000000000..5000000000\n"
                "app.cfg:4: plugins[1].settings.any: expected an integer, got "
                "a string\n"
                "app.cfg:5: plugins[1].settings.flag: expected a boolean (true "
                "or "
                "false), got an integer\n"
                "app.cfg:6: plugins[1].settings.word: \"123456789\" must be 2 "
                "to 8 "
                "characters\n"
                "app.cfg:7: plugins[1].settings.path: expected a string, got "
                "an integer\n"
                "app.cfg:7: plugins[1].settings.need: \"\" must be 1 to 16 "
                "characters\n"
                "app.cfg:8: plugins[1].settings.colour: unknown key\n"
                "app.cfg:8: plugins[1].settings.nested: unknown key\n");
        /* A required key: at its group, or at the entry without one. */
        assert_null(settings("name = \"x\";\nplugins = (\n"
                             "  { path = \"b.so\";\n"
                             "    settings = { count = 2; }; } );\n",
                             0, table, &errors));
        assert_string_equal(errors.p,
                            "app.cfg:4: plugins[0].settings.need: missing\n");
        assert_null(settings("name = \"x\";\nplugins = ( \"a.so\",\n"
                             "  \"b.so\" );\n",
                             1, table, &errors));
        assert_string_equal(errors.p,
                            "app.cfg:3: plugins[1].settings.need: missing\n");
        /* A table without rows takes no key. */
        assert_null(settings("name = \"x\";\nplugins = ( { path = \"b.so\";\n"
                             "  settings = { count = 1; }; } );\n",
                             0, table + 7, &errors));
        assert_string_equal(
                errors.p,
                "app.cfg:3: plugins[0].settings.count: unknown key\n");
        pxl_str_fini(&errors);
}

/* A table's own mistakes are the plugin's, named by its path. */
static void test_settings_bad_table(void **state)
{
        static const struct pxl_setting bad[] = {
                {.name = "level", .type = PXL_SETTING_INT, .min = 1, .max = 10},
                {.name = "name",
                 .type = PXL_SETTING_STRING,
                 .min = 3,
                 .max = 8,
                 .def.s = "x"},
                {.name = "level", .type = PXL_SETTING_BOOL},
                {.name = "span",
                 .type = PXL_SETTING_INT,
                 .min = 5,
                 .max = 1,
                 .def.i = 3},
                {.name = "len",
                 .type = PXL_SETTING_STRING,
                 .min = -1,
                 .max = 1},
                {.name = "", .type = PXL_SETTING_BOOL},
                {.name = "colour", .type = (enum pxl_setting_type)9},
                {.name = "need",
                 .type = PXL_SETTING_INT,
                 .required = true,
                 .min = 1,
                 .max = 2},
                PXL_SETTING_END,
        };
        struct pxl_str errors = {0};

        (void)state;
        assert_null(settings("name = \"x\";\nplugins = ( \"b.so\" );\n", 0, bad,
                             &errors));
        assert_string_equal(
                errors.p,
                "lib/x.so: settings.level: declared twice\n"
                "lib/x.so: settings.span: range 5..1 is empty\n"
                "lib/x.so: settings.len: range -1..1: a length is never below "
                "0\n"
                "lib/x.so: settings[5]: has no name\n"
                "lib/x.so: settings.colour: unknown type 9\n"
                "lib/x.so: settings.level: default 0 is out of range 1..10\n"
                "lib/x.so: settings.name: default \"x\" must be 3 to 8 "
                "characters\n");
        pxl_str_fini(&errors);
}

static void test_report_lines(void **state)
{
        struct pxl_str s = {0};

        (void)state;
        assert_int_equal(pxl_str_report(&s, "app.cfg", 27, "redis.port",
                                        "%d is out of range %d..%d", 70000, 1,
                                        65535),
                         0);
        assert_int_equal(pxl_str_report(&s, "app.cfg", 0, "name", "missing"),
                         0);
        assert_int_equal(pxl_str_report(&s, "app.cfg", 2, NULL, "syntax error"),
                         0);
        assert_int_equal(pxl_str_report(&s, "x.so", 0, NULL, "%s", "ABI"), 0);
        assert_string_equal(s.p,
                            "app.cfg:27: redis.port: 70000 is out of range "
                            "1..65535\n"
                            "app.cfg: name: missing\n"
                            "app.cfg:2: syntax error\n"
                            "x.so: ABI\n");
        assert_int_equal(s.len, strlen(s.p));
        pxl_str_fini(&s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_values_are_read),
                cmocka_unit_test(test_every_problem_named),
                cmocka_unit_test(test_syntax_error_has_line),
                cmocka_unit_test(test_missing_name_and_frame_over_message),
                cmocka_unit_test(test_plugin_entries),
                cmocka_unit_test(test_settings_values),
                cmocka_unit_test(test_settings_defaults),
                cmocka_unit_test(test_settings_every_problem_named),
                cmocka_unit_test(test_settings_bad_table),
                cmocka_unit_test(test_report_lines),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
