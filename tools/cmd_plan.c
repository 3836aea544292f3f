/* veil plan: the parameters, keys, sizes and time a model (or a training) would take, without making keys. */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include "veil_cli.h"

static void print_plan(const veil_plan *plan, FILE *f)
{
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    const veil_plan_info *in = &info;
    const int latency = in->packing == VEIL_PACKING_LATENCY;
    char a[32], b[32], c[32];
    fprintf(f, "packing:        %s\n", latency ? "latency (one sample per ciphertext)" : "throughput (one sample per slot)");
    fprintf(f, "depth:          %zu levels\n", in->depth);
    if (in->scheme == VEIL_ML_BGV) {
        fprintf(f, "scheme:         BGV, exact: outputs bounded by 2^%.1f, %zu plaintext modul%s of %.1f bits in all (",
                in->bound_bits, in->crt_count, in->crt_count == 1 ? "us" : "i", in->modulus_bits);
        for (size_t i = 0; i < in->crt_count; i++) fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)in->plain_moduli[i]);
        fprintf(f, ")\n");
        fprintf(f, "parameters:     N = %zu, %zu Q primes + %zu P primes, log2(QP) = %u, per modulus\n", in->n,
                in->q_count, in->p_count, in->log_qp);
    } else {
        fprintf(f, "parameters:     N = %zu, %zu Q primes + %zu P primes, log2(QP) = %u, dnum %zu, scale 2^%u\n", in->n,
                in->q_count, in->p_count, in->log_qp, in->dnum, in->scale_bits);
        if (in->input_hi >= in->input_lo)
            fprintf(f, "bounds:         inputs within [%.6g, %.6g] (encryption refuses others), outputs |y| <= %.6g\n",
                    in->input_lo, in->input_hi, in->output_bound);
    }
    fprintf(f, "slots:          %zu%s\n", in->slots, latency ? " (padded width)" : "");
    fprintf(f, "batch:          %zu samples per ciphertext set\n", in->batch);
    fprintf(f, "rotation keys:  %zu\n", in->rotations);
    fprintf(f, "ciphertexts:    %zu in, %zu out per %s\n", in->in_ciphertexts, in->out_ciphertexts,
            latency ? "sample" : "batch");
    const double inputs = (double)veil_plan_input_bytes(plan, latency ? 1 : in->batch);
    fprintf(f, "eval keys:      %s (%.0f bytes, exact)\n", cli_size_text(a, sizeof a, in->eval_key_bytes),
            in->eval_key_bytes);
    fprintf(f, "inputs:         %s per %s (%.0f bytes, exact), a fresh ciphertext %s\n",
            cli_size_text(b, sizeof b, inputs), latency ? "sample" : "batch", inputs,
            cli_size_text(c, sizeof c, in->ciphertext_bytes));
    fprintf(f, "estimates:      server time ~%.3g s per %s (single thread), memory ~%s on the server, ~%s for keygen\n",
            in->estimated_seconds, latency ? "sample" : "batch", cli_size_text(a, sizeof a, in->estimated_memory_bytes),
            cli_size_text(b, sizeof b, in->keygen_memory_bytes));
    if (in->scheme != VEIL_ML_BGV && !latency && !in->bootstrap_points) /* docs/marketplace.md: weights at q_l */
        fprintf(f, "encrypted:      veil encrypt-model: the same parameters, levels and keys; one ciphertext of about "
                   "%s (public-key encrypted: not seeded) per weight and bias\n",
                cli_size_text(c, sizeof c, 2 * in->ciphertext_bytes));
}

