
typedef enum veil_status {
    VEIL_OK = 0,
    VEIL_ERR_NULL = 1,
    VEIL_ERR_ARGUMENT = 2,
    VEIL_ERR_NO_MEMORY = 3,
    VEIL_ERR_MISMATCH = 4,
    VEIL_ERR_UNSUPPORTED = 5,
    VEIL_ERR_RANDOM = 6,
    VEIL_ERR_NOT_FOUND = 7,
    VEIL_ERR_INTERNAL = 8,
    VEIL_ERR_INSECURE = 9,
    VEIL_ERR_FORMAT = 10,
    VEIL_ERR_IO = 11,
    VEIL_ERR_NOISE = 12
} veil_status;
const char *veil_strerror(veil_status status);
const char *veil_version(void);
typedef struct veil_error {
    veil_status status;
    char detail[256];
} veil_error;
void veil_error_clear(veil_error *err);
void *veil_alloc(size_t count, size_t size);
void veil_free(void *ptr);
void veil_free_secret(void *ptr, size_t size);
void veil_wipe(void *ptr, size_t size);
typedef struct veil_prng veil_prng;
veil_status veil_prng_new_os(veil_prng **out, veil_error *err);
veil_status veil_prng_new_seeded(veil_prng **out, const uint8_t seed[32], uint64_t stream_id,
                                 veil_error *err);
void veil_prng_free(veil_prng *prng);
void veil_prng_bytes(veil_prng *prng, void *buf, size_t len);
uint64_t veil_prng_u64(veil_prng *prng);
uint64_t veil_prng_below(veil_prng *prng, uint64_t bound);
veil_status veil_seed_new(uint8_t seed[32], veil_error *err);
int veil_threads_default(void);


uint64_t veil_mod_add(uint64_t a, uint64_t b, uint64_t q);
uint64_t veil_mod_sub(uint64_t a, uint64_t b, uint64_t q);
uint64_t veil_mod_mul(uint64_t a, uint64_t b, uint64_t q);
uint64_t veil_mod_pow(uint64_t base, uint64_t exp, uint64_t q);
veil_status veil_mod_inv(uint64_t *out, uint64_t a, uint64_t q, veil_error *err);
int veil_is_prime(uint64_t n);
veil_status veil_prime_chain(uint64_t *out, const unsigned *bits, size_t count, size_t n,
                             const uint64_t *avoid, size_t avoid_count, veil_error *err);
veil_status veil_primitive_root(uint64_t *out, uint64_t q, uint64_t order, veil_error *err);
typedef enum veil_kernel {
    VEIL_KERNEL_AUTO = 0,
    VEIL_KERNEL_SCALAR = 1,
    VEIL_KERNEL_AVX2 = 2
} veil_kernel;
typedef struct veil_ring_options {
    veil_kernel kernel;
    int threads;
} veil_ring_options;
typedef struct veil_ring veil_ring;
veil_status veil_ring_new(veil_ring **out, size_t n, const uint64_t *primes, size_t count,
                          const veil_ring_options *opts, veil_error *err);
void veil_ring_free(veil_ring *ring);
size_t veil_ring_degree(const veil_ring *ring);
size_t veil_ring_prime_count(const veil_ring *ring);
uint64_t veil_ring_prime(const veil_ring *ring, size_t index);
veil_kernel veil_ring_kernel(const veil_ring *ring);
int veil_ring_threads(const veil_ring *ring);
veil_status veil_ring_set_threads(veil_ring *ring, int threads, veil_error *err);
veil_status veil_ntt_forward(const veil_ring *ring, size_t prime_index, uint64_t *coeffs, veil_error *err);
veil_status veil_ntt_inverse(const veil_ring *ring, size_t prime_index, uint64_t *coeffs, veil_error *err);
typedef enum veil_form {
    VEIL_FORM_COEFF = 0,
    VEIL_FORM_EVAL = 1
} veil_form;
typedef struct veil_poly veil_poly;
veil_status veil_poly_new(veil_poly **out, const veil_ring *ring, const size_t *base, size_t count,
                          veil_form form, veil_error *err);
veil_status veil_poly_new_range(veil_poly **out, const veil_ring *ring, size_t first, size_t count,
                                veil_form form, veil_error *err);
