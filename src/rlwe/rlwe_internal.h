/* Internal definitions of the RLWE layer (parameters, context, keys, key switching). */
#ifndef VEIL_RLWE_INTERNAL_H
#define VEIL_RLWE_INTERNAL_H

#include "veil/params.h"
#include "veil/rlwe.h"
#include "veil/party.h"
#include "ring/ring_internal.h"

#define VEIL_PARAMS_MAX_PRIMES VEIL_RING_MAX_PRIMES

struct veil_params {
    size_t n, q_count, p_count, dnum, hamming_weight;
    uint64_t q[VEIL_PARAMS_MAX_PRIMES], p[VEIL_PARAMS_MAX_PRIMES];
    veil_secret_kind secret;
    veil_security security;
    uint64_t t; /* BGV plaintext modulus; 0 for CKKS */
};

/*
 * The ring holds the Q primes at indices 0..q_count-1 and the special primes after them. For every level
 * l and digit j, modup[l][j] converts the digit's primes at that level to the other primes of Q_l and to P;
 * moddown[l] converts P to Q_l.
 */
struct veil_context {
    veil_params params;
    veil_ring *ring;
    size_t q_count, p_count, alpha, dnum;
    veil_base_conv **modup;   /* [level * dnum + digit], NULL where the digit is empty at that level */
    veil_base_conv **moddown; /* [level] */
    uint64_t p_mod_q[VEIL_PARAMS_MAX_PRIMES]; /* P mod q_i */
};

struct veil_secret_key {
    const veil_context *ctx;
    veil_poly *s;    /* over Q and P, evaluation form */
    int8_t *coeffs;  /* the N small coefficients (what a stored key holds) */
};

/* A secret key from its small coefficients (each in {-1, 0, 1}); the caller validated them. */
veil_status veil_secret_key_from_coeffs(veil_secret_key **out, const veil_context *ctx, const int8_t *coeffs,
                                        veil_error *err);

struct veil_public_key {
    const veil_context *ctx;
    veil_poly *b, *a; /* over Q and P, evaluation form: b = -a*s + e */
    uint8_t seed[VEIL_SEED_BYTES]; /* a = uniform from (seed, stream 0): a stored key keeps only the seed */
};

struct veil_switch_key {
    const veil_context *ctx;
    uint64_t galois;  /* 0 for relinearization */
    size_t digits;
    veil_poly **b, **a; /* per digit, over Q and P, evaluation form */
    uint8_t seed[VEIL_SEED_BYTES]; /* a_j = uniform from (seed, stream 1 + j) */
    bool full; /* a_j is not the seed's expansion (a multi-party relinearization key): stored in full */
};

/*
 * A key switching s_from (over Q and P, evaluation form) to sk, with Galois element 0 (bootstrapping's
 * encapsulation key from the sparse secret back to the main one). prng NULL: the OS CSPRNG.
 */
veil_status veil_switch_key_new_from(veil_switch_key **out, const veil_context *ctx, const veil_secret_key *sk,
                                    const veil_poly *s_from, veil_prng *prng, veil_error *err);

/* Ring indices of the primes of Q_level followed by those of P; returns how many. */
size_t veil_context_qp_base(const veil_context *ctx, size_t level, size_t *base);

/*
 * Hybrid key switching: given x over Q_level (evaluation form), writes (out0, out1) over Q_level
 * (evaluation form) with out0 + out1 * s ~= x * s', where the key switches s' to s.
 */
veil_status veil_keyswitch(const veil_context *ctx, veil_poly *out0, veil_poly *out1, const veil_poly *x,
                           const veil_switch_key *key, veil_error *err);

/*
 * Hoisted key switching: for each k < count, (out0[k], out1[k]) switches sigma_{galois[k]}(x) with keys[k],
 * sharing one decomposition and ModUp of x among all of them.
 */
veil_status veil_keyswitch_hoisted(const veil_context *ctx, veil_poly *const *out0, veil_poly *const *out1,
                                   const veil_poly *x, const uint64_t *galois, const veil_switch_key *const *keys,
                                   size_t count, veil_error *err);

/*
 * The sum of those key switchings, sum_k switch(sigma_{galois[k]}(x)), with one ModUp and one ModDown: the
 * products are accumulated over Q_l P before the division by P (its rounding then counts once, not count
 * times).
 */
veil_status veil_keyswitch_hoisted_sum(const veil_context *ctx, veil_poly *out0, veil_poly *out1, const veil_poly *x,
                                       const uint64_t *galois, const veil_switch_key *const *keys, size_t count,
                                       veil_error *err);