/* Where the plan bootstraps, what it costs, and which packing pays (docs/bootstrapping.md, "In the ML layer"). */
static void print_bootstraps(const veil_plan *plan, FILE *f)
{
    veil_plan_info in;
    veil_plan_get_info(plan, &in);
    if (!in.bootstrap_points) return;
    char a[32];
    const int latency = in.packing == VEIL_PACKING_LATENCY;
    if (latency)
        fprintf(f, "bootstraps:     %zu point%s, each back to level %zu; %zu bootstrap%s per sample (one sparse "
                   "bootstrap of %zu slots per point), ~%.3g s of the estimate (single thread)\n", in.bootstrap_points,
                in.bootstrap_points == 1 ? "" : "s", in.bootstrap_levels, in.bootstraps, in.bootstraps == 1 ? "" : "s",
                in.slots, in.bootstrap_seconds);
    else
        fprintf(f, "bootstraps:     %zu point%s, each back to level %zu; %zu bootstraps per batch of %zu samples (one "
                   "per ciphertext), ~%.3g s of the estimate (single thread)\n", in.bootstrap_points,
                in.bootstrap_points == 1 ? "" : "s", in.bootstrap_levels, in.bootstraps, in.batch, in.bootstrap_seconds);
    const double worst = in.bootstrap_error_bits; /* each point's shift keeps worst + shift within 2^-5 */
    for (size_t k = 0; k < in.bootstrap_points; k++) {
        size_t stage = 0;
        const char *what = NULL;
        int shift = 0;
        double bound = 0;
        veil_error err = {0};
        if (veil_plan_bootstrap_point(plan, k, &stage, &what, &shift, &bound, &err) != VEIL_OK) return;
        fprintf(f, "  after stage %zu (%s): values |v| <= %.4g, divided by 2^%d before the bootstrap (folded into the "
                   "stage) and multiplied by 2^%d after: an error of about 2^%.1f (its worst with %zu slots, 2^-%.1f on "
                   "[-1, 1], times 2^%d)\n", stage + 1, what, bound, shift, shift, shift - worst, in.slots, worst, shift);
    }
    fprintf(f, "bootstrap keys: %s of the eval keys (%.0f bytes: the Galois keys of the DFTs and the encapsulation "
               "key)\n", cli_size_text(a, sizeof a, in.bootstrap_key_bytes), in.bootstrap_key_bytes);
    /* which packing pays: n samples cost n x latency, or ceil(n / batch) x a throughput batch */
    const double lat = in.latency_sample_seconds, thr = in.throughput_batch_seconds;
    if (lat > 0 && thr > 0) {
        const double from = ceil(thr / lat);
        fprintf(f, "packing choice: latency ~%.3g s per sample; throughput ~%.3g s per batch of %zu samples (~%.3g s per "
                   "sample when full): throughput pays from %.0f samples on\n", lat, thr, in.throughput_batch,
                thr / (double)in.throughput_batch, from);
        if (!latency && from > (double)in.batch)
            fprintf(f, "                for %zu samples the latency packing costs less (--latency)\n", in.batch);
        if (latency && from > 1)
            fprintf(f, "                for fewer than %.0f samples this latency plan costs less\n", from);
    } else {
        fprintf(f, "packing choice: the %s packing is refused for this model with bootstraps\n",
                latency ? "throughput" : "latency");
    }
}

/* What --flood costs a model's plan: the plan the same options make without it, side by side. */
static void print_flood_cost(const cli_options *o, const veil_model *m, const veil_plan *flooded, FILE *f)
{
    cli_options plain = *o;
    plain.flood = 0;
    veil_plan *without = NULL;
    veil_plan_info a, b;
    veil_plan_get_info(flooded, &a);
    if (cli_make_plan(&plain, m, &without) != EXIT_OK) return;
    veil_plan_get_info(without, &b);
    char x[32], y[32];
    fprintf(f, "cost of --flood: N %zu (%zu without), log2(QP) %u (%u), scale 2^%u (2^%u), %zu Q primes (%zu), "
               "eval keys %s (%s), server time ~%.3g s (%.3g s) per %s of %zu sample(s) (%zu)\n", a.n, b.n, a.log_qp,
            b.log_qp, a.scale_bits, b.scale_bits, a.q_count, b.q_count, cli_size_text(x, sizeof x, a.eval_key_bytes),
            cli_size_text(y, sizeof y, b.eval_key_bytes), a.estimated_seconds, b.estimated_seconds,
            a.packing == VEIL_PACKING_LATENCY ? "sample" : "batch", a.batch, b.batch);
    veil_plan_free(without);
}

/* Bootstrapped training: where the bootstraps go for K iterations, and what they cost. */
static void print_train_bootstraps(const veil_train_info *ti, size_t iterations, FILE *f)
{
    const size_t m = ti->iterations_per_bootstrap, count = veil_train_bootstraps(ti, iterations);
    char a[32];
    fprintf(f, "bootstrapping:  the weights (%zu slots) return to level %zu, which holds %zu iteration%s: %zu refresh%s "
               "in %zu iterations", ti->bootstrap_slots, ti->bootstrap_level, m, m == 1 ? "" : "s", count,
            count == 1 ? "" : "es", iterations);
    if (count) {
        fprintf(f, ", before iteration%s %zu", count == 1 ? "" : "s", 2 + m);
        if (count > 1) fprintf(f, ", %zu", 2 + 2 * m);
        if (count > 2) fprintf(f, ", ..., %zu", 2 + count * m);
    }
    fprintf(f, " (counting from 1)\n");
    if (ti->task == VEIL_TRAIN_LINEAR)
        fprintf(f, "                linear regression: a learning rate of at most 1/(F + 1) = %.4g (what bounds the "
                   "weights for bootstrapping)\n", 1.0 / ((double)ti->features + 1));
    if (ti->task == VEIL_TRAIN_LOGISTIC)
        fprintf(f, "                each refresh bootstraps the weights and Nesterov's previous weights (2 bootstraps; "
                   "the last iteration's momentum is 0)\n");
    fprintf(f, "                keys: %s more in the eval keys (%zu Galois keys the rotations lack, and the "
               "encapsulation key); ~%.3g s per bootstrap (one thread, model)\n",
            cli_size_text(a, sizeof a, ti->bootstrap_key_bytes), ti->bootstrap_galois_keys, ti->bootstrap_seconds);
}