void veil_poly_free(veil_poly *poly);
const veil_ring *veil_poly_ring(const veil_poly *poly);
size_t veil_poly_limb_count(const veil_poly *poly);
size_t veil_poly_prime_index(const veil_poly *poly, size_t limb);
veil_form veil_poly_form(const veil_poly *poly);
uint64_t *veil_poly_limb(veil_poly *poly, size_t limb);
const uint64_t *veil_poly_limb_const(const veil_poly *poly, size_t limb);
veil_status veil_poly_copy(veil_poly *dst, const veil_poly *src, veil_error *err);
veil_status veil_poly_set_i64(veil_poly *poly, const int64_t *coeffs, veil_error *err);
veil_status veil_poly_validate(const veil_poly *poly, veil_error *err);
veil_status veil_poly_to_eval(veil_poly *poly, veil_error *err);
veil_status veil_poly_to_coeff(veil_poly *poly, veil_error *err);
veil_status veil_poly_add(veil_poly *out, const veil_poly *a, const veil_poly *b, veil_error *err);
veil_status veil_poly_sub(veil_poly *out, const veil_poly *a, const veil_poly *b, veil_error *err);
veil_status veil_poly_neg(veil_poly *out, const veil_poly *a, veil_error *err);
veil_status veil_poly_mul(veil_poly *out, const veil_poly *a, const veil_poly *b, veil_error *err);
veil_status veil_poly_mul_acc(veil_poly *out, const veil_poly *a, const veil_poly *b, veil_error *err);
veil_status veil_poly_mul_scalar(veil_poly *out, const veil_poly *a, int64_t s, veil_error *err);
veil_status veil_poly_crt_compose(uint64_t *out, size_t words, const veil_poly *poly, veil_error *err);
veil_status veil_poly_set_multiword(veil_poly *poly, const uint64_t *in, size_t words, veil_error *err);
typedef struct veil_base_conv veil_base_conv;
veil_status veil_base_conv_new(veil_base_conv **out, const veil_ring *ring, const size_t *from, size_t from_count,
                               const size_t *to, size_t to_count, veil_error *err);
void veil_base_conv_free(veil_base_conv *conv);
veil_status veil_base_conv_apply(const veil_base_conv *conv, veil_poly *out, const veil_poly *in, veil_error *err);
veil_status veil_poly_rescale(veil_poly *out, const veil_poly *in, veil_error *err);
veil_status veil_poly_mod_up(veil_poly *out, const veil_poly *in, const veil_base_conv *conv, veil_error *err);
veil_status veil_poly_mod_down(veil_poly *out, const veil_poly *in, const veil_base_conv *conv, veil_error *err);
veil_status veil_poly_rescale_t(veil_poly *out, const veil_poly *in, uint64_t t, veil_error *err);
veil_status veil_poly_mod_down_t(veil_poly *out, const veil_poly *in, const veil_base_conv *conv, uint64_t t,
                                 veil_error *err);
veil_status veil_poly_automorphism(veil_poly *out, const veil_poly *in, uint64_t k, veil_error *err);
veil_status veil_sample_uniform(veil_poly *out, veil_prng *prng, veil_error *err);
veil_status veil_sample_ternary(int8_t *out, size_t n, veil_prng *prng, veil_error *err);
veil_status veil_sample_ternary_hw(int8_t *out, size_t n, size_t h, veil_prng *prng, veil_error *err);
veil_status veil_sample_cbd(int8_t *out, size_t n, veil_prng *prng, veil_error *err);
veil_status veil_sample_gaussian_wide(int64_t *out, size_t n, double sigma, veil_prng *prng, veil_error *err);
veil_status veil_poly_set_small(veil_poly *poly, const int8_t *coeffs, veil_error *err);


typedef enum veil_security {
    VEIL_SECURITY_128 = 0,
    VEIL_SECURITY_192 = 1,
    VEIL_SECURITY_256 = 2,
    VEIL_SECURITY_NONE = 3
} veil_security;
typedef enum veil_secret_kind {
    VEIL_SECRET_TERNARY = 0,
    VEIL_SECRET_TERNARY_HW = 1
} veil_secret_kind;
unsigned veil_security_max_log_qp(size_t n, veil_security level);
unsigned veil_primes_log_product(const uint64_t *primes, size_t count);
typedef struct veil_params_spec {
    size_t n;
    size_t q_count;
    const uint64_t *q;
    const unsigned *q_bits;
    size_t p_count;
    const uint64_t *p;
    const unsigned *p_bits;
    size_t dnum;
    veil_secret_kind secret;
    size_t hamming_weight;
    veil_security security;
    uint64_t plain_modulus;
} veil_params_spec;
typedef struct veil_params veil_params;
veil_status veil_params_new(veil_params **out, const veil_params_spec *spec, veil_error *err);
void veil_params_free(veil_params *params);
veil_status veil_params_copy(veil_params **out, const veil_params *params, veil_error *err);
typedef struct veil_params_request {
    unsigned depth;
    unsigned scale_bits;
    unsigned first_bits;
    size_t slots;
    veil_security security;
    veil_secret_kind secret;
} veil_params_request;
veil_status veil_params_select(veil_params **out, const veil_params_request *request, veil_error *err);
veil_status veil_params_preset(veil_params **out, const char *name, veil_error *err);
const char *const *veil_params_preset_names(void);
size_t veil_params_degree(const veil_params *params);
size_t veil_params_q_count(const veil_params *params);
size_t veil_params_p_count(const veil_params *params);
uint64_t veil_params_q(const veil_params *params, size_t i);
uint64_t veil_params_p(const veil_params *params, size_t i);
size_t veil_params_dnum(const veil_params *params);
veil_security veil_params_security(const veil_params *params);
veil_secret_kind veil_params_secret(const veil_params *params);
size_t veil_params_hamming_weight(const veil_params *params);
unsigned veil_params_log_qp(const veil_params *params);
uint64_t veil_params_plain_modulus(const veil_params *params);
void veil_params_hash(const veil_params *params, uint8_t out[32]);


