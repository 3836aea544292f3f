/*
 * What `veil eval --mpi` and `veil train --mpi` read from a serialized set without loading it (tools/mpi.c):
 * veil_ciphertexts_rows_serialized (the rows, the framing and metadata checked against the keys, the set's
 * digest when asked) and veil_ciphertexts_fingerprint_serialized (the framing and each object's header and own
 * digest, in place): the same set, and a copy, has one fingerprint; two ciphertexts swapped, a ciphertext
 * replaced by another valid one, a changed own digest or header, change it; a byte changed inside an object's
 * payload does not (its own digest, which the loader checks, then fails); a damaged framing is refused.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "veil/veil.h"
#include "ml/ml_plan.h"
#include "serial/serial_internal.h"

/* x [batch, 3] -> Gemm(3 -> 2): a linear model, the smallest the planner takes. */
static veil_model *linear_model(void)
{
    veil_error err = {0};
    veil_graph g = {0};
    double w[6] = {0.5, -0.25, 0.125, 1, 0.75, -0.5}, b[2] = {0.1, -0.2};
    int64_t in_dims[2] = {-1, 3}, wd[2] = {2, 3}, bd[1] = {2};
    const char *gemm[3] = {"x", "w", "b"};
    assert_int_equal(veil_graph_add_input(&g, "x", in_dims, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w", w, wd, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "b", b, bd, 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Gemm", gemm, 3, "y", "transB", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&g, "y", &err), VEIL_OK);
    veil_model_options opts = {0};
    veil_model *model = NULL;
    if (veil_model_from_graph(&model, &g, (const uint8_t *)"linear", 6, NULL, 0, &opts, &err) != VEIL_OK)
        fail_msg("%s", err.detail);
    return model;
}

/* Swaps the bytes of objects i and j of a serialized set (of one length). */
static void swap_objects(veil_buffer *set, size_t i, size_t j)
{
    veil_set_contents c;
    veil_error err = {0};
    assert_int_equal(veil_set_open_ex(&c, set->data, set->len, false, &err), VEIL_OK);
    assert_true(i < c.count && j < c.count);
    assert_int_equal(c.items[i].len, c.items[j].len);
    const size_t n = c.items[i].len;
    uint8_t *a = (uint8_t *)c.items[i].data, *b = (uint8_t *)c.items[j].data, *t = malloc(n);
    assert_non_null(t);
    memcpy(t, a, n);
    memcpy(a, b, n);
    memcpy(b, t, n);
    free(t);
    veil_set_contents_clear(&c);
}

/* Object i of a serialized set: where it starts and its length. */
static void object_at(const veil_buffer *set, size_t i, size_t *at, size_t *len)
{
    veil_set_contents c;
    veil_error err = {0};
    assert_int_equal(veil_set_open_ex(&c, set->data, set->len, false, &err), VEIL_OK);
    assert_true(i < c.count);
    *at = (size_t)(c.items[i].data - set->data);
    *len = c.items[i].len;
    veil_set_contents_clear(&c);
}

static void copy(veil_buffer *out, const veil_buffer *in)
{
    out->data = malloc(in->len);
    assert_non_null(out->data);
    memcpy(out->data, in->data, in->len);
    out->len = in->len;
}

