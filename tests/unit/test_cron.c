/*
 * test_cron.c - cron expressions: what parses into which bit sets, what is
 * refused with which message, and the next run across month ends, leap
 * years (Feb 29, 2100, 2000), year ends, the day-of-month/day-of-week
 * rule, steps, names, macros, before 1970 and never; then long chains of
 * next() checked minute by minute against a matcher built on gmtime_r.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pxl/pxl.h"
#include "pxl_cron.h"

#define ALL_MINUTES ((UINT64_C(1) << 60) - 1)

/* "YYYY-MM-DD HH:MM:SS" (UTC) to seconds since the epoch. */
static int64_t at(const char *s)
{
        struct tm tm;

        memset(&tm, 0, sizeof(tm));
        assert_int_equal(sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon,
                                &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                                &tm.tm_sec),
                         6);
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        return (int64_t)timegm(&tm);
}

/* Seconds since the epoch to "YYYY-MM-DD HH:MM" (UTC), -1 to "never". */
static const char *show(int64_t t, char *buf, size_t cap)
{
        struct tm tm;
        time_t tt = (time_t)t;

        if (t == -1)
                return "never";
        assert_non_null(gmtime_r(&tt, &tm));
        assert_int_equal(tm.tm_sec, 0);
        snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
        return buf;
}

static struct pxl_cron parse_ok(const char *text)
{
        struct pxl_cron c;
        char err[128];

        if (pxl_cron_parse(text, &c, err, sizeof(err)) != 0) {
                print_error("\"%s\": %s\n", text, err);
                fail();
        }
        return c;
}

static void test_parse_bits(void **state)
{
        struct pxl_cron c;

        (void)state;
        c = parse_ok("*/15 0-6/2 1,15 jan-mar,dec mon-fri");
        assert_int_equal(c.minutes, UINT64_C(1) << 0 | UINT64_C(1) << 15 |
                                            UINT64_C(1) << 30 |
                                            UINT64_C(1) << 45);
        assert_int_equal(c.hours, 1u << 0 | 1u << 2 | 1u << 4 | 1u << 6);
        assert_int_equal(c.days, 1u << 1 | 1u << 15);
        assert_int_equal(c.months, 1u << 1 | 1u << 2 | 1u << 3 | 1u << 12);
        assert_int_equal(c.weekdays, 0x3e);
        assert_false(c.dom_star);
        assert_false(c.dow_star);

        c = parse_ok("* * * * *");
        assert_int_equal(c.minutes, ALL_MINUTES);
        assert_int_equal(c.hours, 0xffffff);
        assert_int_equal(c.days, 0xfffffffe);
        assert_int_equal(c.months, 0x1ffe);
        assert_int_equal(c.weekdays, 0x7f);
        assert_true(c.dom_star);
        assert_true(c.dow_star);

        /* A field beginning with * counts as *, steps too (Vixie). */
        c = parse_ok("0 0 */2 * 1");
        assert_true(c.dom_star);
        assert_false(c.dow_star);
        assert_int_equal(c.days, 0xaaaaaaaa);

        /* Ranges with steps start at the range's start. */
        c = parse_ok("5-59/20 1-23/11 2-31/10 2-12/5 *");
        assert_int_equal(c.minutes, UINT64_C(1) << 5 | UINT64_C(1) << 25 |
                                            UINT64_C(1) << 45);
        assert_int_equal(c.hours, 1u << 1 | 1u << 12 | 1u << 23);
        assert_int_equal(c.days, 1u << 2 | 1u << 12 | 1u << 22);
        assert_int_equal(c.months, 1u << 2 | 1u << 7 | 1u << 12);

        /* Lists mix every kind of element. */
        c = parse_ok("1,2-4,*/30,59 * * * *");
        assert_int_equal(c.minutes, UINT64_C(0x080000004000001f));

        /* Leading zeroes and blanks of every kind. */
        c = parse_ok(" \t07\t08  09 10 1 \n");
        assert_int_equal(c.minutes, UINT64_C(1) << 7);
        assert_int_equal(c.hours, 1u << 8);
        assert_int_equal(c.days, 1u << 9);
        assert_int_equal(c.months, 1u << 10);
        assert_int_equal(c.weekdays, 1u << 1);
}