typedef struct veil_context veil_context;
veil_status veil_context_new(veil_context **out, const veil_params *params, const veil_ring_options *opts,
                             veil_error *err);
void veil_context_free(veil_context *ctx);
const veil_params *veil_context_params(const veil_context *ctx);
const veil_ring *veil_context_ring(const veil_context *ctx);
size_t veil_context_max_level(const veil_context *ctx);
typedef struct veil_secret_key veil_secret_key;
typedef struct veil_public_key veil_public_key;
typedef struct veil_switch_key veil_switch_key;
veil_status veil_secret_key_new(veil_secret_key **out, const veil_context *ctx, veil_prng *prng, veil_error *err);
void veil_secret_key_free(veil_secret_key *sk);
veil_status veil_public_key_new(veil_public_key **out, const veil_context *ctx, const veil_secret_key *sk,
                                veil_prng *prng, veil_error *err);
void veil_public_key_free(veil_public_key *pk);
veil_status veil_relin_key_new(veil_switch_key **out, const veil_context *ctx, const veil_secret_key *sk,
                               veil_prng *prng, veil_error *err);
veil_status veil_galois_key_new(veil_switch_key **out, const veil_context *ctx, const veil_secret_key *sk,
                                uint64_t galois_element, veil_prng *prng, veil_error *err);
void veil_switch_key_free(veil_switch_key *key);
uint64_t veil_switch_key_galois_element(const veil_switch_key *key);
uint64_t veil_galois_element_rotation(const veil_context *ctx, long steps);
uint64_t veil_galois_element_conjugation(const veil_context *ctx);
veil_status veil_rotation_key_set(uint64_t *out, size_t *count, size_t max_out, const veil_context *ctx,
                                  const long *steps, size_t step_count, veil_error *err);


typedef struct veil_ckks_encoder veil_ckks_encoder;
typedef struct veil_ckks_plaintext veil_ckks_plaintext;
typedef struct veil_ckks_ciphertext veil_ckks_ciphertext;
veil_status veil_ckks_encoder_new(veil_ckks_encoder **out, const veil_context *ctx, veil_error *err);
void veil_ckks_encoder_free(veil_ckks_encoder *enc);
veil_status veil_ckks_plaintext_new(veil_ckks_plaintext **out, const veil_context *ctx, veil_error *err);
void veil_ckks_plaintext_free(veil_ckks_plaintext *pt);
veil_status veil_ckks_ciphertext_new(veil_ckks_ciphertext **out, const veil_context *ctx, veil_error *err);
void veil_ckks_ciphertext_free(veil_ckks_ciphertext *ct);
size_t veil_ckks_plaintext_level(const veil_ckks_plaintext *pt);
double veil_ckks_plaintext_scale(const veil_ckks_plaintext *pt);
size_t veil_ckks_ciphertext_level(const veil_ckks_ciphertext *ct);
double veil_ckks_ciphertext_scale(const veil_ckks_ciphertext *ct);
size_t veil_ckks_ciphertext_size(const veil_ckks_ciphertext *ct);
veil_status veil_ckks_encode(const veil_ckks_encoder *enc, veil_ckks_plaintext *out, const double *re,
                             const double *im, size_t count, double scale, size_t level, veil_error *err);
veil_status veil_ckks_encode_sparse(const veil_ckks_encoder *enc, veil_ckks_plaintext *out, const double *re,
                                    const double *im, size_t slots, double scale, size_t level, veil_error *err);
veil_status veil_ckks_decode(const veil_ckks_encoder *enc, double *re, double *im, size_t count,
                             const veil_ckks_plaintext *pt, veil_error *err);
veil_status veil_ckks_encrypt_pk(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_plaintext *pt,
                                 const veil_public_key *pk, veil_prng *prng, veil_error *err);
veil_status veil_ckks_encrypt_sk(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_plaintext *pt,
                                 const veil_secret_key *sk, veil_prng *prng, veil_error *err);
veil_status veil_ckks_decrypt(const veil_context *ctx, veil_ckks_plaintext *out, const veil_ckks_ciphertext *ct,
                              const veil_secret_key *sk, veil_error *err);
typedef struct veil_ckks_error {
    double coeff_bits;
    double slot_error;
    double precision_bits;
} veil_ckks_error;
veil_status veil_ckks_measure_error(const veil_ckks_encoder *enc, veil_ckks_error *out, const veil_ckks_ciphertext *ct,
                                    const veil_secret_key *sk, const double *re, const double *im, size_t count,
                                    veil_error *err);
typedef struct veil_ckks_flooding {
    double error_bits;
    unsigned statistical_security;
    unsigned long queries;
} veil_ckks_flooding;
veil_status veil_ckks_flooding_bits(const veil_ckks_flooding *flooding, double *log2_sigma, veil_error *err);
veil_status veil_ckks_decrypt_flooded(const veil_context *ctx, veil_ckks_plaintext *out, const veil_ckks_ciphertext *ct,
                                      const veil_secret_key *sk, const veil_ckks_flooding *flooding, veil_prng *prng,
                                      veil_error *err);
