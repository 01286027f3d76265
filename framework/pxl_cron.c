/*
 * pxl_cron.c - crontab(5) expressions: a parser into bit sets and a search
 * for the next matching minute. Owns only the expression and UTC calendar
 * arithmetic (its own, on day numbers; no time zones, no libc time
 * functions). Scheduling the job, persisting the next run and catching up
 * after downtime belong to the queue (pxl_queue.c).
 */
#include "pxl_cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pxl/pxl.h"

#define MINUTE_MASK ((UINT64_C(1) << 60) - 1)
#define HOUR_MASK   ((UINT32_C(1) << 24) - 1)

/* Search horizon: 5 years, leap days included. */
#define HORIZON_DAYS 1827
/* `after` must lie in 0000-01-01T00:00:00 .. 9999-12-31T23:59:59. */
#define T_MIN INT64_C(-62167219200)
#define T_MAX INT64_C(253402300799)

/* --- error messages ---------------------------------------------------- */

struct errbuf {
        char *buf;
        size_t cap;
        size_t len;
};

static void put(struct errbuf *e, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void put(struct errbuf *e, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (e->len + 1 >= e->cap)
                return;
        va_start(ap, fmt);
        n = vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        e->len += (size_t)n;
        if (e->len >= e->cap)
                e->len = e->cap - 1;
}

/* A piece of the input, quoted: at most 32 bytes, others as \xNN. */
static void put_span(struct errbuf *e, const char *s, size_t n)
{
        size_t i, shown = n > 32 ? 32 : n;

        put(e, "\"");
        for (i = 0; i < shown; i++) {
                unsigned char ch = (unsigned char)s[i];

                if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
                        put(e, "%c", ch);
                else
                        put(e, "\\x%02x", ch);
        }
        put(e, "%s\"", shown < n ? "..." : "");
}

/* --- parsing ------------------------------------------------------------- */

struct field {
        const char *name;
        unsigned lo, hi;
        const char *const *names; /* NULL: numbers only */
        unsigned n_names;
        unsigned name_base; /* the value of names[0] */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr",
                                          "may", "jun", "jul", "aug",
                                          "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed",
                                        "thu", "fri", "sat"};

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

static const struct field fields[F_COUNT] = {
        {"minute", 0, 59, NULL, 0, 0},
        {"hour", 0, 23, NULL, 0, 0},
        {"day-of-month", 1, 31, NULL, 0, 0},
        {"month", 1, 12, month_names, 12, 1},
        {"day-of-week", 0, 7, day_names, 7, 0},
};

static bool is_blank(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' ||
               ch == '\v' || ch == '\f';
}

static bool is_digit(char ch)
{
        return ch >= '0' && ch <= '9';
}

static char lower(char ch)
{
        return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static bool is_alpha(char ch)
{
        return lower(ch) >= 'a' && lower(ch) <= 'z';
}

/* The parse of one field, s .. end. */
struct cursor {
        const struct field *f;
        const char *s, *end, *p;
        struct errbuf *e;
};

static int fail_unexpected(struct cursor *c)
{
        if (c->p < c->end) {
                put(c->e, "%s: unexpected ", c->f->name);
                put_span(c->e, c->p, 1);
                put(c->e, " in ");
        } else {
                put(c->e, "%s: unexpected end of ", c->f->name);
        }
        put_span(c->e, c->s, (size_t)(c->end - c->s));
        return PXL_EINVAL;
}

/*
 * A number (digits) at c->p into *v; values past 9999 saturate (they are
 * out of range anyway, and the message quotes the digits).
 */
static void read_number(struct cursor *c, unsigned *v)
{
        *v = 0;
        while (c->p < c->end && is_digit(*c->p)) {
                if (*v <= 9999)
                        *v = *v * 10 + (unsigned)(*c->p - '0');
                c->p++;
        }
}

/* A number or a name of the field, checked against its range. */
static int read_value(struct cursor *c, unsigned *v, bool *was_sun)
{
        const char *start = c->p;
        size_t n, i;

        *was_sun = false;
        if (c->p < c->end && is_digit(*c->p)) {
                read_number(c, v);
                if (*v < c->f->lo || *v > c->f->hi) {
                        put(c->e, "%s: ", c->f->name);
                        put(c->e, "%.*s",
                            (int)(c->p - start > 20 ? 20 : c->p - start),
                            start);
                        put(c->e, "%s is out of range %u-%u",
                            c->p - start > 20 ? "..." : "", c->f->lo, c->f->hi);
                        return PXL_EINVAL;
                }
                return 0;
        }
        if (c->p >= c->end || !is_alpha(*c->p) || !c->f->names)
                return fail_unexpected(c);
        while (c->p < c->end && is_alpha(*c->p))
                c->p++;
        n = (size_t)(c->p - start);
        for (i = 0; n == 3 && i < c->f->n_names; i++) {
                const char *name = c->f->names[i];

                if (lower(start[0]) == name[0] && lower(start[1]) == name[1] &&
                    lower(start[2]) == name[2]) {
                        *v = c->f->name_base + (unsigned)i;
                        *was_sun = c->f->names == day_names && i == 0;
                        return 0;
                }
        }
        put(c->e, "%s: unknown name ", c->f->name);
        put_span(c->e, start, n);
        return PXL_EINVAL;
}

/* One element of a list: *, a or a-b, the first and last with a step /n. */
static int parse_element(struct cursor *c, uint64_t *bits)
{
        const char *start = c->p;
        unsigned a, b, step = 1, v;
        bool single = false, sun;
        int rc;

        if (c->p >= c->end || *c->p == ',') {
                put(c->e, "%s: empty list element in ", c->f->name);
                put_span(c->e, c->s, (size_t)(c->end - c->s));
                return PXL_EINVAL;
        }
        if (*c->p == '*') {
                c->p++;
                a = c->f->lo;
                b = c->f->hi;
        } else {
                rc = read_value(c, &a, &sun);
                if (rc)
                        return rc;
                if (c->p < c->end && *c->p == '-') {
                        c->p++;
                        rc = read_value(c, &b, &sun);
                        if (rc)
                                return rc;
                        /* "fri-sun": a range may end on Sunday as 7
                         * ("sun-sun" is Sunday alone) */
                        if (sun && a > 0)
                                b = 7;
                        if (b < a) {
                                put(c->e, "%s: range ", c->f->name);
                                put_span(c->e, start, (size_t)(c->p - start));
                                put(c->e, " is backwards (%u > %u)", a, b);
                                return PXL_EINVAL;
                        }
                } else {
                        b = a;
                        single = true;
                }
        }
        if (c->p < c->end && *c->p == '/') {
                const char *num;

                if (single) {
                        put(c->e, "%s: a step needs * or a range before it: ",
                            c->f->name);
                        put_span(c->e, start, (size_t)(c->end - start));
                        return PXL_EINVAL;
                }
                c->p++;
                num = c->p;
                if (c->p >= c->end || !is_digit(*c->p))
                        return fail_unexpected(c);
                read_number(c, &step);
                if (step < 1 || step > c->f->hi) {
                        put(c->e, "%s: step %.*s%s is out of range 1-%u",
                            c->f->name,
                            (int)(c->p - num > 20 ? 20 : c->p - num), num,
                            c->p - num > 20 ? "..." : "", c->f->hi);
                        return PXL_EINVAL;
                }
        }
        if (c->p < c->end && *c->p != ',')
                return fail_unexpected(c);
        for (v = a; v <= b; v += step)
                *bits |= UINT64_C(1) << v;
        return 0;
}

static int parse_field(const struct field *f, const char *s, const char *end,
                       uint64_t *bits, struct errbuf *e)
{
        struct cursor c = {f, s, end, s, e};
        int rc;

        *bits = 0;
        for (;;) {
                rc = parse_element(&c, bits);
                if (rc)
                        return rc;
                if (c.p >= c.end)
                        return 0;
                c.p++; /* the comma */
        }
}

struct macro {
        const char *name;
        const char *fields;
};

static const struct macro macros[] = {
        {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
        {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
        {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"},
};

static bool word_is(const char *s, size_t n, const char *word)
{
        size_t i;

        if (strlen(word) != n)
                return false;
        for (i = 0; i < n; i++)
                if (lower(s[i]) != word[i])
                        return false;
        return true;
}

static int parse_fields(const char *text, struct pxl_cron *out,
                        struct errbuf *e);

static int parse_macro(const char *s, struct pxl_cron *out, struct errbuf *e)
{
        const char *end = s, *rest;
        size_t n, i;

        while (*end && !is_blank(*end))
                end++;
        n = (size_t)(end - s);
        for (rest = end; *rest && is_blank(*rest); rest++)
                ;
        for (i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
                if (!word_is(s, n, macros[i].name))
                        continue;
                if (*rest) {
                        put(e, "unexpected ");
                        put_span(e, rest, strlen(rest));
                        put(e, " after %s", macros[i].name);
                        return PXL_EINVAL;
                }
                return parse_fields(macros[i].fields, out, e);
        }
        if (word_is(s, n, "@reboot")) {
                put(e, "@reboot is not supported (it names no time)");
                return PXL_EINVAL;
        }
        put(e, "unknown macro ");
        put_span(e, s, n);
        return PXL_EINVAL;
}

static int parse_fields(const char *text, struct pxl_cron *out,
                        struct errbuf *e)
{
        const char *start[F_COUNT], *end[F_COUNT];
        const char *p = text;
        uint64_t bits[F_COUNT];
        unsigned n = 0, i;
        int rc;

        for (;;) {
                while (*p && is_blank(*p))
                        p++;
                if (!*p)
                        break;
                if (n < F_COUNT)
                        start[n] = p;
                while (*p && !is_blank(*p))
                        p++;
                if (n < F_COUNT)
                        end[n] = p;
                n++;
        }
        if (n == 0) {
                put(e, "empty expression");
                return PXL_EINVAL;
        }
        if (n != F_COUNT) {
                put(e,
                    "expected 5 fields (minute hour day-of-month month "
                    "day-of-week), found %u",
                    n);
                return PXL_EINVAL;
        }
        for (i = 0; i < F_COUNT; i++) {
                rc = parse_field(&fields[i], start[i], end[i], &bits[i], e);
                if (rc)
                        return rc;
        }
        out->minutes = bits[F_MINUTE];
        out->hours = (uint32_t)bits[F_HOUR];
        out->days = (uint32_t)bits[F_DOM];
        out->months = (uint16_t)bits[F_MONTH];
        /* 7 is Sunday too */
        out->weekdays = (uint8_t)((bits[F_DOW] | bits[F_DOW] >> 7) & 0x7f);
        out->dom_star = *start[F_DOM] == '*';
        out->dow_star = *start[F_DOW] == '*';
        return 0;
}

int pxl_cron_parse(const char *text, struct pxl_cron *out, char *err,
                   size_t errlen)
{
        struct errbuf e = {err, err ? errlen : 0, 0};
        const char *p = text;
        int rc;

        if (err && errlen)
                err[0] = '\0';
        memset(out, 0, sizeof(*out));
        if (!text) {
                put(&e, "empty expression");
                return PXL_EINVAL;
        }
        while (*p && is_blank(*p))
                p++;
        if (*p == '@')
                rc = parse_macro(p, out, &e);
        else
                rc = parse_fields(p, out, &e);
        if (rc)
                memset(out, 0, sizeof(*out));
        return rc;
}

/* --- the calendar -------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;

        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/*
 * Day number (days since 1970-01-01) to the proleptic Gregorian date.
 * Counts in 400-year eras starting on March 1st, so that the leap day is
 * the last day of its year and month lengths follow a 5-month pattern.
 */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
        int64_t era, doe, yoe, doy, mp;

        z += 719468; /* from 0000-03-01 */
        era = floor_div(z, 146097);
        doe = z - era * 146097; /* day of the era, 0..146096 */
        /* year of the era, 0..399: less one day per 4, 100, 400 years */
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* 0..365 */
        mp = (5 * doy + 2) / 153;                      /* 0 = March */
        *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
        *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
        *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
        static const unsigned char dim[13] = {0,  31, 28, 31, 30, 31, 30,
                                              31, 31, 30, 31, 30, 31};

        return m == 2 && is_leap(y) ? 29 : dim[m];
}

/* 0 Sunday; 1970-01-01 (day 0) was a Thursday. */
static unsigned weekday(int64_t day)
{
        return (unsigned)(day + 4 - floor_div(day + 4, 7) * 7);
}

static bool day_matches(const struct pxl_cron *c, unsigned d, unsigned wd)
{
        bool dom = c->days >> d & 1, dow = c->weekdays >> wd & 1;

        if (c->dom_star || c->dow_star)
                return dom && dow;
        return dom || dow;
}

/* The lowest set bit at or above from, or width when there is none. */
static unsigned first_from(uint64_t set, unsigned from, unsigned width)
{
        if (from >= width)
                return width;
        set &= ~UINT64_C(0) << from;
        if (width < 64)
                set &= (UINT64_C(1) << width) - 1;
        return set ? (unsigned)__builtin_ctzll(set) : width;
}

bool pxl_cron_matches(const struct pxl_cron *c, int64_t t)
{
        int64_t day = floor_div(t, 86400), y;
        int64_t sod = t - day * 86400;
        unsigned m, d, wd = weekday(day);

        civil_from_days(day, &y, &m, &d);
        return (c->months >> m & 1) && day_matches(c, d, wd) &&
               (c->hours >> (sod / 3600) & 1) &&
               (c->minutes >> (sod % 3600 / 60) & 1);
}

int64_t pxl_cron_next(const struct pxl_cron *c, int64_t after)
{
        int64_t t, day, sod, y, limit;
        unsigned m, d, wd, h, min, hh, mm;

        if (after < T_MIN || after > T_MAX)
                return -1;
        if (!(c->minutes & MINUTE_MASK) || !(c->hours & HOUR_MASK) ||
            !(c->months & 0x1ffe))
                return -1;
        limit = after + (int64_t)HORIZON_DAYS * 86400;
        t = (floor_div(after, 60) + 1) * 60;
        day = floor_div(t, 86400);
        sod = t - day * 86400;
        h = (unsigned)(sod / 3600);
        min = (unsigned)(sod % 3600 / 60);
        wd = weekday(day);
        civil_from_days(day, &y, &m, &d);

        while (day * 86400 <= limit) {
                if (!(c->months >> m & 1)) {
                        /* on to the 1st of the next month */
                        unsigned skip = days_in_month(y, m) - d + 1;

                        day += skip;
                        wd = (wd + skip) % 7;
                        d = 1;
                        if (++m > 12) {
                                m = 1;
                                y++;
                        }
                        h = min = 0;
                        continue;
                }
                if (day_matches(c, d, wd)) {
                        hh = first_from(c->hours, h, 24);
                        while (hh < 24) {
                                mm = first_from(c->minutes, hh == h ? min : 0,
                                                60);
                                if (mm < 60) {
                                        t = day * 86400 + hh * 3600 + mm * 60;
                                        return t <= limit ? t : -1;
                                }
                                hh = first_from(c->hours, hh + 1, 24);
                        }
                }
                day++;
                wd = (wd + 1) % 7;
                if (++d > days_in_month(y, m)) {
                        d = 1;
                        if (++m > 12) {
                                m = 1;
                                y++;
                        }
                }
                h = min = 0;
        }
        return -1;
}