/* Sunday is 0 and 7, by number and by name, alone and as a range end. */
static void test_weekdays(void **state)
{
        static const struct {
                const char *dow;
                uint8_t bits;
        } cases[] = {
                {"0", 0x01},       {"7", 0x01},         {"sun", 0x01},
                {"SUN", 0x01},     {"Sun", 0x01},       {"0,7", 0x01},
                {"5-7", 0x61},     {"fri-sun", 0x61},   {"sat-sun", 0x41},
                {"0-7", 0x7f},     {"sun-sat", 0x7f},   {"mon-fri", 0x3e},
                {"*/2", 0x55},     {"1-7/2", 0x2b},     {"0-7/7", 0x01},
                {"tue,thu", 0x14}, {"MON-wed/2", 0x0a}, {"6", 0x40},
                {"sun-sun", 0x01}, {"0-sun", 0x01},     {"sun-mon", 0x03},
                {"sat-7", 0x41},
        };
        char text[64];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct pxl_cron c;

                snprintf(text, sizeof(text), "0 0 * * %s", cases[i].dow);
                c = parse_ok(text);
                if (c.weekdays != cases[i].bits) {
                        print_error("%s: 0x%02x, want 0x%02x\n", text,
                                    c.weekdays, cases[i].bits);
                        fail();
                }
        }
}

static void test_month_names(void **state)
{
        static const char *const names[] = {"jan", "FEB", "Mar", "apr",
                                            "may", "jun", "jul", "aug",
                                            "sep", "oct", "nov", "DeC"};
        char text[64];
        struct pxl_cron c;
        unsigned i;

        (void)state;
        for (i = 0; i < 12; i++) {
                snprintf(text, sizeof(text), "0 0 1 %s *", names[i]);
                c = parse_ok(text);
                assert_int_equal(c.months, 1u << (i + 1));
        }
        c = parse_ok("0 0 1 jan-dec/3 *");
        assert_int_equal(c.months, 1u << 1 | 1u << 4 | 1u << 7 | 1u << 10);
        c = parse_ok("0 0 1 1-jun *");
        assert_int_equal(c.months, 0x7e);
}

static void test_macros(void **state)
{
        static const struct {
                const char *macro, *same;
        } cases[] = {
                {"@yearly", "0 0 1 1 *"},    {"@annually", "0 0 1 1 *"},
                {"@monthly", "0 0 1 * *"},   {"@weekly", "0 0 * * 0"},
                {"@daily", "0 0 * * *"},     {"@midnight", "0 0 * * *"},
                {"@hourly", "0 * * * *"},    {"  @HOURLY  ", "0 * * * *"},
                {"\t@Daily\n", "0 0 * * *"},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct pxl_cron a = parse_ok(cases[i].macro);
                struct pxl_cron b = parse_ok(cases[i].same);

                assert_memory_equal(&a, &b, sizeof(a));
        }
}