veil_status veil_ckks_add(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                          const veil_ckks_ciphertext *b, veil_error *err);
veil_status veil_ckks_sub(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                          const veil_ckks_ciphertext *b, veil_error *err);
veil_status veil_ckks_negate(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                             veil_error *err);
veil_status veil_ckks_add_plain(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                const veil_ckks_plaintext *p, veil_error *err);
veil_status veil_ckks_mul_plain(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                const veil_ckks_plaintext *p, veil_error *err);
veil_status veil_ckks_mul_plain_accumulate(const veil_context *ctx, veil_ckks_ciphertext *acc,
                                           const veil_ckks_ciphertext *a, const veil_ckks_plaintext *p,
                                           veil_error *err);
veil_status veil_ckks_mul_integer(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                  int64_t k, veil_error *err);
veil_status veil_ckks_add_constant(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                   double c, veil_error *err);
veil_status veil_ckks_mul_constant(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                   double c, veil_error *err);
veil_status veil_ckks_mul_constant_to_scale(const veil_context *ctx, veil_ckks_ciphertext *out,
                                            const veil_ckks_ciphertext *a, double c, double scale, veil_error *err);
veil_status veil_ckks_mul(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                          const veil_ckks_ciphertext *b, veil_error *err);
veil_status veil_ckks_relinearize(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                  const veil_switch_key *relin_key, veil_error *err);
veil_status veil_ckks_rescale(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                              veil_error *err);
veil_status veil_ckks_mul_relin_rescale(const veil_context *ctx, veil_ckks_ciphertext *out,
                                        const veil_ckks_ciphertext *a, const veil_ckks_ciphertext *b,
                                        const veil_switch_key *relin_key, veil_error *err);
veil_status veil_ckks_mod_drop(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                               size_t level, veil_error *err);
veil_status veil_ckks_rotate(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                             long steps, const veil_switch_key *galois_key, veil_error *err);
veil_status veil_ckks_rotate_hoisted(const veil_context *ctx, veil_ckks_ciphertext *const *outs,
                                     const veil_ckks_ciphertext *a, const long *steps, size_t count,
                                     const veil_switch_key *const *galois_keys, veil_error *err);
veil_status veil_ckks_conjugate(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                const veil_switch_key *galois_key, veil_error *err);


typedef struct veil_bgv_request {
    unsigned depth;
    uint64_t t;
    bool batching;
    size_t min_n;
    veil_security security;
    unsigned linear_bits;
} veil_bgv_request;
veil_status veil_bgv_params_select(veil_params **out, const veil_bgv_request *request, veil_error *err);
typedef struct veil_bgv_encoder veil_bgv_encoder;
typedef struct veil_bgv_plaintext veil_bgv_plaintext;
typedef struct veil_bgv_ciphertext veil_bgv_ciphertext;
veil_status veil_bgv_encoder_new(veil_bgv_encoder **out, const veil_context *ctx, veil_error *err);
void veil_bgv_encoder_free(veil_bgv_encoder *enc);
bool veil_bgv_encoder_batching(const veil_bgv_encoder *enc);
veil_status veil_bgv_plaintext_new(veil_bgv_plaintext **out, const veil_context *ctx, veil_error *err);
void veil_bgv_plaintext_free(veil_bgv_plaintext *pt);
veil_status veil_bgv_encode(const veil_bgv_encoder *enc, veil_bgv_plaintext *out, const uint64_t *values, size_t count,
                            veil_error *err);
veil_status veil_bgv_encode_signed(const veil_bgv_encoder *enc, veil_bgv_plaintext *out, const int64_t *values,
                                   size_t count, veil_error *err);
veil_status veil_bgv_decode(const veil_bgv_encoder *enc, uint64_t *values, size_t count, const veil_bgv_plaintext *pt,
                            veil_error *err);
veil_status veil_bgv_decode_signed(const veil_bgv_encoder *enc, int64_t *values, size_t count,
                                   const veil_bgv_plaintext *pt, veil_error *err);
veil_status veil_bgv_encode_coeffs(const veil_bgv_encoder *enc, veil_bgv_plaintext *out, const int64_t *values,
                                   size_t count, veil_error *err);
veil_status veil_bgv_decode_coeffs(const veil_bgv_encoder *enc, int64_t *values, size_t count,
                                   const veil_bgv_plaintext *pt, veil_error *err);
veil_status veil_bgv_ciphertext_new(veil_bgv_ciphertext **out, const veil_context *ctx, veil_error *err);
void veil_bgv_ciphertext_free(veil_bgv_ciphertext *ct);
size_t veil_bgv_ciphertext_level(const veil_bgv_ciphertext *ct);
size_t veil_bgv_ciphertext_size(const veil_bgv_ciphertext *ct);
veil_status veil_bgv_encrypt_pk(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_plaintext *pt,
                                const veil_public_key *pk, veil_prng *prng, veil_error *err);
