/*
 * test_frame.c - a broadcast frame is encoded once and shared: N output
 * buffers point at the same bytes, each holds one reference, and the
 * frame is freed when the last buffer has drained it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <json-c/json.h>

#include "pxl_frame.h"
#include "pxl_ws_codec.h"

#define N 100

static void test_one_encode_many_recipients(void **state)
{
        struct json_object *msg = json_tokener_parse(
                "{\"type\":\"chat\",\"action\":\"say\",\"data\":\"hi\"}");
        struct pxl_frame *f = pxl_frame_json(msg);
        struct evbuffer *out[N];

        (void)state;
        assert_non_null(f);
        assert_int_equal(f->refs, 1);
        /* 2-byte header (text, fin, 7-bit length) then the JSON. */
        assert_int_equal(f->data[0], 0x81);
        assert_int_equal(f->data[1], f->payload_len);
        assert_memory_equal(f->data + 2, "{\"type\":\"chat\"", 14);
        for (int i = 0; i < N; i++) {
                out[i] = evbuffer_new();
                assert_int_equal(pxl_frame_add_to(out[i], f), 0);
        }
        assert_int_equal(f->refs, N + 1);
        for (int i = 0; i < N; i++) {
                struct evbuffer_iovec v;

                /* Every buffer holds the frame's own bytes, not a copy. */
                assert_int_equal(evbuffer_peek(out[i], -1, NULL, &v, 1), 1);
                assert_ptr_equal(v.iov_base, f->data);
                assert_int_equal(v.iov_len, f->len);
        }
        pxl_frame_unref(f); /* the sender's reference */
        assert_int_equal(f->refs, N);
        for (int i = 0; i < N - 1; i++) {
                evbuffer_drain(out[i], f->len);
                assert_int_equal(f->refs, (unsigned)(N - 1 - i));
                evbuffer_free(out[i]);
        }
        /* The last drain frees the frame (ASan would see a leak or reuse). */
        evbuffer_free(out[N - 1]);
        json_object_put(msg);
}

static void test_length_forms(void **state)
{
        static uint8_t payload[70000];
        struct pxl_frame *small = pxl_frame_new(PXL_WS_OP_BINARY, payload, 125);
        struct pxl_frame *mid = pxl_frame_new(PXL_WS_OP_TEXT, payload, 126);
        struct pxl_frame *big = pxl_frame_new(PXL_WS_OP_TEXT, payload, 70000);

        (void)state;
        assert_int_equal(small->len, 2 + 125);
        assert_int_equal(small->data[0], 0x82);
        assert_int_equal(mid->len, 4 + 126);
        assert_int_equal(mid->data[1], 126);
        assert_int_equal(big->len, 10 + 70000);
        assert_int_equal(big->data[1], 127);
        pxl_frame_unref(small);
        pxl_frame_unref(mid);
        pxl_frame_unref(big);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_one_encode_many_recipients),
                cmocka_unit_test(test_length_forms),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