/*
 * Double hoisting (Bossuat, Troncoso-Pastoriza, Hubaux, Eurocrypt 2021, sections 4-5): the pieces of a key
 * switching kept over the extended basis Q_l P, so that sums of rotated ciphertexts are divided by P once.
 * veil_keyswitch_raise decomposes x (over Q_l, evaluation form) and raises its digits to Q_l P (one ModUp);
 * x must stay alive and unchanged while rx is used; release rx afterwards (also after a failure).
 */
typedef struct veil_keyswitch_raised {
    const veil_context *ctx;
    size_t level, digits, qp_count;
    size_t qp[2 * VEIL_PARAMS_MAX_PRIMES]; /* ring indices of Q_l then P */
    uint64_t *scratch, *gathered;
    size_t scratch_bytes;
    uint32_t *perm;
    const uint64_t **raised; /* digits * qp_count limb pointers */
} veil_keyswitch_raised;

veil_status veil_keyswitch_raise(const veil_context *ctx, veil_keyswitch_raised *rx, const veil_poly *x,
                                 veil_error *err);
void veil_keyswitch_raised_release(veil_keyswitch_raised *rx);
/*
 * (acc0, acc1) (over Q_l P, evaluation form: rx->qp) = (or += when accumulate) the key's digits times the
 * raised digits of sigma_galois(x) (galois 1: x itself): acc0 + acc1 s ~= P sigma_galois(x) s', before ModDown.
 */
veil_status veil_keyswitch_raised_product(veil_keyswitch_raised *rx, uint64_t galois, const veil_switch_key *key,
                                          veil_poly *acc0, veil_poly *acc1, bool accumulate, veil_error *err);
/*
 * out (over Q_l P, evaluation form) = (or += when accumulate) P sigma_galois(c) for c over Q_l (evaluation
 * form; galois 1: c): the part of a ciphertext over Q_l that joins a sum kept over Q_l P (zero on P's limbs).
 */
veil_status veil_keyswitch_add_p_times(const veil_context *ctx, veil_poly *out, const veil_poly *c, uint64_t galois,
                                       bool accumulate, veil_error *err);

/* ModDown from Q_level P to Q_level: the BGV form (d = 0 mod t) for a BGV set. */
veil_status veil_context_mod_down(const veil_context *ctx, veil_poly *out, const veil_poly *in, size_t level,
                                  veil_error *err);

/* A new polynomial over q_0..q_level in the given form. */
veil_status veil_context_poly_new(veil_poly **out, const veil_context *ctx, size_t level, veil_form form,
                                  veil_error *err);

/* *use = prng, or a new OS prng (returned in *owned, to free) when prng is NULL. */
veil_status veil_prng_or_os(veil_prng **use, veil_prng **owned, veil_prng *prng, veil_error *err);

/* out = the uniform polynomial that (seed, stream) expands to (the same on every machine). */
veil_status veil_uniform_from_seed(veil_poly *out, const uint8_t seed[VEIL_SEED_BYTES], uint64_t stream,
                                   veil_error *err);

/* Samplers into a polynomial (coefficient form; callers move it to evaluation form). */
veil_status veil_sample_error_poly(veil_poly *out, veil_prng *prng, veil_error *err);
veil_status veil_sample_ternary_poly(veil_poly *out, veil_prng *prng, veil_error *err);
/* An error polynomial for a key or an encryption: e, or t e for a BGV set (coefficient form). */
veil_status veil_sample_key_error(veil_poly *out, const veil_context *ctx, veil_prng *prng, veil_error *err);

typedef enum { VEIL_LIMB_ADD, VEIL_LIMB_SUB, VEIL_LIMB_COPY, VEIL_LIMB_NEG } veil_limb_op;

/* out[0..level] = a (op) b limb by limb; a and b may be at higher levels (their extra limbs are ignored). */
void veil_limbwise(const veil_context *ctx, veil_poly *out, const veil_poly *a, const veil_poly *b, size_t level,
                   veil_limb_op op);
/* out[0..level] = a * b (or += when accumulate), limb by limb; evaluation form. */
void veil_limb_products(const veil_context *ctx, veil_poly *out, const veil_poly *a, const veil_poly *b, size_t level,
                        bool accumulate);
/* out[0..2] = the sum over i of the tensor products a_i x b_i (elements of size 2, at level >= level), limb by
 * limb, 128-bit sums reduced once (evaluation form): ciphertext-by-ciphertext inner products. */