veil_status veil_bgv_encrypt_sk(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_plaintext *pt,
                                const veil_secret_key *sk, veil_prng *prng, veil_error *err);
veil_status veil_bgv_decrypt(const veil_context *ctx, veil_bgv_plaintext *out, const veil_bgv_ciphertext *ct,
                             const veil_secret_key *sk, veil_error *err);
veil_status veil_bgv_noise_budget(const veil_context *ctx, double *bits, const veil_bgv_ciphertext *ct,
                                  const veil_secret_key *sk, veil_error *err);
double veil_bgv_noise_budget_estimate(const veil_bgv_ciphertext *ct);
veil_status veil_bgv_add(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                         const veil_bgv_ciphertext *b, veil_error *err);
veil_status veil_bgv_sub(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                         const veil_bgv_ciphertext *b, veil_error *err);
veil_status veil_bgv_negate(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                            veil_error *err);
veil_status veil_bgv_add_plain(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_plaintext *p, veil_error *err);
veil_status veil_bgv_sub_plain(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_plaintext *p, veil_error *err);
veil_status veil_bgv_mul_plain(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_plaintext *p, veil_error *err);
veil_status veil_bgv_add_scalar(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                int64_t k, veil_error *err);
veil_status veil_bgv_mul_scalar(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                int64_t k, veil_error *err);
veil_status veil_bgv_linear_combination(const veil_context *ctx, veil_bgv_ciphertext *out,
                                        const veil_bgv_ciphertext *const *a, const int64_t *k, size_t count,
                                        int64_t bias, veil_error *err);
veil_status veil_bgv_mul(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                         const veil_bgv_ciphertext *b, veil_error *err);
veil_status veil_bgv_square(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                            veil_error *err);
veil_status veil_bgv_relinearize(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                 const veil_switch_key *relin_key, veil_error *err);
veil_status veil_bgv_mul_relin(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_ciphertext *b, const veil_switch_key *relin_key, veil_error *err);
veil_status veil_bgv_power(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                           uint64_t e, const veil_switch_key *relin_key, veil_error *err);
veil_status veil_bgv_mod_switch(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                veil_error *err);
veil_status veil_bgv_mod_switch_to(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                   size_t level, veil_error *err);
veil_status veil_bgv_rotate_rows(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                 long steps, const veil_switch_key *galois_key, veil_error *err);
veil_status veil_bgv_swap_columns(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                  const veil_switch_key *galois_key, veil_error *err);
veil_status veil_bgv_crt_split(const uint64_t *moduli, size_t k, const int64_t *values, size_t count,
                               uint64_t *const *residues, veil_error *err);
veil_status veil_bgv_crt_compose(const uint64_t *moduli, size_t k, const uint64_t *const *residues, size_t count,
                                 int64_t *values, veil_error *err);


veil_status veil_ckks_rotate_sum(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                 const long *steps, size_t count, const veil_switch_key *const *galois_keys,
                                 veil_error *err);
veil_status veil_ckks_sum_slots(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                size_t slots, const veil_switch_key *const *keys, size_t count, veil_error *err);
veil_status veil_ckks_inner_product(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                    const veil_ckks_ciphertext *b, size_t slots, const veil_switch_key *relin_key,
                                    const veil_switch_key *const *keys, size_t count, veil_error *err);
veil_status veil_ckks_linear_layer(const veil_context *ctx, veil_ckks_ciphertext *const *out, size_t out_count,
                                   const veil_ckks_ciphertext *const *in, size_t in_count, const double *weights,
                                   const double *bias, const veil_switch_key *relin_key, veil_error *err);
veil_status veil_ckks_linear_transform(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *x,
                                       const veil_ckks_plaintext *const *diags, size_t n_diags, size_t baby, long unit,
                                       const veil_switch_key *const *keys, size_t key_count, size_t threads,
                                       veil_error *err);
size_t veil_ckks_linear_transform_baby(size_t n_diags);
veil_status veil_ckks_linear_transform_encode(const veil_ckks_encoder *enc, veil_ckks_plaintext *out,
                                              const double *diag, size_t k, size_t baby, long unit, double scale,
                                              size_t level, veil_error *err);
veil_status veil_ckks_eval_chebyshev(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                     const double *coeffs, size_t degree, double lo, double hi,
                                     const veil_switch_key *relin_key, veil_error *err);
size_t veil_ckks_chebyshev_depth(size_t degree);
veil_status veil_bgv_sum_slots(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_switch_key *const *keys, size_t count, veil_error *err);