static void test_reject(void **state)
{
        static const struct {
                const char *text, *err;
        } cases[] = {
                {"", "empty expression"},
                {" \t ", "empty expression"},
                {"* * * *", "expected 5 fields (minute hour day-of-month "
                            "month day-of-week), found 4"},
                {"0 0 0 * * *", "expected 5 fields (minute hour "
                                "day-of-month month day-of-week), found 6"},
                {"60 * * * *", "minute: 60 is out of range 0-59"},
                {"0 24 * * *", "hour: 24 is out of range 0-23"},
                {"* * 0 * *", "day-of-month: 0 is out of range 1-31"},
                {"* * 32 * *", "day-of-month: 32 is out of range 1-31"},
                {"* * * 0 *", "month: 0 is out of range 1-12"},
                {"* * * 13 *", "month: 13 is out of range 1-12"},
                {"* * * * 8", "day-of-week: 8 is out of range 0-7"},
                {"1-99 * * * *", "minute: 99 is out of range 0-59"},
                {"99999999999999999999999999 * * * *",
                 "minute: 99999999999999999999... is out of range 0-59"},
                {"*/0 * * * *", "minute: step 0 is out of range 1-59"},
                {"* 1-5/0 * * *", "hour: step 0 is out of range 1-23"},
                {"*/60 * * * *", "minute: step 60 is out of range 1-59"},
                {"* * * * */8", "day-of-week: step 8 is out of range 1-7"},
                {"5-3 * * * *", "minute: range \"5-3\" is backwards (5 > 3)"},
                {"* 23-0 * * *", "hour: range \"23-0\" is backwards (23 > 0)"},
                {"* * * dec-jan *",
                 "month: range \"dec-jan\" is backwards (12 > 1)"},
                {"* * * * fri-mon",
                 "day-of-week: range \"fri-mon\" is backwards (5 > 1)"},
                {"1,,2 * * * *", "minute: empty list element in \"1,,2\""},
                {"1, * * * *", "minute: empty list element in \"1,\""},
                {",1 * * * *", "minute: empty list element in \",1\""},
                {"1x * * * *", "minute: unexpected \"x\" in \"1x\""},
                {"-1 * * * *", "minute: unexpected \"-\" in \"-1\""},
                {"*/ * * * *", "minute: unexpected end of \"*/\""},
                {"* 1- * * *", "hour: unexpected end of \"1-\""},
                {"* * 1-2-3 * *",
                 "day-of-month: unexpected \"-\" in \"1-2-3\""},
                {"*/5/2 * * * *", "minute: unexpected \"/\" in \"*/5/2\""},
                {"*-5 * * * *", "minute: unexpected \"-\" in \"*-5\""},
                {"? * * * *", "minute: unexpected \"?\" in \"?\""},
                {"\x01 * * * *", "minute: unexpected \"\\x01\" in \"\\x01\""},
                {"jan * * * *", "minute: unexpected \"j\" in \"jan\""},
                {"* * * foo *", "month: unknown name \"foo\""},
                {"* * * january *", "month: unknown name \"january\""},
                {"* * * * mon-funday", "day-of-week: unknown name \"funday\""},
                {"* * * mon *", "month: unknown name \"mon\""},
                {"* * * * */mon", "day-of-week: unexpected \"m\" in \"*/mon\""},
                {"5/15 * * * *", "minute: a step needs * or a range before "
                                 "it: \"5/15\""},
                {"@foo", "unknown macro \"@foo\""},
                {"@", "unknown macro \"@\""},
                {"@dailyx", "unknown macro \"@dailyx\""},
                {"@reboot", "@reboot is not supported (it names no time)"},
                {"@daily 0", "unexpected \"0\" after @daily"},
                {"0 0 * * * @daily", "expected 5 fields (minute hour "
                                     "day-of-month month day-of-week), "
                                     "found 6"},
                {"* * * * @daily",
                 "day-of-week: unexpected \"@\" in \"@daily\""},
        };
        struct pxl_cron c;
        char err[160];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                memset(&c, 0xa5, sizeof(c));
                memset(err, 'z', sizeof(err));
                if (pxl_cron_parse(cases[i].text, &c, err, sizeof(err)) !=
                    PXL_EINVAL) {
                        print_error("accepted \"%s\"\n", cases[i].text);
                        fail();
                }
                assert_string_equal(err, cases[i].err);
                /* a refused expression leaves nothing that matches */
                assert_int_equal(c.minutes | c.hours | c.days | c.months |
                                         c.weekdays | c.dom_star | c.dow_star,
                                 0);
        }

        assert_int_equal(pxl_cron_parse(NULL, &c, err, sizeof(err)),
                         PXL_EINVAL);
        assert_string_equal(err, "empty expression");
        /* no room for a message, or a short one: still refused, cut short */
        assert_int_equal(pxl_cron_parse("0 24 * * *", &c, NULL, 0), PXL_EINVAL);
        assert_int_equal(pxl_cron_parse("0 24 * * *", &c, err, 0), PXL_EINVAL);
        assert_int_equal(pxl_cron_parse("0 24 * * *", &c, err, 8), PXL_EINVAL);
        assert_string_equal(err, "hour: 2");
        assert_int_equal(pxl_cron_parse("0 24 * * *", &c, err, 1), PXL_EINVAL);
        assert_string_equal(err, "");
        /* success clears err */
        assert_int_equal(pxl_cron_parse("0 23 * * *", &c, err, sizeof(err)), 0);
        assert_string_equal(err, "");
        assert_int_equal(pxl_cron_parse("0 23 * * *", &c, NULL, 0), 0);
}