struct veil_rlwe_element;
void veil_limb_tensor_sum(const veil_context *ctx, veil_poly *const out[3], const struct veil_rlwe_element *const *a,
                          const struct veil_rlwe_element *const *b, size_t count, size_t level);
/* A fresh small polynomial (error or ternary) over q_0..q_level / over the given base, in evaluation form. */
veil_status veil_small_poly(veil_poly **out, const veil_context *ctx, size_t level, bool ternary, veil_prng *prng,
                            veil_error *err);
veil_status veil_small_poly_over(veil_poly **out, const veil_context *ctx, const size_t *base, size_t count,
                                 bool ternary, veil_prng *prng, veil_error *err);

/* The centered value of each coefficient of p (coefficient form, any base) as a double. */
veil_status veil_poly_centered_doubles(double *out, const veil_poly *p, veil_error *err);

/*
 * An encryption of zero at `level` into (c0, c1) (polynomials over q_0..q_level, evaluation form): with the
 * public key (over Q_l P, then ModDown), or with the secret key (c1 the expansion of a fresh seed, written
 * to seed). Errors are t e for a BGV set.
 */
veil_status veil_encrypt_zero_pk(const veil_context *ctx, veil_poly *c0, veil_poly *c1, size_t level,
                                 const veil_public_key *pk, veil_prng *prng, veil_error *err);
veil_status veil_encrypt_zero_sk(const veil_context *ctx, veil_poly *c0, veil_poly *c1, size_t level,
                                 const veil_secret_key *sk, uint8_t seed[VEIL_SEED_BYTES], veil_prng *prng,
                                 veil_error *err);
/* The phase c0 + c1 s (+ c2 s^2 when size is 3) at level, in a new polynomial (evaluation form). */
veil_status veil_decrypt_phase(const veil_context *ctx, veil_poly **out, veil_poly *const *c, size_t size,
                               size_t level, const veil_secret_key *sk, veil_error *err);

/* ---- the RLWE element: what a CKKS and a BGV ciphertext share (src/rlwe/element.c) ------------------ */

/*
 * An RLWE element: polynomials c_0 .. c_{size-1} over q_0..q_level (evaluation form) whose phase c_0 + c_1 s
 * (+ c_2 s^2 before relinearization) holds a scheme's message plus noise. A scheme's ciphertext embeds one
 * as its first member and keeps its metadata beside it (the CKKS scale; the BGV correction factor and noise
 * estimate). Size 0 is an empty element (never written, or left by a failed operation): every check refuses
 * it. A fresh secret-key encryption is seeded: c_1 is the expansion of the seed (stream 0), and a stored copy
 * keeps the seed instead of c_1.
 */
typedef struct veil_rlwe_element {
    const veil_context *ctx;
    veil_poly *c[3]; /* c[2] only while size is 3 */
    size_t size, level;
    bool seeded;
    uint8_t seed[VEIL_SEED_BYTES];
} veil_rlwe_element;

/* An empty element of ctx; release frees its polynomials and leaves it empty. */
void veil_rlwe_element_init(veil_rlwe_element *e, const veil_context *ctx);
void veil_rlwe_element_release(veil_rlwe_element *e);

/*
 * The checks every operation makes, with the operation's name at the head of the message: an operand is
 * present, of ctx and not empty; an output is of ctx (op NULL: no name in the message); a switch key is
 * present, of ctx and for the Galois element wanted (0: the relinearization key).
 */
veil_status veil_rlwe_check_element(const veil_context *ctx, const veil_rlwe_element *e, const char *op,
                                    veil_error *err);
veil_status veil_rlwe_check_output(const veil_context *ctx, const veil_rlwe_element *out, const char *op,
                                   veil_error *err);
veil_status veil_rlwe_check_switch_key(const veil_context *ctx, const veil_switch_key *key, uint64_t galois,
                                       const char *op, veil_error *err);

/*
 * An output under construction: polynomials at one level, moved into the output element only when complete,
 * so that an output aliasing an input is never overwritten while the input is still read.
 */
typedef struct veil_rlwe_result {
    veil_poly *c[3];
    bool borrowed[3]; /* c[i] is the output's own polynomial (reused), not ours to free */
    size_t size, level;
} veil_rlwe_result;

/* Fresh polynomials for a result of `size` polynomials at `level`. */
veil_status veil_rlwe_result_init(veil_rlwe_result *r, const veil_context *ctx, size_t size, size_t level,
                                  veil_error *err);