typedef enum veil_object_type {
    VEIL_OBJECT_PARAMS = 1,
    VEIL_OBJECT_SECRET_KEY = 2,
    VEIL_OBJECT_PUBLIC_KEY = 3,
    VEIL_OBJECT_SWITCH_KEY = 4,
    VEIL_OBJECT_CKKS_PLAINTEXT = 5,
    VEIL_OBJECT_CKKS_CIPHERTEXT = 6,
    VEIL_OBJECT_BGV_PLAINTEXT = 7,
    VEIL_OBJECT_BGV_CIPHERTEXT = 8,
    VEIL_OBJECT_SET = 9
} veil_object_type;
typedef struct veil_buffer {
    uint8_t *data;
    size_t len;
} veil_buffer;
void veil_buffer_free(veil_buffer *buf);
typedef struct veil_object_info {
    veil_object_type type;
    uint32_t flags;
    veil_security security;
    uint8_t params_hash[32];
    uint64_t stored_bytes, payload_bytes;
    unsigned version;
} veil_object_info;
veil_status veil_object_peek(veil_object_info *info, const uint8_t *data, size_t len, veil_error *err);
veil_status veil_params_save(veil_buffer *out, const veil_params *params, unsigned options, veil_error *err);
veil_status veil_params_load(veil_params **out, const uint8_t *data, size_t len, veil_error *err);
veil_status veil_secret_key_save(veil_buffer *out, const veil_secret_key *sk, unsigned options, veil_error *err);
veil_status veil_secret_key_load(veil_secret_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 veil_error *err);
veil_status veil_public_key_save(veil_buffer *out, const veil_public_key *pk, unsigned options, veil_error *err);
veil_status veil_public_key_load(veil_public_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 veil_error *err);
veil_status veil_switch_key_save(veil_buffer *out, const veil_switch_key *key, unsigned options, veil_error *err);
veil_status veil_switch_key_load(veil_switch_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 veil_error *err);
veil_status veil_ckks_plaintext_save(veil_buffer *out, const veil_ckks_plaintext *pt, unsigned options,
                                     veil_error *err);
veil_status veil_ckks_plaintext_load(veil_ckks_plaintext **out, const veil_context *ctx, const uint8_t *data,
                                     size_t len, veil_error *err);
veil_status veil_ckks_ciphertext_save(veil_buffer *out, const veil_ckks_ciphertext *ct, unsigned options,
                                      veil_error *err);
veil_status veil_ckks_ciphertext_load(veil_ckks_ciphertext **out, const veil_context *ctx, const uint8_t *data,
                                      size_t len, veil_error *err);
veil_status veil_bgv_plaintext_save(veil_buffer *out, const veil_bgv_plaintext *pt, unsigned options, veil_error *err);
veil_status veil_bgv_plaintext_load(veil_bgv_plaintext **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                    veil_error *err);
veil_status veil_bgv_ciphertext_save(veil_buffer *out, const veil_bgv_ciphertext *ct, unsigned options, veil_error *err);
veil_status veil_bgv_ciphertext_load(veil_bgv_ciphertext **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                     veil_error *err);
veil_status veil_set_save(veil_buffer *out, const veil_params *params, const uint8_t *meta, size_t meta_len,
                          const veil_buffer *items, size_t count, veil_error *err);
typedef struct veil_set_item {
    const uint8_t *data;
    size_t len;
    veil_object_type type;
} veil_set_item;
typedef struct veil_set_contents {
    const uint8_t *meta;
    size_t meta_len;
    veil_set_item *items;
    size_t count;
    int secret;
    uint8_t params_hash[32];
} veil_set_contents;
veil_status veil_set_open(veil_set_contents *view, const uint8_t *data, size_t len, veil_error *err);
void veil_set_contents_clear(veil_set_contents *view);
veil_status veil_file_write_atomic(const char *path, const uint8_t *data, size_t len, veil_error *err);
veil_status veil_file_read(veil_buffer *out, const char *path, size_t max_len, veil_error *err);


typedef struct veil_model veil_model;
typedef struct veil_model_options {
    size_t degree;
    int have_range;
    double range_lo, range_hi;
    const double *calibration;
    size_t calibration_rows;
    size_t calibration_width;
    int server_sigmoid;
    int integer;
    int force_approximation;
} veil_model_options;
veil_status veil_model_load_onnx(veil_model **out, const uint8_t *data, size_t len, const veil_model_options *opts,
                                 veil_error *err);
veil_status veil_model_load_onnx_file(veil_model **out, const char *path, const veil_model_options *opts,
                                      veil_error *err);
void veil_model_free(veil_model *model);
size_t veil_model_input_width(const veil_model *model);
size_t veil_model_output_width(const veil_model *model);
size_t veil_model_raw_width(const veil_model *model);
typedef enum veil_final_op { VEIL_FINAL_NONE = 0, VEIL_FINAL_SIGMOID, VEIL_FINAL_SOFTMAX, VEIL_FINAL_LOGSOFTMAX,
                             VEIL_FINAL_ARGMAX } veil_final_op;
veil_final_op veil_model_final_op(const veil_model *model);
const char *veil_model_report(const veil_model *model);
veil_status veil_model_run_plain(const veil_model *model, double *out, const double *in, size_t rows, veil_error *err);
veil_status veil_model_run_program(const veil_model *model, double *out, const double *in, size_t rows,
                                   veil_error *err);
veil_status veil_model_run_integer(const veil_model *model, int64_t *out, const int64_t *in, size_t rows,
                                   veil_error *err);
