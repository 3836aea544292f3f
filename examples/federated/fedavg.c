/*
 * Federated averaging (FedAvg, McMahan et al., AISTATS 2017) among three hospitals under a joint key
 * (veil/party.h, docs/multiparty.md): each hospital trains a logistic regression on its own rows in plaintext,
 * encrypts its model times its record count under the group's joint public key, the server adds the three
 * ciphertexts, and the hospitals decrypt only the sum, together (each a smudged decryption share): no one,
 * the server included, sees a hospital's model. The average is the sum over the total record count (public).
 *
 *   fedavg DIR [ROUNDS] [LOCAL_EPOCHS] [T]   DIR from split.py (hospital1..3.csv, test.csv)
 *
 * T = 2 makes the group 2-out-of-3 (veil/party.h, "t-out-of-N": each hospital deals its secret share to the
 * others, sealed to their box keys): each round then one hospital is offline at decryption, in turn, and the
 * other two decrypt the sum.
 *
 * Prints the test accuracy of the encrypted FedAvg beside the same FedAvg in plaintext and centralized
 * training on the union (the same gradient descent, ROUNDS x LOCAL_EPOCHS epochs), the bytes each hospital
 * sends and receives per round, and the time of each step. Exits 1 unless the encrypted run's weights stay
 * within 1e-4 of the plaintext FedAvg's and its accuracy matches it.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <veil/veil.h>

#define HOSPITALS 3
#define MAX_FEATURES 64
#define LEVEL 1 /* the updates travel at level 1 of ckks-n8192-d2 (90 bits): n_k w_k * 2^40 stays below 2^62 */

typedef struct data {
    double *x; /* rows x features */
    double *y;
    size_t rows, features;
} data;

#define TRY(call)                                                                                                 \
    do {                                                                                                          \
        if ((call) != VEIL_OK) {                                                                                  \
            fprintf(stderr, "fedavg: %s\n", err.detail);                                                          \
            exit(1);                                                                                              \
        }                                                                                                         \
    } while (0)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A CSV of numbers, the label last. */
static void read_csv(const char *path, data *d)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "fedavg: cannot read %s (run split.py first)\n", path);
        exit(1);
    }
    char line[8192];
    size_t cap = 0;
    memset(d, 0, sizeof *d);
    while (fgets(line, sizeof line, f)) {
        double v[MAX_FEATURES + 1];
        size_t n = 0;
        for (char *p = line, *end; n <= MAX_FEATURES; p = end + 1) {
            v[n++] = strtod(p, &end);
            if (end == p) {
                n--;
                break;
            }
            if (*end != ',') break;
        }
        if (n < 2 || (d->features && n - 1 != d->features)) {
            fprintf(stderr, "fedavg: %s: a row of %zu values\n", path, n);
            exit(1);
        }
        d->features = n - 1;
        if (d->rows == cap) {
            cap = cap ? 2 * cap : 256;
            d->x = realloc(d->x, cap * d->features * sizeof *d->x);
            d->y = realloc(d->y, cap * sizeof *d->y);
            if (!d->x || !d->y) exit(1);
        }
        memcpy(d->x + d->rows * d->features, v, d->features * sizeof *v);
        d->y[d->rows++] = v[n - 1];
    }
    fclose(f);
}

static double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

/* w[0..F-1] the weights, w[F] the bias. */
static double predict(const double *w, const double *x, size_t f)
{
    double z = w[f];
    for (size_t j = 0; j < f; j++) z += w[j] * x[j];
    return sigmoid(z);
}

/* Full-batch gradient descent on the logistic loss, from w, for `epochs` steps. */
static void train(double *w, const data *d, size_t epochs)
{
    const size_t f = d->features;
    double g[MAX_FEATURES + 1];
    for (size_t e = 0; e < epochs; e++) {
        memset(g, 0, sizeof g);
        for (size_t r = 0; r < d->rows; r++) {
            const double *x = d->x + r * f, diff = predict(w, x, f) - d->y[r];
            for (size_t j = 0; j < f; j++) g[j] += diff * x[j];
            g[f] += diff;
        }
        for (size_t j = 0; j <= f; j++) w[j] -= 0.5 * g[j] / (double)d->rows;
    }
}