/*
 * As init, but takes the output's own polynomials when they have the right level and the output is none of
 * the inputs a, b (either may be NULL): no allocation then, in the common case of an output reused in a loop.
 */
veil_status veil_rlwe_result_reuse(veil_rlwe_result *r, veil_rlwe_element *out, const veil_rlwe_element *a,
                                   const veil_rlwe_element *b, const veil_context *ctx, size_t size, size_t level,
                                   veil_error *err);
/*
 * Gives up a result after a failure. An output whose own polynomials were borrowed may have been partly
 * written: it is left empty, refused by every later operation instead of decrypting to garbage.
 */
void veil_rlwe_result_drop(veil_rlwe_result *r, veil_rlwe_element *out);
/* Moves a complete result into out (its old polynomials go now); out is no longer seeded. */
void veil_rlwe_result_commit(veil_rlwe_element *out, veil_rlwe_result *r);

/*
 * The element operations, into the polynomials of a result at `level` (at most the operands' levels):
 * a + b or a - b (op VEIL_LIMB_ADD or VEIL_LIMB_SUB; the larger size, a missing c_2 counting as 0); each
 * polynomial of a copied or negated (op VEIL_LIMB_COPY or VEIL_LIMB_NEG).
 */
void veil_rlwe_add_sub(const veil_context *ctx, veil_poly *const *out, const veil_rlwe_element *a,
                       const veil_rlwe_element *b, size_t level, veil_limb_op op);
void veil_rlwe_map(const veil_context *ctx, veil_poly *const *out, const veil_rlwe_element *a, size_t level,
                   veil_limb_op op);
/* Relinearization of a (size 3) into out[0], out[1] at a's level: (c_0, c_1) + switch(c_2) from s^2 to s. */
veil_status veil_rlwe_relinearize(const veil_context *ctx, veil_poly *const *out, const veil_rlwe_element *a,
                                  const veil_switch_key *key, veil_error *err);
/*
 * The automorphism X -> X^galois of a (size 2) into out[0], out[1] at a's level: (sigma(c_0), sigma(c_1))
 * decrypts under sigma(s), so sigma(c_1) is switched back to s with the Galois key.
 */
veil_status veil_rlwe_apply_galois(const veil_context *ctx, veil_poly *const *out, const veil_rlwe_element *a,
                                   uint64_t galois, const veil_switch_key *key, veil_error *err);
/*
 * a + sum_k sigma_{galois[k]}(a) (a of size 2) into out[0], out[1] at a's level: the key-switched parts share
 * one ModUp and one ModDown (veil_keyswitch_hoisted_sum).
 */
veil_status veil_rlwe_galois_sum(const veil_context *ctx, veil_poly *const *out, const veil_rlwe_element *a,
                                 const uint64_t *galois, const veil_switch_key *const *keys, size_t count,
                                 veil_error *err);
/* Writes into a seeded element's c_1 (already allocated at its level) the expansion of its seed. */
veil_status veil_rlwe_element_expand_seed(veil_rlwe_element *e, veil_error *err);

/* ---- multi-party keys (src/rlwe/multiparty.c, veil/party.h) -------------------------------------------- */

struct veil_party_group {
    const veil_context *ctx;
    uint8_t id[VEIL_PARTY_ID_BYTES];
    size_t parties, threshold;
    unsigned smudging_bits; /* the shares' default (0: VEIL_PARTY_DEFAULT_SMUDGING_BITS) */
};

/*
 * A share (or an aggregate, party 0): `count` polynomials, over Q and P for key shares, over q_0..q_level
 * for decryption and switching shares. subject binds a decryption or switching share to its ciphertext (and
 * receiver key): a digest of them; zero for key shares.
 */
struct veil_party_share {
    const veil_context *ctx;
    uint8_t group[VEIL_PARTY_ID_BYTES];
    size_t party, parties;
    veil_party_kind kind;
    uint64_t galois;
    size_t level;
    uint8_t subject[32];
    double log2_sigma; /* decryption and switching shares: the smudging noise's standard deviation (before t) */
    uint64_t set;      /* threshold shares: the parties of the decrypting set (bit j-1: party j); else 0 */
    size_t count;
    veil_poly **p;
};

