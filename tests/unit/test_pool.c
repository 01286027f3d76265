/*
 * test_pool.c - fixed-size object pools: objects are zeroed, aligned,
 * distinct while live, reused after free, and blocks hold per_block each.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pxl_pool.h"

static void test_alloc_free_reuse(void **state)
{
        struct pxl_pool p;
        void *objs[300];

        (void)state;
        pxl_pool_init(&p, 40, 64);
        assert_int_equal(p.size % _Alignof(max_align_t), 0);
        assert_true(p.size >= 40);
        for (int i = 0; i < 300; i++) {
                objs[i] = pxl_pool_alloc(&p);
                assert_non_null(objs[i]);
                assert_int_equal((uintptr_t)objs[i] % _Alignof(max_align_t), 0);
                for (size_t k = 0; k < 40; k++)
                        assert_int_equal(((unsigned char *)objs[i])[k], 0);
                memset(objs[i], 0xab, 40);
        }
        assert_int_equal(p.live, 300);
        for (int i = 0; i < 300; i++)
                for (int j = i + 1; j < 300; j++)
                        assert_ptr_not_equal(objs[i], objs[j]);
        /* The last freed is the next handed out, zeroed again. */
        pxl_pool_free(&p, objs[7]);
        assert_int_equal(p.live, 299);
        assert_ptr_equal(pxl_pool_alloc(&p), objs[7]);
        for (size_t k = 0; k < 40; k++)
                assert_int_equal(((unsigned char *)objs[7])[k], 0);
        for (int i = 0; i < 300; i++)
                pxl_pool_free(&p, objs[i]);
        assert_int_equal(p.live, 0);
        pxl_pool_free(&p, NULL);
        pxl_pool_fini(&p);
}

static void test_tiny_objects_hold_a_link(void **state)
{
        struct pxl_pool p;
        void *a, *b;

        (void)state;
        pxl_pool_init(&p, 1, 0);
        assert_true(p.size >= sizeof(void *));
        assert_int_equal(p.per_block, 64);
        a = pxl_pool_alloc(&p);
        b = pxl_pool_alloc(&p);
        assert_ptr_not_equal(a, b);
        pxl_pool_fini(&p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_alloc_free_reuse),
                cmocka_unit_test(test_tiny_objects_hold_a_link),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
