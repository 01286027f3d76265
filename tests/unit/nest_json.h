/*
 * nest_json.h - test helper shared by test_json.c and test_json_build.c:
 * a value nested depth deep in arrays, or in {"a": ...} objects.
 */
#ifndef NEST_JSON_H
#define NEST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Writes the text and a NUL into b; returns its length. */
static inline size_t nest(char *b, unsigned depth, bool obj)
{
        size_t n = 0;

        for (unsigned i = 0; i < depth; i++) {
                if (obj) {
                        memcpy(b + n, "{\"a\":", 5);
                        n += 5;
                } else {
                        b[n++] = '[';
                }
        }
        b[n++] = '1';
        for (unsigned i = 0; i < depth; i++)
                b[n++] = obj ? '}' : ']';
        b[n] = '\0';
        return n;
}

#endif