/* How many polynomials a share of this kind holds, and whether they are over Q and P (key shares). */
size_t veil_party_kind_polys(const veil_context *ctx, veil_party_kind kind, bool *with_p);
/* An empty share with its polynomials allocated (evaluation form). */
/* The smudging a share gets: `given` (NULL: the defaults), its bits 0 replaced by the group's. */
veil_party_smudging veil_party_group_smudging(const veil_party_group *group, const veil_party_smudging *given);
veil_status veil_party_share_alloc(veil_party_share **out, const veil_context *ctx, const uint8_t *group, size_t party,
                                   size_t parties, veil_party_kind kind, uint64_t galois, size_t level,
                                   veil_error *err);
/*
 * The element-level forms behind the schemes' decryption and switching: a party's share of ct (to NULL:
 * decryption, key switching to the zero key; else public-key switching to `to`), with smudging noise of
 * standard deviation 2^log2_sigma (times t for BGV); and the combination of all N shares into c0 (decryption:
 * the phase, in a new polynomial) or (c0, c1) (switching: the ciphertext under to's secret key).
 */
veil_status veil_party_element_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                     const veil_rlwe_element *ct, const veil_secret_key *sk, const veil_public_key *to,
                                     double log2_sigma, veil_prng *prng, veil_error *err);
veil_status veil_party_element_combine(veil_poly **c0, veil_poly **c1, const veil_party_group *group,
                                       const veil_rlwe_element *ct, const veil_public_key *to,
                                       const veil_party_share *const *shares, size_t count, veil_error *err);


/* ---- t-out-of-N threshold decryption (src/rlwe/threshold.c, veil/party.h "t-out-of-N") ---------------------- */

struct veil_party_box_key {
    const veil_context *ctx;
    uint8_t group[VEIL_PARTY_ID_BYTES];
    size_t party;
    uint8_t pk[VEIL_PARTY_BOX_KEY_BYTES];
};

/* The bytes a deal's box holds: a header binding it (group id, from, to, parties, threshold) then f_i(j). */
#define VEIL_PARTY_DEAL_HEAD (VEIL_PARTY_ID_BYTES + 4 * 8)
#define VEIL_PARTY_DEAL_NONCE 24 /* crypto_box_NONCEBYTES */
#define VEIL_PARTY_DEAL_MAC 16   /* crypto_box_MACBYTES */

struct veil_party_deal {
    const veil_context *ctx;
    uint8_t group[VEIL_PARTY_ID_BYTES];
    size_t from, to, parties, threshold;
    uint8_t nonce[VEIL_PARTY_DEAL_NONCE];
    uint8_t *box; /* crypto_box of (head, f_i(j): q_count limbs, each packed at its prime's bit length) */
    size_t box_len;
};

struct veil_party_threshold_key {
    const veil_context *ctx;
    uint8_t group[VEIL_PARTY_ID_BYTES];
    size_t party, parties, threshold;
    veil_poly *s; /* S_j over q_0..q_{L}, evaluation form */
};

/* The exact box length of a deal under ctx. */
size_t veil_party_deal_box_bytes(const veil_context *ctx);
/* Whether a share kind is a threshold one. */
static inline bool veil_party_kind_is_threshold(veil_party_kind kind)
{
    return kind == VEIL_PARTY_THRESHOLD_DECRYPT || kind == VEIL_PARTY_THRESHOLD_SWITCH;
}
/* The digest binding a decryption or switching share to ct (and the receiver's key `to`); multiparty.c. */
void veil_party_share_subject(uint8_t out[32], const veil_context *ctx, const veil_rlwe_element *ct,
                              const veil_public_key *to);
/*
 * What the schemes' joint decryption and switching call: veil_party_element_combine for N-out-of-N shares;
 * for threshold shares (the first share's kind says which), the threshold checks (every share a threshold
 * share of this ciphertext and receiver, all made for one set of at least t parties of the group, every party
 * of the set exactly once, no other) and the same sums.
 */
veil_status veil_party_combine(veil_poly **c0, veil_poly **c1, const veil_party_group *group,
                               const veil_rlwe_element *ct, const veil_public_key *to,
                               const veil_party_share *const *shares, size_t count, veil_error *err);
/* A threshold share of ct (decryption, or switching to `to`), as veil_party_element_share. */
veil_status veil_party_threshold_element_share(veil_party_share **out, const veil_party_group *group,
                                               const veil_party_threshold_key *key, const size_t *set,
                                               size_t set_count, const veil_rlwe_element *ct,
                                               const veil_public_key *to, double log2_sigma, veil_prng *prng,
                                               veil_error *err);

#endif