static void test_next(void **state)
{
        static const struct {
                const char *expr, *after, *want;
        } cases[] = {
                /* strictly after, on whole minutes */
                {"* * * * *", "2024-01-01 00:00:00", "2024-01-01 00:01"},
                {"* * * * *", "2024-01-01 00:00:59", "2024-01-01 00:01"},
                {"* * * * *", "2023-12-31 23:59:30", "2024-01-01 00:00"},
                {"30 * * * *", "2024-01-01 00:30:00", "2024-01-01 01:30"},
                {"30 * * * *", "2024-01-01 00:29:59", "2024-01-01 00:30"},
                /* month ends: 30-day months, February */
                {"30 2 31 * *", "2024-04-01 00:00:00", "2024-05-31 02:30"},
                {"0 0 31 * *", "2024-01-31 00:00:00", "2024-03-31 00:00"},
                {"0 0 30 * *", "2023-01-30 12:00:00", "2023-03-30 00:00"},
                {"0 0 1 * *", "2024-02-29 23:59:00", "2024-03-01 00:00"},
                {"59 23 28-31 * *", "2023-02-28 23:59:00", "2023-03-28 23:59"},
                {"59 23 28-31 * *", "2024-02-28 23:59:00", "2024-02-29 23:59"},
                /* leap years */
                {"0 0 29 2 *", "2023-03-01 00:00:00", "2024-02-29 00:00"},
                {"0 0 29 2 *", "2024-02-29 00:00:00", "2028-02-29 00:00"},
                {"0 0 29 2 *", "1999-03-01 00:00:00", "2000-02-29 00:00"},
                {"0 0 29 2 *", "2099-03-01 00:00:00", "2104-02-29 00:00"},
                {"0 0 29 2 *", "2097-03-01 00:00:00", "never"},
                {"0 0 * 2 *", "2100-02-28 00:00:00", "2101-02-01 00:00"},
                /* year ends */
                {"59 23 31 12 *", "2024-12-31 23:59:00", "2025-12-31 23:59"},
                {"0 0 1 1 *", "2023-06-15 12:00:00", "2024-01-01 00:00"},
                {"0 0 1 1 *", "2024-01-01 00:00:00", "2025-01-01 00:00"},
                {"0 0 * * *", "2024-12-31 00:00:00", "2025-01-01 00:00"},
                /* day of the week; 2024-01-01 was a Monday */
                {"0 12 * * 1", "2024-01-01 12:00:00", "2024-01-08 12:00"},
                {"0 12 * * 1", "2024-01-01 11:59:00", "2024-01-01 12:00"},
                {"0 0 * * 0", "2024-01-01 00:00:00", "2024-01-07 00:00"},
                {"0 0 * * 7", "2024-01-01 00:00:00", "2024-01-07 00:00"},
                {"0 0 * * sat", "2024-12-29 00:00:00", "2025-01-04 00:00"},
                {"0 9 * * mon-fri", "2024-01-05 09:00:00", "2024-01-08 09:00"},
                {"0 0 * * fri-sun", "2024-01-01 00:00:00", "2024-01-05 00:00"},
                /* both restricted: either; 2024-09-07 was a Saturday */
                {"0 0 10 * 5", "2024-09-07 00:00:00", "2024-09-10 00:00"},
                {"0 0 10 * 5", "2024-09-10 00:00:00", "2024-09-13 00:00"},
                {"0 0 13 * 5", "2024-09-13 00:00:00", "2024-09-20 00:00"},
                {"0 0 1 * 1", "2024-01-29 00:00:00", "2024-02-01 00:00"},
                /* one begins with "*": both (Vixie), odd days, Mondays */
                {"0 0 */2 * 1", "2024-01-01 00:00:00", "2024-01-15 00:00"},
                {"0 0 1-31/2 * 1", "2024-01-01 00:00:00", "2024-01-03 00:00"},
                {"0 0 1 * */7", "2024-01-01 00:00:00", "2024-09-01 00:00"},
                /* steps */
                {"*/20 9-17/4 * * *", "2024-05-05 13:05:00",
                 "2024-05-05 13:20"},
                {"*/20 9-17/4 * * *", "2024-05-05 17:40:00",
                 "2024-05-06 09:00"},
                {"*/7 * * * *", "2024-05-05 10:56:00", "2024-05-05 11:00"},
                {"0 */6 * * *", "2024-05-05 18:00:00", "2024-05-06 00:00"},
                {"0 0 * */5 *", "2024-02-01 00:00:00", "2024-06-01 00:00"},
                /* names */
                {"0 9 * feb mon", "2024-01-15 00:00:00", "2024-02-05 09:00"},
                {"0 9 * FEB MON", "2024-01-15 00:00:00", "2024-02-05 09:00"},
                {"0 0 1 jan,jul *", "2024-01-01 00:00:00", "2024-07-01 00:00"},
                /* macros */
                {"@hourly", "2024-03-10 10:00:00", "2024-03-10 11:00"},
                {"@daily", "2024-03-10 10:00:00", "2024-03-11 00:00"},
                {"@weekly", "2024-01-01 00:00:00", "2024-01-07 00:00"},
                {"@monthly", "2024-01-31 12:00:00", "2024-02-01 00:00"},
                {"@yearly", "2024-01-01 00:00:00", "2025-01-01 00:00"},
                /* before 1970 */
                {"0 0 1 1 *", "1969-12-31 23:59:59", "1970-01-01 00:00"},
                {"0 0 29 2 *", "1960-01-01 00:00:00", "1960-02-29 00:00"},
                {"* * * * *", "1969-12-31 23:58:01", "1969-12-31 23:59"},
                {"0 0 * * 4", "1969-12-31 00:00:00", "1970-01-01 00:00"},
                /* never */
                {"0 0 30 2 *", "2024-01-01 00:00:00", "never"},
                {"0 0 31 4,6,9,11 *", "2024-01-01 00:00:00", "never"},
                {"0 0 31 2 *", "2024-01-01 00:00:00", "never"},
                /* the edges of the years handled */
                {"59 23 31 12 *", "9999-12-31 23:58:00", "9999-12-31 23:59"},
                {"0 0 1 1 *", "9999-12-31 23:59:59", "10000-01-01 00:00"},
                {"0 0 1 1 *", "0000-01-01 00:00:00", "0001-01-01 00:00"},
        };
        char buf[80], text[96];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct pxl_cron c = parse_ok(cases[i].expr);
                int64_t after = at(cases[i].after);
                int64_t t = pxl_cron_next(&c, after);
                const char *got = show(t, buf, sizeof(buf));

                snprintf(text, sizeof(text), "%s", got);
                if (strcmp(text, cases[i].want) != 0) {
                        print_error("\"%s\" after %s: %s, want %s\n",
                                    cases[i].expr, cases[i].after, text,
                                    cases[i].want);
                        fail();
                }
                if (t != -1) {
                        assert_true(t > after);
                        assert_true(pxl_cron_matches(&c, t));
                        assert_true(pxl_cron_matches(&c, t + 59));
                        assert_int_equal(t % 60, 0);
                }
        }
}