static void print_train_plan(const veil_plan *plan, size_t iterations, FILE *f)
{
    veil_plan_info in;
    veil_train_info ti;
    veil_error err = {0};
    veil_plan_get_info(plan, &in);
    if (veil_plan_get_train_info(plan, &ti, &err) != VEIL_OK) return;
    if (ti.task == VEIL_TRAIN_LOGISTIC)
        fprintf(f, "training:       logistic regression, %zu features, Nesterov's accelerated gradient; sigmoid of "
                   "degree %u over [-%u, %u]\n", ti.features, ti.degree, ti.range, ti.range);
    else
        fprintf(f, "training:       linear regression, %zu features, gradient descent\n", ti.features);
    if (ti.bootstrap_level)
        fprintf(f, "iterations:     any number, up to %zu (%zu levels each, the first 1; bootstrapped, %zu levels in "
                   "all)\n", ti.max_iterations, ti.depth_per_iteration, in.q_count - 1);
    else
        fprintf(f, "iterations:     at most %zu (%zu levels each, the first 1; %zu levels in all)\n", ti.max_iterations,
                ti.depth_per_iteration, in.q_count - 1);
    if (ti.bootstrap_level) print_train_bootstraps(&ti, iterations, f);
    fprintf(f, "parameters:     N = %zu, %zu Q primes + %zu P primes, log2(QP) = %u, dnum %zu, scale 2^%u\n", in.n,
            in.q_count, in.p_count, in.log_qp, in.dnum, in.scale_bits);
    fprintf(f, "packing:        %zu slots per record, %zu records per ciphertext\n", ti.block, ti.records_per_ciphertext);
    char a[32], b[32], c[32];
    const double one = (double)veil_plan_input_bytes(plan, in.batch),
                 more = (double)veil_plan_input_bytes(plan, 2 * in.batch) - one;
    fprintf(f, "eval keys:      %s (%.0f bytes, exact), %zu rotation keys\n",
            cli_size_text(a, sizeof a, in.eval_key_bytes), in.eval_key_bytes, in.rotations);
    fprintf(f, "data:           %s for up to %zu records (%.0f bytes, exact), %s more per further %zu\n",
            cli_size_text(b, sizeof b, one), in.batch, one, cli_size_text(c, sizeof c, more), in.batch);
    fprintf(f, "estimates:      %.2f s per iteration and ciphertext of records (one thread); memory about %s on the "
               "server, %s for keygen\n", in.estimated_seconds, cli_size_text(a, sizeof a, in.estimated_memory_bytes),
            cli_size_text(b, sizeof b, in.keygen_memory_bytes));
}

int cli_cmd_plan(int argc, char **argv)
{
    cli_options o;
    if (!cli_parse(argc, argv, &o, CLI_PLAN) || (!o.train && !cli_need(o.model, "--model"))) return EXIT_USAGE;
    veil_model *m = NULL;
    double *calib = NULL;
    veil_plan *plan = NULL;
    int rc = EXIT_OK;
    if (o.train) {
        CLI_CHECK(cli_make_train_plan(&o, &plan));
        print_train_plan(plan, o.iterations, stdout);
        CLI_CHECK(cli_finish_output());
        goto done;
    }
    CLI_CHECK(cli_load_model(&m, &o, &calib));
    CLI_CHECK(cli_make_plan(&o, m, &plan));
    printf("model:          %s (%zu inputs -> %zu outputs per sample)\n", o.model, veil_model_input_width(m),
           veil_model_output_width(m));
    fputs(veil_model_report(m), stdout);
    print_plan(plan, stdout);
    print_bootstraps(plan, stdout);
    if (o.out) { /* the plan file a data owner makes keys from (keygen --plan), without the model */
        veil_buffer pb = {0};
        veil_error err = {0};
        CLI_CHECK(cli_status(veil_plan_save(&pb, plan, &err), &err, NULL));
        CLI_CHECK(cli_save_buffer(o.out, &pb));
    }
    if (o.flood) print_flood_cost(&o, m, plan, stdout);
    CLI_CHECK(cli_finish_output());
done:
    veil_plan_free(plan);
    veil_model_free(m);
    free(calib);
    return rc;
}
