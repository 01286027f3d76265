/*
 * pxl_cron.h - cron expressions for repeatable jobs (pure; no I/O, no
 * allocation, no globals): parse the five fields of crontab(5) into bit
 * sets, and find the next minute they match, in UTC.
 *
 * Fields, separated by blanks: minute (0-59), hour (0-23), day-of-month
 * (1-31), month (1-12 or jan-dec), day-of-week (0-7 or sun-sat; 0 and 7
 * are Sunday). Each is a list a,b,c of elements: *, a number, a range
 * a-b, or * or a range followed by /n, a step (every nth value of the
 * range, from its start). Names are case-insensitive, three letters, and
 * may be range ends ("mon-fri"; "fri-sun" ends on 7). A macro may stand
 * for all five: @yearly @annually @monthly @weekly @daily @midnight
 * @hourly. There is no seconds field.
 *
 * The day rule is Vixie cron's: when day-of-month and day-of-week are
 * both restricted, a day matches if either matches; when one of the two
 * fields begins with a star (a step over the star too), a day must match
 * both.
 */
#ifndef PXL_CRON_H
#define PXL_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bit n set: value n matches. All zeroes matches nothing. */
struct pxl_cron {
        uint64_t minutes; /* bits 0-59 */
        uint32_t hours;   /* bits 0-23 */
        uint32_t days;    /* bits 1-31, day of the month */
        uint16_t months;  /* bits 1-12 */
        uint8_t weekdays; /* bits 0-6, 0 Sunday (7 is folded into 0) */
        bool dom_star;    /* the day-of-month field began with "*" */
        bool dow_star;    /* the day-of-week field began with "*" */
};

/*
 * Parse a 5-field expression (minute hour day-of-month month day-of-week)
 * or a macro. Leading and trailing blanks are allowed. 0, or PXL_EINVAL
 * with a message in err (if errlen > 0; truncated to fit) naming the field
 * and the problem ("hour: 24 is out of range 0-23"); *out is then all
 * zeroes.
 */
int pxl_cron_parse(const char *text, struct pxl_cron *out, char *err,
                   size_t errlen);

/*
 * The first whole minute strictly after `after` (seconds since the epoch,
 * UTC) that c matches, or -1 when there is none within 5 years (1827
 * days; "0 0 30 2 *" never matches), or when `after` lies outside the
 * years 0000-9999.
 */
int64_t pxl_cron_next(const struct pxl_cron *c, int64_t after);

/* Whether c matches the minute holding t (seconds since the epoch, UTC). */
bool pxl_cron_matches(const struct pxl_cron *c, int64_t t);

#endif