static void test_rows_and_fingerprint(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_model *m = linear_model();
    veil_plan *plan = NULL;
    veil_plan_request req = {.batch = 4};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    veil_keyset *ks = NULL, *ks2 = NULL;
    veil_eval_keys *ek = NULL, *ek2 = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_keyset_generate(&ks2, &ek2, plan, NULL, NULL, NULL, &err), VEIL_OK);
    double x[30], x2[30];
    for (size_t i = 0; i < 30; i++) {
        x[i] = (double)(i % 7) / 7.0 - 0.5;
        x2[i] = -x[i];
    }
    veil_ciphertexts *in = NULL, *other = NULL, *out = NULL;
    assert_int_equal(veil_ciphertexts_encrypt(&in, ks, x, 10, NULL, &err), VEIL_OK); /* batches of 4, 4, 2 rows */
    assert_int_equal(veil_ciphertexts_encrypt(&other, ks, x2, 10, NULL, &err), VEIL_OK);
    assert_int_equal(veil_model_evaluate(&out, m, ek, in, NULL, NULL, &err), VEIL_OK);
    veil_buffer set = {0}, set2 = {0}, outs = {0}, b = {0};
    assert_int_equal(veil_ciphertexts_save(&set, in, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_save(&set2, other, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_save(&outs, out, &err), VEIL_OK);

    /* rows: inputs and outputs, with and without the set's digest; another key set's keys, or a damaged
     * digest when it is checked: refused */
    uint64_t rows = 0;
    assert_int_equal(veil_ciphertexts_rows_serialized(&rows, ek, set.data, set.len, 1, &err), VEIL_OK);
    assert_int_equal(rows, 10);
    assert_int_equal(veil_ciphertexts_rows_serialized(&rows, ek, outs.data, outs.len, 0, &err), VEIL_OK);
    assert_int_equal(rows, 10);
    assert_int_equal(veil_ciphertexts_rows_serialized(&rows, ek2, set.data, set.len, 0, &err), VEIL_ERR_MISMATCH);
    assert_int_equal(rows, 0);
    copy(&b, &set);
    b.data[b.len - 1] ^= 0x5a; /* the set's own digest */
    assert_int_equal(veil_ciphertexts_rows_serialized(&rows, ek, b.data, b.len, 0, &err), VEIL_OK);
    assert_int_not_equal(veil_ciphertexts_rows_serialized(&rows, ek, b.data, b.len, 1, &err), VEIL_OK);
    veil_buffer_free(&b);
    assert_int_not_equal(veil_ciphertexts_rows_serialized(&rows, ek, set.data, set.len / 2, 0, &err), VEIL_OK);

    /* the fingerprint: one for the set and its copy, another for another set */
    uint8_t f[32], g[32];
    assert_int_equal(veil_ciphertexts_fingerprint_serialized(f, set.data, set.len, &err), VEIL_OK);
    copy(&b, &set);
    assert_int_equal(veil_ciphertexts_fingerprint_serialized(g, b.data, b.len, &err), VEIL_OK);
    assert_memory_equal(f, g, 32);
    assert_int_equal(veil_ciphertexts_fingerprint_serialized(g, set2.data, set2.len, &err), VEIL_OK);
    assert_memory_not_equal(f, g, 32);
    /* two ciphertexts swapped (each still valid): another fingerprint */
    swap_objects(&b, 1, 2);
    assert_int_equal(veil_ciphertexts_fingerprint_serialized(g, b.data, b.len, &err), VEIL_OK);
    assert_memory_not_equal(f, g, 32);
    veil_buffer_free(&b);
    /* a ciphertext replaced by the other set's at its place (valid, of the same keys): another fingerprint */
    copy(&b, &set);
    size_t at = 0, len = 0, at2 = 0, len2 = 0;
    object_at(&b, 3, &at, &len);
    object_at(&set2, 3, &at2, &len2);
    assert_int_equal(len, len2);
    memcpy(b.data + at, set2.data + at2, len);
    assert_int_equal(veil_ciphertexts_fingerprint_serialized(g, b.data, b.len, &err), VEIL_OK);
    assert_memory_not_equal(f, g, 32);
    /* its own digest changed, or its header: another; a byte of its payload alone: the same (not read: the
     * object's own digest no longer holds, which a loader checks) */
    memcpy(b.data + at, set.data + at, len);
    b.data[at + len - 1] ^= 1;
    assert_int_equal(veil_ciphertexts_fingerprint_serialized(g, b.data, b.len, &err), VEIL_OK);
    assert_memory_not_equal(f, g, 32);
    b.data[at + len - 1] ^= 1;
    b.data[at + 12] ^= 1; /* the header's security field: refused with the framing, or another fingerprint */
    if (veil_ciphertexts_fingerprint_serialized(g, b.data, b.len, &err) == VEIL_OK) assert_memory_not_equal(f, g, 32);
    b.data[at + 12] ^= 1;
    b.data[at + len / 2] ^= 1;
    assert_int_equal(veil_ciphertexts_fingerprint_serialized(g, b.data, b.len, &err), VEIL_OK);
    assert_memory_equal(f, g, 32);
    veil_ciphertexts *loaded = NULL;
    assert_int_not_equal(veil_ciphertexts_load_batches(&loaded, ek, b.data, b.len, 0, 3, &err), VEIL_OK);
    assert_null(loaded);
    veil_buffer_free(&b);
    /* the framing damaged (cut, or an object's length): refused */
    assert_int_not_equal(veil_ciphertexts_fingerprint_serialized(g, set.data, set.len - 100, &err), VEIL_OK);
    copy(&b, &set);
    object_at(&b, 2, &at, &len);
    b.data[at - 8] ^= 0x10; /* the object's length */
    assert_int_not_equal(veil_ciphertexts_fingerprint_serialized(g, b.data, b.len, &err), VEIL_OK);
    veil_buffer_free(&b);

    veil_buffer_free(&set);
    veil_buffer_free(&set2);
    veil_buffer_free(&outs);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(other);
    veil_ciphertexts_free(out);
    veil_keyset_free(ks);
    veil_keyset_free(ks2);
    veil_eval_keys_free(ek);
    veil_eval_keys_free(ek2);
    veil_plan_free(plan);
    veil_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_and_fingerprint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