static double accuracy(const double *w, const data *d)
{
    size_t right = 0;
    for (size_t r = 0; r < d->rows; r++)
        right += (predict(w, d->x + r * d->features, d->features) >= 0.5) == (d->y[r] >= 0.5);
    return (double)right / (double)d->rows;
}

static size_t stored_ct(const veil_ckks_ciphertext *ct)
{
    veil_error err = {0};
    veil_buffer b = {0};
    TRY(veil_ckks_ciphertext_save(&b, ct, 0, &err));
    const size_t n = b.len;
    veil_buffer_free(&b);
    return n;
}

static size_t stored_share(const veil_party_share *s)
{
    veil_error err = {0};
    veil_buffer b = {0};
    TRY(veil_party_share_save(&b, s, 0, &err));
    const size_t n = b.len;
    veil_buffer_free(&b);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fedavg DIR [ROUNDS] [LOCAL_EPOCHS]   (DIR from examples/federated/split.py)\n");
        return 2;
    }
    const size_t rounds = argc > 2 ? (size_t)atoi(argv[2]) : 10, epochs = argc > 3 ? (size_t)atoi(argv[3]) : 5;
    const size_t threshold = argc > 4 ? (size_t)atoi(argv[4]) : HOSPITALS;
    if (rounds < 1 || rounds > 1000 || epochs < 1 || epochs > 1000 || threshold < 2 || threshold > HOSPITALS) {
        fprintf(stderr, "fedavg: ROUNDS and LOCAL_EPOCHS are 1 to 1000, T is 2 or 3\n");
        return 2;
    }
    data h[HOSPITALS], test, all = {0};
    char path[4096];
    for (int k = 0; k < HOSPITALS; k++) {
        snprintf(path, sizeof path, "%s/hospital%d.csv", argv[1], k + 1);
        read_csv(path, &h[k]);
    }
    snprintf(path, sizeof path, "%s/test.csv", argv[1]);
    read_csv(path, &test);
    const size_t f = test.features;
    size_t total = 0;
    for (int k = 0; k < HOSPITALS; k++) {
        if (h[k].features != f) return fprintf(stderr, "fedavg: the hospitals' features differ\n"), 1;
        total += h[k].rows;
    }
    /* the union, for centralized training */
    all.features = f;
    all.x = malloc(total * f * sizeof *all.x);
    all.y = malloc(total * sizeof *all.y);
    if (!all.x || !all.y) return 1;
    for (int k = 0; k < HOSPITALS; k++) {
        memcpy(all.x + all.rows * f, h[k].x, h[k].rows * f * sizeof *all.x);
        memcpy(all.y + all.rows, h[k].y, h[k].rows * sizeof *all.y);
        all.rows += h[k].rows;
    }

    /* the group and its joint public key (round 1 of docs/multiparty.md; no evaluation keys: only additions) */
    veil_error err = {0};
    veil_params *params = NULL;
    veil_context *ctx = NULL;
    veil_party_group *group = NULL;
    veil_secret_key *sk[HOSPITALS];
    veil_party_share *pk_share[HOSPITALS], *agg = NULL;
    veil_public_key *pk = NULL;
    TRY(veil_params_preset(&params, "ckks-n8192-d2", &err)); /* 128-bit security */
    TRY(veil_context_new(&ctx, params, NULL, &err));
    TRY(veil_party_group_new(&group, ctx, HOSPITALS, threshold, NULL, &err));
    double t0 = now();
    for (int k = 0; k < HOSPITALS; k++) {
        TRY(veil_secret_key_new(&sk[k], ctx, NULL, &err));
        TRY(veil_party_public_key_share(&pk_share[k], group, (size_t)k + 1, sk[k], NULL, &err));
    }
    const double t_keyshare = (now() - t0) / HOSPITALS;
    const size_t key_bytes = stored_share(pk_share[0]);
    TRY(veil_party_aggregate(&agg, group, (const veil_party_share *const *)pk_share, HOSPITALS, &err));
    TRY(veil_party_public_key(&pk, group, agg, &err));
    /* t-out-of-N: box keys, deals (each sealed to its recipient: they may travel through the server), and each
     * hospital's threshold key from the deals addressed to it */
    veil_party_threshold_key *tkey[HOSPITALS] = {NULL};
    size_t deal_bytes = 0;
    if (threshold < HOSPITALS) {
        veil_party_box_key *box[HOSPITALS];
        veil_party_deal *deal[HOSPITALS][HOSPITALS];
        for (int k = 0; k < HOSPITALS; k++) TRY(veil_party_box_key_new(&box[k], group, (size_t)k + 1, sk[k], &err));
        for (int k = 0; k < HOSPITALS; k++)
            TRY(veil_party_deal_make(deal[k], HOSPITALS, group, (size_t)k + 1, sk[k],
                                     (const veil_party_box_key *const *)box, HOSPITALS, NULL, &err));
        veil_buffer b = {0};
        TRY(veil_party_deal_save(&b, deal[0][1], &err));
        deal_bytes = (HOSPITALS - 1) * b.len; /* a hospital sends one deal to each other one */
        veil_buffer_free(&b);
        for (int j = 0; j < HOSPITALS; j++) {
            const veil_party_deal *mine[HOSPITALS];
            for (int k = 0; k < HOSPITALS; k++) mine[k] = deal[k][j];
            TRY(veil_party_threshold_key_new(&tkey[j], group, (size_t)j + 1, sk[j],
                                             (const veil_party_box_key *const *)box, HOSPITALS, mine, HOSPITALS, &err));
        }
        for (int k = 0; k < HOSPITALS; k++) {
            veil_party_box_key_free(box[k]);
            for (int j = 0; j < HOSPITALS; j++) veil_party_deal_free(deal[k][j]);
        }
    }

    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *pt = NULL;
    veil_ckks_ciphertext *ct[HOSPITALS], *sum = NULL;
    TRY(veil_ckks_encoder_new(&enc, ctx, &err));
    TRY(veil_ckks_plaintext_new(&pt, ctx, &err));
    for (int k = 0; k < HOSPITALS; k++) TRY(veil_ckks_ciphertext_new(&ct[k], ctx, &err));
    TRY(veil_ckks_ciphertext_new(&sum, ctx, &err));

    double w_enc[MAX_FEATURES + 1] = {0}, w_plain[MAX_FEATURES + 1] = {0}, w_central[MAX_FEATURES + 1] = {0};
    double t_train = 0, t_encrypt = 0, t_sum = 0, t_share = 0, t_fuse = 0, worst = 0;
    size_t up_bytes = 0, down_bytes = 0;
    for (size_t r = 0; r < rounds; r++) {
        double upd[HOSPITALS][MAX_FEATURES + 1], plain_sum[MAX_FEATURES + 1] = {0};
        /* each hospital: local training from the global model, its update times its record count, encrypted */
        for (int k = 0; k < HOSPITALS; k++) {
            double wk[MAX_FEATURES + 1], pk_plain[MAX_FEATURES + 1];
            memcpy(wk, w_enc, sizeof wk);
            memcpy(pk_plain, w_plain, sizeof pk_plain);
            t0 = now();
            train(wk, &h[k], epochs);
            t_train += now() - t0;
            train(pk_plain, &h[k], epochs); /* the plaintext FedAvg, for reference */
            for (size_t j = 0; j <= f; j++) {
                upd[k][j] = (double)h[k].rows * wk[j];
                plain_sum[j] += (double)h[k].rows * pk_plain[j];
            }
            t0 = now();
            TRY(veil_ckks_encode(enc, pt, upd[k], NULL, f + 1, ldexp(1.0, 40), LEVEL, &err));
            TRY(veil_ckks_encrypt_pk(ctx, ct[k], pt, pk, NULL, &err));
            t_encrypt += now() - t0;
        }
        up_bytes += stored_ct(ct[0]);
        /* the server: the sum of the three (weighted by record counts: each update was multiplied by its own) */
        t0 = now();
        TRY(veil_ckks_add(ctx, sum, ct[0], ct[1], &err));
        for (int k = 2; k < HOSPITALS; k++) TRY(veil_ckks_add(ctx, sum, sum, ct[k], &err));
        t_sum += now() - t0;
        down_bytes += stored_ct(sum);
        /* each hospital: its decryption share of the sum (default smudging); anyone fuses them. t-out-of-N:
         * hospital r mod 3 + 1 is offline this round, the others decrypt (their Lagrange-weighted shares) */
        veil_party_share *share[HOSPITALS] = {NULL};
        size_t set[HOSPITALS], n_set = 0;
        for (size_t k = 0; k < HOSPITALS; k++)
            if (threshold == HOSPITALS || k != r % HOSPITALS) set[n_set++] = k + 1;
        t0 = now();
        for (size_t m = 0; m < n_set; m++) {
            const size_t k = set[m] - 1;
            if (threshold == HOSPITALS)
                TRY(veil_ckks_decrypt_share(&share[m], group, k + 1, sum, sk[k], NULL, NULL, &err));
            else
                TRY(veil_ckks_threshold_decrypt_share(&share[m], group, tkey[k], set, n_set, sum, NULL, NULL, &err));
        }
        t_share += (now() - t0) / (double)n_set;
        up_bytes += stored_share(share[0]);
        down_bytes += (n_set - 1) * stored_share(share[1]); /* each fuses: the others' shares */
        double got[MAX_FEATURES + 1];
        t0 = now();
        TRY(veil_ckks_decrypt_joint(pt, group, sum, (const veil_party_share *const *)share, n_set, &err));
        TRY(veil_ckks_decode(enc, got, NULL, f + 1, pt, &err));
        t_fuse += now() - t0;
        for (size_t m = 0; m < n_set; m++) veil_party_share_free(share[m]);
        for (size_t j = 0; j <= f; j++) {
            w_enc[j] = got[j] / (double)total;
            w_plain[j] = plain_sum[j] / (double)total;
            worst = fmax(worst, fabs(w_enc[j] - w_plain[j]));
        }
    }
    train(w_central, &all, rounds * epochs);
    const double acc_enc = accuracy(w_enc, &test), acc_plain = accuracy(w_plain, &test),
                 acc_central = accuracy(w_central, &test);
    printf("%s: %zu features, %d hospitals of %zu, %zu, %zu rows; %zu rounds of %zu local epochs; test %zu rows\n",
           argv[1], f, HOSPITALS, h[0].rows, h[1].rows, h[2].rows, rounds, epochs, test.rows);
    if (threshold < HOSPITALS)
        printf("group: %zu-out-of-%d, each round one hospital offline at decryption (in turn); dealing: %.1f kB "
               "sent per hospital, once\n", threshold, HOSPITALS, (double)deal_bytes / 1e3);
    printf("accuracy: encrypted FedAvg %.4f, plaintext FedAvg %.4f, centralized plaintext %.4f\n", acc_enc,
           acc_plain, acc_central);
    printf("largest weight difference, encrypted vs plaintext FedAvg: %.2e\n", worst);
    printf("bytes per hospital per round: sends %.1f kB (its encrypted update, its decryption share), receives "
           "%.1f kB (the sum, the others' shares); once: %.1f kB (its public-key share)\n",
           (double)up_bytes / (double)rounds / 1e3, (double)down_bytes / (double)rounds / 1e3, (double)key_bytes / 1e3);
    printf("time per step (one thread): key share %.2f ms; per round: local training %.2f ms, encryption %.2f ms "
           "(per hospital), server sum %.3f ms, decryption share %.2f ms (per hospital), fusion %.2f ms\n",
           1e3 * t_keyshare, 1e3 * t_train / (double)(rounds * HOSPITALS),
           1e3 * t_encrypt / (double)(rounds * HOSPITALS), 1e3 * t_sum / (double)rounds,
           1e3 * t_share / (double)rounds, 1e3 * t_fuse / (double)rounds);
    const int ok = worst <= 1e-4 && acc_enc == acc_plain;
    printf("federated: %s\n", ok ? "ok" : "FAILED (the encrypted run left the plaintext one)");

    for (int k = 0; k < HOSPITALS; k++) {
        veil_ckks_ciphertext_free(ct[k]);
        veil_secret_key_free(sk[k]);
        veil_party_threshold_key_free(tkey[k]);
        veil_party_share_free(pk_share[k]);
        free(h[k].x);
        free(h[k].y);
    }
    veil_ckks_ciphertext_free(sum);
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    veil_public_key_free(pk);
    veil_party_share_free(agg);
    veil_party_group_free(group);
    veil_context_free(ctx);
    veil_params_free(params);
    free(all.x);
    free(all.y);
    free(test.x);
    free(test.y);
    return ok ? 0 : 1;
}