double veil_model_output_scale(const veil_model *model);
veil_status veil_model_range_excess(const veil_model *model, const double *in, size_t rows, double *excess,
                                    veil_error *err);
typedef enum veil_packing { VEIL_PACKING_THROUGHPUT = 0, VEIL_PACKING_LATENCY = 1, VEIL_PACKING_TRAINING = 2 } veil_packing;
typedef enum veil_ml_scheme { VEIL_ML_CKKS = 0, VEIL_ML_BGV = 1 } veil_ml_scheme;
typedef struct veil_plan_request {
    veil_packing packing;
    size_t batch;
    veil_security security;
    veil_ml_scheme scheme;
    int64_t input_lo, input_hi;
    const double *box_lo, *box_hi;
    int have_range;
    double range_lo, range_hi;
} veil_plan_request;
typedef struct veil_plan_info {
    veil_packing packing;
    size_t depth;
    size_t n, slots;
    size_t batch;
    unsigned scale_bits, log_qp;
    size_t q_count, p_count, dnum;
    size_t rotations;
    size_t in_ciphertexts, out_ciphertexts;
    double eval_key_bytes, ciphertext_bytes;
    double estimated_seconds;
    double estimated_memory_bytes;
    veil_ml_scheme scheme;
    size_t crt_count;
    uint64_t plain_moduli[4];
    double modulus_bits, bound_bits;
    double input_lo, input_hi, output_bound;
    double keygen_memory_bytes;
} veil_plan_info;
typedef struct veil_plan veil_plan;
veil_status veil_model_plan(veil_plan **out, const veil_model *model, const veil_plan_request *request,
                            veil_error *err);
void veil_plan_free(veil_plan *plan);
void veil_plan_get_info(const veil_plan *plan, veil_plan_info *info);
veil_status veil_plan_save(veil_buffer *out, const veil_plan *plan, veil_error *err);
veil_status veil_plan_load(veil_plan **out, const uint8_t *data, size_t len, veil_error *err);
size_t veil_plan_input_bytes(const veil_plan *plan, size_t rows);
size_t veil_plan_rotations(const veil_plan *plan, long *steps, size_t max);
typedef void (*veil_progress_fn)(void *arg, size_t done, size_t total);
typedef struct veil_keyset veil_keyset;
typedef struct veil_eval_keys veil_eval_keys;
veil_status veil_keyset_generate(veil_keyset **secret_out, veil_eval_keys **eval_out, const veil_plan *plan,
                                 veil_prng *prng, veil_progress_fn progress, void *progress_arg, veil_error *err);
veil_status veil_keyset_generate_to_file(veil_keyset **secret_out, const veil_plan *plan, const char *eval_path,
                                         veil_prng *prng, veil_progress_fn progress, void *progress_arg,
                                         veil_error *err);
void veil_keyset_free(veil_keyset *keys);
void veil_eval_keys_free(veil_eval_keys *keys);
veil_status veil_keyset_save(veil_buffer *out, const veil_keyset *keys, veil_error *err);
veil_status veil_keyset_load(veil_keyset **out, const uint8_t *data, size_t len, veil_error *err);
veil_status veil_eval_keys_save(veil_buffer *out, const veil_eval_keys *keys, veil_error *err);
veil_status veil_eval_keys_load(veil_eval_keys **out, const uint8_t *data, size_t len, veil_error *err);
const uint8_t *veil_keyset_id(const veil_keyset *keys);
const uint8_t *veil_eval_keys_id(const veil_eval_keys *keys);
veil_packing veil_eval_keys_packing(const veil_eval_keys *keys);
veil_packing veil_keyset_packing(const veil_keyset *keys);
size_t veil_keyset_batch(const veil_keyset *keys);
size_t veil_eval_keys_batch(const veil_eval_keys *keys);
typedef struct veil_ciphertexts veil_ciphertexts;
void veil_ciphertexts_free(veil_ciphertexts *cts);
size_t veil_ciphertexts_rows(const veil_ciphertexts *cts);
veil_status veil_ciphertexts_save(veil_buffer *out, const veil_ciphertexts *cts, veil_error *err);
veil_status veil_ciphertexts_load(veil_ciphertexts **out, const veil_keyset *keys, const veil_eval_keys *eval,
                                  const uint8_t *data, size_t len, veil_error *err);
veil_status veil_ciphertexts_encrypt(veil_ciphertexts **out, const veil_keyset *keys, const double *in, size_t rows,
                                     veil_prng *prng, veil_error *err);
veil_status veil_model_evaluate(veil_ciphertexts **out, const veil_model *model, const veil_eval_keys *keys,
                                const veil_ciphertexts *in, veil_progress_fn progress, void *progress_arg,
                                veil_error *err);
typedef struct veil_evaluator veil_evaluator;
veil_status veil_evaluator_new(veil_evaluator **out, const veil_model *model, const veil_eval_keys *keys,
                               size_t threads, veil_error *err);
