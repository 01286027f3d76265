/*
 * test_router.c - the (type, action) route table: lookups by bytes,
 * duplicates refused with the owner named, growth keeps every route.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pxl_plugin.h"
#include "pxl_router.h"

static int handler_a(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        (void)ctx;
        (void)msg;
        return PXL_OK;
}

static int handler_b(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        (void)ctx;
        (void)msg;
        return PXL_ERR;
}

static void test_add_and_find(void **state)
{
        struct pxl_router *r = pxl_router_new();
        struct pxl_plugin_slot slot = {0};
        const struct pxl_router_entry *taken = NULL, *e;

        (void)state;
        assert_non_null(r);
        assert_int_equal(pxl_router_add(r, "chat", "say", handler_a, &slot,
                                        &taken),
                         PXL_OK);
        assert_int_equal(pxl_router_add(r, "chat", "join", handler_b, &slot,
                                        &taken),
                         PXL_OK);
        e = pxl_router_find(r, "chat", 4, "say", 3);
        assert_non_null(e);
        assert_ptr_equal(e->handler, handler_a);
        assert_ptr_equal(e->plugin, &slot);
        e = pxl_router_find(r, "chat", 4, "join", 4);
        assert_non_null(e);
        assert_ptr_equal(e->handler, handler_b);
        assert_null(pxl_router_find(r, "chat", 4, "sa", 2));
        assert_null(pxl_router_find(r, "Chat", 4, "say", 3)); /* case matters */
        assert_null(pxl_router_find(r, "chatsay", 7, "", 0));
        assert_null(pxl_router_find(r, "cha", 3, "tsay", 4));
        assert_int_equal(pxl_router_count(r), 2);
        pxl_router_free(r);
}

static void test_duplicate_names_owner(void **state)
{
        struct pxl_router *r = pxl_router_new();
        struct pxl_plugin_slot first = {0}, second = {0};
        const struct pxl_router_entry *taken = NULL;

        (void)state;
        assert_int_equal(pxl_router_add(r, "a", "b", handler_a, &first, &taken),
                         PXL_OK);
        assert_int_equal(pxl_router_add(r, "a", "b", handler_b, &second,
                                        &taken),
                         PXL_EDECLINED);
        assert_non_null(taken);
        assert_ptr_equal(taken->plugin, &first);
        assert_ptr_equal(taken->handler, handler_a);
        assert_int_equal(pxl_router_count(r), 1);
        pxl_router_free(r);
}

/* Names that contain NUL bytes are compared by length, not as C strings. */
static void test_embedded_nul_lookup(void **state)
{
        struct pxl_router *r = pxl_router_new();
        struct pxl_plugin_slot slot = {0};
        const struct pxl_router_entry *taken = NULL;

        (void)state;
        assert_int_equal(pxl_router_add(r, "x", "y", handler_a, &slot, &taken),
                         PXL_OK);
        assert_null(pxl_router_find(r, "x\0z", 3, "y", 1));
        assert_non_null(pxl_router_find(r, "x", 1, "y", 1));
        pxl_router_free(r);
}

static void test_growth_keeps_routes(void **state)
{
        static char names[500][16];
        struct pxl_router *r = pxl_router_new();
        struct pxl_plugin_slot slot = {0};
        const struct pxl_router_entry *taken = NULL;

        (void)state;
        for (int i = 0; i < 500; i++) {
                snprintf(names[i], sizeof(names[i]), "t%d", i);
                assert_int_equal(pxl_router_add(r, names[i], "act",
                                                i % 2 ? handler_a : handler_b,
                                                &slot, &taken),
                                 PXL_OK);
        }
        assert_int_equal(pxl_router_count(r), 500);
        for (int i = 0; i < 500; i++) {
                const struct pxl_router_entry *e = pxl_router_find(
                        r, names[i], strlen(names[i]), "act", 3);

                assert_non_null(e);
                assert_ptr_equal(e->handler, i % 2 ? handler_a : handler_b);
        }
        assert_null(pxl_router_find(r, "t500", 4, "act", 3));
        pxl_router_free(r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_add_and_find),
                cmocka_unit_test(test_duplicate_names_owner),
                cmocka_unit_test(test_embedded_nul_lookup),
                cmocka_unit_test(test_growth_keeps_routes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