static void test_next_edges(void **state)
{
        struct pxl_cron c = parse_ok("* * * * *"), none;

        (void)state;
        /* seconds before 1970 round down to their minute */
        assert_int_equal(pxl_cron_next(&c, -1), 0);
        assert_int_equal(pxl_cron_next(&c, -60), 0);
        assert_int_equal(pxl_cron_next(&c, -61), -60);
        assert_int_equal(pxl_cron_next(&c, 0), 60);
        /* outside 0000-9999: refused, never an overflow */
        assert_int_equal(pxl_cron_next(&c, at("9999-12-31 23:59:59")),
                         at("9999-12-31 23:59:59") + 1);
        assert_int_equal(pxl_cron_next(&c, at("9999-12-31 23:59:59") + 1), -1);
        assert_int_equal(pxl_cron_next(&c, INT64_MAX), -1);
        assert_int_equal(pxl_cron_next(&c, INT64_MIN), -1);
        assert_int_equal(pxl_cron_next(&c, at("0000-01-01 00:00:00") - 1), -1);
        /* a refused expression's zeroes match nothing */
        assert_int_equal(pxl_cron_parse("bad", &none, NULL, 0), PXL_EINVAL);
        assert_int_equal(pxl_cron_next(&none, 0), -1);
        assert_false(pxl_cron_matches(&none, 0));
        /* the horizon: 1827 days after `after`, inclusive */
        c = parse_ok("0 0 29 2 *");
        assert_int_equal(pxl_cron_next(&c, at("2099-02-27 00:00:00")),
                         at("2104-02-29 00:00:00"));
        assert_int_equal(pxl_cron_next(&c, at("2099-02-26 23:59:59")), -1);
}

