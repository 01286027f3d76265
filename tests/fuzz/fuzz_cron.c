/*
 * fuzz_cron.c - libFuzzer harness for framework/pxl_cron.c. The input is
 * an expression (up to 256 bytes, up to a NUL); a hash of it picks the
 * `after` time (1900-2400 mostly, sometimes at or past the edges of the
 * years 0000-9999) and the size of the error buffer. Parsing never
 * crashes, returns 0 or PXL_EINVAL, leaves a message on refusal (the
 * same message, cut short, in a short buffer) and only bits in range on
 * success. For an accepted expression, next() must equal what a slow
 * search finds: minute by minute with gmtime_r, skipping only whole days
 * on which no minute can match, up to the 5-year horizon.
 *
 * An input beginning with 0xff is a raw struct pxl_cron instead (any bits,
 * also out of range ones), for next() alone.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pxl/pxl.h"
#include "pxl_cron.h"

#define CHECK(x)                                                               \
        do {                                                                   \
                if (!(x))                                                      \
                        abort();                                               \
        } while (0)

#define HORIZON (INT64_C(1827) * 86400)
#define T_MIN   INT64_C(-62167219200) /* 0000-01-01T00:00:00 */
#define T_MAX   INT64_C(253402300799) /* 9999-12-31T23:59:59 */
#define T_1900  INT64_C(-2208988800)
#define SPAN    (INT64_C(500) * 365 * 86400)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool date_matches(const struct pxl_cron *c, const struct tm *tm)
{
        bool dom = c->days >> tm->tm_mday & 1;
        bool dow = c->weekdays >> tm->tm_wday & 1;

        if (!(c->months >> (tm->tm_mon + 1) & 1))
                return false;
        return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

static bool slow_matches(const struct pxl_cron *c, int64_t t)
{
        time_t tt = (time_t)t;
        struct tm tm;

        CHECK(gmtime_r(&tt, &tm));
        return date_matches(c, &tm) && (c->hours >> tm.tm_hour & 1) &&
               (c->minutes >> tm.tm_min & 1);
}

/* The first matching minute in [from, to] (from on a minute), or -1. */
static int64_t slow_first(const struct pxl_cron *c, int64_t from, int64_t to)
{
        bool any_hour = (c->hours & 0xffffff) != 0;
        bool any_minute = (c->minutes & ((UINT64_C(1) << 60) - 1)) != 0;
        int64_t m = from;

        while (m <= to) {
                time_t tt = (time_t)m;
                struct tm tm;

                CHECK(gmtime_r(&tt, &tm));
                if (tm.tm_hour == 0 && tm.tm_min == 0 &&
                    (!date_matches(c, &tm) || !any_hour || !any_minute)) {
                        m += 86400; /* no minute of this day can match */
                        continue;
                }
                if (slow_matches(c, m))
                        return m;
                m += 60;
        }
        return -1;
}

static uint64_t hash(const uint8_t *data, size_t size)
{
        uint64_t h = UINT64_C(14695981039346656037);
        size_t i;

        for (i = 0; i < size; i++)
                h = (h ^ data[i]) * UINT64_C(1099511628211);
        return h ^ h >> 29;
}

static int64_t pick_after(uint64_t h)
{
        int64_t off = (int64_t)((h >> 8) % 4096);

        switch (h & 15) {
        case 0:
                return T_MAX - (int64_t)(h >> 8) % (3 * 86400);
        case 1:
                return T_MIN + (int64_t)(h >> 8) % (3 * 86400);
        case 2:
                return (h >> 8) & 1 ? T_MAX + 1 + off : T_MIN - 1 - off;
        default:
                return T_1900 + (int64_t)((h >> 8) % (uint64_t)SPAN);
        }
}

static void check_next(const struct pxl_cron *c, int64_t after)
{
        int64_t n = pxl_cron_next(c, after), start, ref;

        if (after < T_MIN || after > T_MAX) {
                CHECK(n == -1);
                return;
        }
        start = (after >= 0 ? after / 60 : (after - 59) / 60) * 60 + 60;
        ref = slow_first(c, start, after + HORIZON);
        CHECK(n == ref);
        if (n != -1) {
                CHECK(n > after);
                CHECK(n % 60 == 0);
                CHECK(pxl_cron_matches(c, n));
                CHECK(pxl_cron_matches(c, n + 59));
        }
        CHECK(pxl_cron_matches(c, after) == slow_matches(c, after));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint64_t h = hash(data, size);
        struct pxl_cron c, again;
        char text[257], err[128], small[128];
        size_t errlen = (size_t)(h >> 40) % sizeof(small);
        int rc;

        if (size > 0 && data[0] == 0xff) {
                if (size < 1 + 19)
                        return 0;
                memcpy(&c.minutes, data + 1, 8);
                memcpy(&c.hours, data + 9, 4);
                memcpy(&c.days, data + 13, 4);
                memcpy(&c.months, data + 17, 2);
                c.weekdays = size > 20 ? data[20] : 0x7f;
                c.dom_star = size > 21 && (data[21] & 1);
                c.dow_star = size > 21 && (data[21] & 2);
                check_next(&c, pick_after(h));
                return 0;
        }
        if (size >= sizeof(text))
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';

        rc = pxl_cron_parse(text, &c, err, sizeof(err));
        CHECK(rc == 0 || rc == PXL_EINVAL);
        memset(small, 'z', sizeof(small));
        CHECK(pxl_cron_parse(text, &again, small, errlen) == rc);
        CHECK(memcmp(&c, &again, sizeof(c)) == 0);
        if (errlen > 0) {
                /* the message, cut short to fit */
                CHECK(strlen(small) < errlen);
                CHECK(strncmp(small, err, strlen(small)) == 0);
                CHECK(strlen(small) == strlen(err) ||
                      strlen(small) == errlen - 1);
        } else {
                CHECK(small[0] == 'z');
        }
        CHECK(pxl_cron_parse(text, &again, NULL, 0) == rc);
        if (rc != 0) {
                CHECK(err[0] != '\0');
                CHECK(c.minutes == 0 && c.hours == 0 && c.days == 0 &&
                      c.months == 0 && c.weekdays == 0 && !c.dom_star &&
                      !c.dow_star);
                CHECK(pxl_cron_next(&c, pick_after(h)) == -1);
                return 0;
        }
        CHECK(err[0] == '\0');
        CHECK(c.minutes != 0 && c.minutes >> 60 == 0);
        CHECK(c.hours != 0 && c.hours >> 24 == 0);
        CHECK(c.days != 0 && (c.days & 1) == 0);
        CHECK(c.months != 0 && (c.months & ~0x1ffeu) == 0);
        CHECK(c.weekdays != 0 && c.weekdays >> 7 == 0);
        check_next(&c, pick_after(h));
        return 0;
}