veil_status veil_evaluator_run(const veil_evaluator *ev, veil_ciphertexts **out, const veil_ciphertexts *in,
                               veil_progress_fn progress, void *progress_arg, veil_error *err);
void veil_evaluator_free(veil_evaluator *ev);
veil_status veil_ciphertexts_decrypt(double *out, double *raw_out, const veil_keyset *keys,
                                     const veil_ciphertexts *cts, veil_error *err);
veil_status veil_ciphertexts_decrypt_integers(int64_t *out, const veil_keyset *keys, const veil_ciphertexts *cts,
                                              veil_error *err);
veil_ml_scheme veil_keyset_scheme(const veil_keyset *keys);
veil_ml_scheme veil_eval_keys_scheme(const veil_eval_keys *keys);
size_t veil_ciphertexts_width(const veil_ciphertexts *cts);
size_t veil_keyset_input_width(const veil_keyset *keys);
size_t veil_keyset_output_width(const veil_keyset *keys);
veil_final_op veil_keyset_final_op(const veil_keyset *keys);
double veil_keyset_output_limit(const veil_keyset *keys);
size_t veil_keyset_input_range(const veil_keyset *keys, const double **lo, const double **hi, double *output_bound);
veil_status veil_ml_file_describe(const uint8_t *data, size_t len, char *text, size_t cap, veil_error *err);
veil_status veil_csv_read(const char *path, size_t width, double **values, size_t *rows, size_t *width_out,
                          veil_error *err);


typedef enum veil_train_task { VEIL_TRAIN_LOGISTIC = 0, VEIL_TRAIN_LINEAR = 1 } veil_train_task;
typedef struct veil_train_request {
    veil_train_task task;
    size_t features;
    size_t iterations;
    unsigned degree;
    unsigned range;
    veil_security security;
    size_t ring_degree;
} veil_train_request;
typedef struct veil_train_info {
    veil_train_task task;
    size_t features, block, records_per_ciphertext;
    unsigned degree, range;
    size_t depth_per_iteration;
    size_t max_iterations;
    double coefficients[4];
} veil_train_info;
veil_status veil_train_plan(veil_plan **out, const veil_train_request *request, veil_error *err);
veil_status veil_plan_get_train_info(const veil_plan *plan, veil_train_info *info, veil_error *err);
veil_status veil_eval_keys_get_train_info(const veil_eval_keys *keys, veil_train_info *info, veil_error *err);
veil_status veil_keyset_get_train_info(const veil_keyset *keys, veil_train_info *info, veil_error *err);
veil_status veil_train_encrypt(veil_ciphertexts **out, const veil_keyset *keys, const double *x, const double *y,
                               size_t rows, veil_prng *prng, veil_error *err);
typedef struct veil_train_options {
    size_t iterations;
    double learning_rate;
    double l2;
    size_t threads;
} veil_train_options;
veil_status veil_train_run(veil_ciphertexts **out, const veil_eval_keys *keys, const veil_ciphertexts *data,
                           const veil_train_options *opts, veil_progress_fn progress, void *progress_arg,
                           veil_error *err);
veil_status veil_train_decrypt(double *weights, const veil_keyset *keys, const veil_ciphertexts *model, veil_error *err);
veil_status veil_train_run_plain(double *weights, const veil_train_request *request, const veil_train_options *opts,
                                 const double *x, const double *y, size_t rows, double *t_max, veil_error *err);
veil_status veil_train_to_onnx(veil_buffer *out, veil_train_task task, const double *weights, size_t features,
                               veil_error *err);


typedef struct veil_server_config {
    const char *models_dir;
    const char *store_dir;
    const char *listen;
    unsigned threads;
    size_t eval_threads;
    const char *tls_cert, *tls_key;
    size_t max_keys;
    uint64_t max_store_bytes;
    unsigned timeout_s;
    unsigned max_batches;
    int quiet;
} veil_server_config;
typedef struct veil_server veil_server;
veil_status veil_server_start(veil_server **out, const veil_server_config *config, veil_error *err);
uint16_t veil_server_port(const veil_server *server);
void veil_server_stop(veil_server *server);
typedef struct veil_client veil_client;
veil_status veil_client_new(veil_client **out, const char *base_url, veil_error *err);
void veil_client_free(veil_client *client);
veil_status veil_client_set_ca_file(veil_client *client, const char *path, veil_error *err);
veil_status veil_client_set_token(veil_client *client, const char *token, veil_error *err);
void veil_client_set_progress(veil_client *client, veil_progress_fn progress, void *arg);
veil_status veil_client_get(veil_client *client, const char *path, veil_buffer *out, veil_error *err);
veil_status veil_client_upload_keys(veil_client *client, const uint8_t *bundle, size_t len, char id[65],
                                    veil_error *err);
veil_status veil_client_predict(veil_client *client, const char *model, const char *key_id, const uint8_t *cts,
                                size_t len, veil_buffer *out, veil_error *err);
void veil_client_traffic(const veil_client *client, uint64_t *sent, uint64_t *received);
void veil_key_bundle_id(const uint8_t *bundle, size_t len, char id[65]);