/* The reference: fields from gmtime_r, the day rule spelled out. */
static bool slow_matches(const struct pxl_cron *c, int64_t t)
{
        time_t tt = (time_t)t;
        struct tm tm;
        bool dom, dow;

        assert_non_null(gmtime_r(&tt, &tm));
        dom = c->days >> tm.tm_mday & 1;
        dow = c->weekdays >> tm.tm_wday & 1;
        if (!(c->minutes >> tm.tm_min & 1) || !(c->hours >> tm.tm_hour & 1) ||
            !(c->months >> (tm.tm_mon + 1) & 1))
                return false;
        return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

/*
 * Chains of next() over a year and more: every returned time matches,
 * and no minute between two of them does.
 */
static void test_next_chains(void **state)
{
        static const char *const exprs[] = {
                "*/7 */5 */3 * mon-wed", "0 0 13 * 5",
                "15,45 6-18 * * 1-5",    "0 0 29-31 * *",
                "59 23 * 2 sun",         "0 12 */10 feb,aug */3",
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
                struct pxl_cron c = parse_ok(exprs[i]);
                int64_t t = at("2023-11-30 22:13:17"),
                        end = at("2025-03-01 00:00:00"), n, m;
                unsigned runs = 0;

                while (t < end) {
                        n = pxl_cron_next(&c, t);
                        assert_true(n > t);
                        assert_true(slow_matches(&c, n));
                        assert_true(pxl_cron_matches(&c, n));
                        for (m = (t / 60 + 1) * 60; m < n; m += 60) {
                                if (slow_matches(&c, m) ||
                                    pxl_cron_matches(&c, m)) {
                                        char a[32], b[32];

                                        print_error("\"%s\": skipped %s on "
                                                    "the way to %s\n",
                                                    exprs[i],
                                                    show(m, a, sizeof(a)),
                                                    show(n, b, sizeof(b)));
                                        fail();
                                }
                        }
                        t = n;
                        runs++;
                }
                assert_true(runs > 5);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_bits),
                cmocka_unit_test(test_weekdays),
                cmocka_unit_test(test_month_names),
                cmocka_unit_test(test_macros),
                cmocka_unit_test(test_reject),
                cmocka_unit_test(test_next),
                cmocka_unit_test(test_next_edges),
                cmocka_unit_test(test_next_chains),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
