/*
 * veil/party.h - multi-party keys: N parties who each hold a share of the secret key compute jointly under
 * one public key, and decrypt only together (Mouchet, Troncoso-Pastoriza, Bossuat, Hubaux, "Multiparty
 * homomorphic encryption from ring-learning-with-errors", PETS 2021; "the paper" below).
 *
 * The secret key is s = s_1 + ... + s_N, each s_i an ordinary secret key held by party i alone; nobody ever
 * holds s. The joint keys the protocol makes are ordinary Veil keys (veil_public_key, veil_switch_key): a
 * ciphertext is encrypted and evaluated exactly as under a single owner's keys. Only decryption differs:
 * each party contributes a decryption share (veil_ckks_decrypt_share, veil_bgv_decrypt_share) and the
 * result appears only when the shares of all N parties are combined (N-out-of-N; any t of them after the
 * dealing of the section "t-out-of-N" below).
 *
 * The protocol, with a group made once (its id seeds the common reference polynomials: every "a" the paper
 * draws from the common random string is the expansion of a seed derived from the id):
 *   round 1  each party i: veil_party_public_key_share (CKG) and
 *            veil_party_relin_share_1 (RKG round 1), which also returns an ephemeral secret u_i
 *            the party keeps until round 2;
 *            anyone: veil_party_aggregate of each kind, veil_party_public_key (the joint public key)
 *   round 2  each party i: veil_party_relin_share_2 (from the round-1 relinearization aggregate) and
 *            veil_party_galois_share per Galois element (rotation-key generation: it needs nothing from round 1,
 *            and may be made in either round);
 *            anyone: veil_party_aggregate, veil_party_relin_key, veil_party_galois_key
 *   use      anyone encrypts under the joint public key; the server evaluates with the joint keys
 *   decrypt  each party: a decryption share of the ciphertext (key switching to the zero key, CKS), or a
 *            switching share towards a receiver's public key (PCKS); anyone combines
 *            all N shares (veil_ckks_decrypt_joint, veil_ckks_switch_joint and their BGV forms).
 *
 * Adapted to Veil's hybrid key switching: a relinearization or Galois key holds one sample per digit of
 * alpha Q primes (veil/rlwe.h), and the gadget vector of the paper is, per digit j, P on the digit's primes
 * and 0 elsewhere; every key share is over Q and P, as the keys.
 *
 * Security (the paper's model): the parties are honest but curious, and up to N-1 of them may collude; the
 * common reference string is public. A party that deviates (a share made with another key, or with an
 * added offset) is not detected: this needs proofs the paper leaves out. What every combination does
 * detect, with a clear error and no result: a share of another group, parameter set, kind, round,
 * ciphertext or Galois element, an aggregate given as a party's share, a duplicated share, a missing party,
 * and (in the wire format) bytes changed in transit.
 *
 * Decryption shares carry smudging noise (veil_party_smudging) that hides the party's secret share from
 * whoever sees the share, the ciphertext and the result: see docs/multiparty.md for its size and the
 * statistical distance it gives.
 *
 * Parties are numbered 1..N; a share's party number is 0 for an aggregate (the sum over all N parties).
 * Every function takes the context's objects only, refuses objects of another context, and writes its
 * result only on success. Shares hold no secret (a share is public by design); secret shares and the
 * ephemeral u_i are veil_secret_key objects, wiped when freed.
 */
#ifndef VEIL_PARTY_H
#define VEIL_PARTY_H

#include <stddef.h>
#include <stdint.h>
#include "veil/core.h"
#include "veil/rlwe.h"

#ifdef __cplusplus
extern "C" {
#endif

VEIL_API_BEGIN

#define VEIL_PARTY_ID_BYTES 32
#define VEIL_PARTY_MAX 64 /* parties in a group */

/* ---- the group ------------------------------------------------------------------------------------ */

typedef struct veil_party_group veil_party_group;

/*
 * A new group of `parties` parties (2..VEIL_PARTY_MAX) under ctx's parameters, with a fresh random id (prng
 * NULL: the OS CSPRNG). threshold: how many shares decrypt; 0 or `parties`: N-out-of-N; 2..N-1: t-out-of-N
 * once the parties have dealt their secret shares (section "t-out-of-N" below); anything else VEIL_ERR_ARGUMENT.
 */
veil_status veil_party_group_new(veil_party_group **out, const veil_context *ctx, size_t parties, size_t threshold,
                                 veil_prng *prng, veil_error *err);
/* A group from its id and sizes (what the wire format stores). */
veil_status veil_party_group_from(veil_party_group **out, const veil_context *ctx,
                                  const uint8_t id[VEIL_PARTY_ID_BYTES], size_t parties, size_t threshold,
                                  veil_error *err);
void veil_party_group_free(veil_party_group *group);
const uint8_t *veil_party_group_id(const veil_party_group *group);
size_t veil_party_group_parties(const veil_party_group *group);
size_t veil_party_group_threshold(const veil_party_group *group); /* t; N for an N-out-of-N group */
const veil_context *veil_party_group_context(const veil_party_group *group);
/*
 * The group's smudging bits: the default of its decryption and switching shares (veil_party_smudging.bits 0
 * takes it), chosen when the group is made so that its plan's scale keeps the shares' noise within the
 * results' tolerance (docs/multiparty.md, "Smudging"); 0: VEIL_PARTY_DEFAULT_SMUDGING_BITS. Set: 0 (the
 * default) or 1..60, else VEIL_ERR_ARGUMENT. The wire format stores it (docs/wire-format.md).
 */
unsigned veil_party_group_smudging_bits(const veil_party_group *group);
veil_status veil_party_group_set_smudging_bits(veil_party_group *group, unsigned bits, veil_error *err);

/* ---- shares ------------------------------------------------------------------------------------------ */

typedef enum veil_party_kind {
    VEIL_PARTY_PUBLIC_KEY = 1, /* round 1: -a s_i + e_i */
    VEIL_PARTY_RELIN_1 = 2,    /* round 1: per digit (-u_i a_j + P w_j s_i + e, s_i a_j + e') */
    VEIL_PARTY_RELIN_2 = 3,    /* round 2: per digit (s_i h0_j + e, (u_i - s_i) h1_j + e') */
    VEIL_PARTY_GALOIS = 4,     /* round 2: per digit -a_j s_i + e + P w_j sigma(s_i) */
    VEIL_PARTY_DECRYPT = 5,    /* round 3: s_i c_1 + smudging noise */
    VEIL_PARTY_SWITCH = 6,     /* round 3: (s_i c_1 + u_i b' + smudging noise, u_i a' + e) */
    VEIL_PARTY_THRESHOLD_DECRYPT = 7, /* round 3, t-out-of-N: lambda_j S_j c_1 + smudging noise (see below) */
    VEIL_PARTY_THRESHOLD_SWITCH = 8   /* round 3, t-out-of-N: the key-switching share with lambda_j S_j */
} veil_party_kind;

typedef struct veil_party_share veil_party_share;
void veil_party_share_free(veil_party_share *share);
veil_party_kind veil_party_share_kind(const veil_party_share *share);
unsigned veil_party_share_round(const veil_party_share *share); /* 1, 2 or 3, from the kind */
size_t veil_party_share_party(const veil_party_share *share);   /* 1..N; 0 for an aggregate */
uint64_t veil_party_share_galois(const veil_party_share *share); /* Galois shares; else 0 */
/* Decryption and switching shares: log2 of their smudging noise's standard deviation (before BGV's t); else 0. */
double veil_party_share_smudging_bits(const veil_party_share *share);
const uint8_t *veil_party_share_group(const veil_party_share *share);
/* A short name of a kind ("public-key", "relinearization round 1", ...), for messages. */
const char *veil_party_kind_name(veil_party_kind kind);

/* ---- key generation: each party, with its secret share ------------------------------------------------ */

veil_status veil_party_public_key_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                        const veil_secret_key *sk, veil_prng *prng, veil_error *err);
/* Round 1 of the relinearization key; *ephemeral (u_i, a fresh secret) must be kept, secretly, for round 2. */
veil_status veil_party_relin_share_1(veil_party_share **out, veil_secret_key **ephemeral,
                                     const veil_party_group *group, size_t party, const veil_secret_key *sk,
                                     veil_prng *prng, veil_error *err);
/* Round 2, from the aggregate of every party's round-1 share. */
veil_status veil_party_relin_share_2(veil_party_share **out, const veil_party_group *group, size_t party,
                                     const veil_secret_key *sk, const veil_secret_key *ephemeral,
                                     const veil_party_share *round1, veil_prng *prng, veil_error *err);
veil_status veil_party_galois_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                    const veil_secret_key *sk, uint64_t galois_element, veil_prng *prng,
                                    veil_error *err);

/* ---- combination: anyone, with public shares only ----------------------------------------------------- */

/*
 * The sum of the shares of all N parties, each exactly once, all of one group, kind and Galois element (or
 * ciphertext): an aggregate (party 0). VEIL_ERR_MISMATCH names the share that belongs elsewhere,
 * VEIL_ERR_ARGUMENT a duplicated or missing party.
 */
veil_status veil_party_aggregate(veil_party_share **out, const veil_party_group *group,
                                 const veil_party_share *const *shares, size_t count, veil_error *err);
/* The joint keys from aggregates. */
veil_status veil_party_public_key(veil_public_key **out, const veil_party_group *group,
                                  const veil_party_share *aggregate, veil_error *err);
veil_status veil_party_relin_key(veil_switch_key **out, const veil_party_group *group, const veil_party_share *round1,
                                 const veil_party_share *round2, veil_error *err);
veil_status veil_party_galois_key(veil_switch_key **out, const veil_party_group *group,
                                  const veil_party_share *aggregate, veil_error *err);

/* ---- decryption ------------------------------------------------------------------------------------------- */

/*
 * The smudging noise of a decryption or switching share: each party adds a fresh discrete Gaussian of
 * standard deviation sigma = 2^(bits + error_bits) to its share (BGV: t times it), where 2^error_bits bounds
 * the ciphertext's error coefficients. For N parties and a ciphertext error of at most 2^error_bits, the
 * result (or a share) reveals the error, hence the honest parties' secret shares, with statistical distance
 * at most sqrt(N_ring) 2^-(bits + 1) per decryption (docs/multiparty.md). All zero: the defaults.
 */
typedef struct veil_party_smudging {
    unsigned bits;     /* 0: the group's (veil_party_group_smudging_bits); at most 60 */
    double error_bits; /* log2 of the error bound; 0: CKKS 0 (a bound of 1), BGV the ciphertext's estimate */
} veil_party_smudging;
#define VEIL_PARTY_DEFAULT_SMUDGING_BITS 20

/* log2 of the standard deviation a share's smudging noise will have (CKKS and BGV alike, before BGV's t). */
veil_status veil_party_smudging_sigma_bits(const veil_party_smudging *smudging, double *log2_sigma, veil_error *err);

/* ---- t-out-of-N threshold decryption (src/rlwe/threshold.c; docs/multiparty.md, "t-out-of-N") ------------ */

/*
 * After the N-out-of-N key generation above, any t of the N parties of a group of threshold t decrypt
 * (Mouchet, Bertrand, Hubaux, "An Efficient Threshold Access-Structure for RLWE-Based Multiparty Homomorphic
 * Encryption", J. Cryptology 2023, ePrint 2022/780, section 5; Shamir's sharing over the ring R_Q):
 *   setup 1  each party j: veil_party_box_key_new, a public X25519 key derived from its secret share s_j
 *            (the deals below are encrypted to it); it travels with the party's round-1 shares
 *   setup 2  each party i, with every party's box key: veil_party_deal_make, one deal per party j = 1..N
 *            (itself included): f_i(j), where f_i is a random polynomial of degree t-1 over R_Q with
 *            f_i(0) = s_i; each deal is encrypted and authenticated (crypto_box: the recipient's box key, the
 *            dealer's box secret), so deals may travel through anyone (the server, files) to their recipient
 *   setup 3  each party j, with the N deals addressed to it: veil_party_threshold_key_new, its threshold
 *            share S_j = sum_i f_i(j) (secret, wiped when freed; save it as a secret object)
 *   decrypt  the parties present agree on a set T of at least t parties; each j in T makes a share with
 *            lambda_j S_j, lambda_j the Lagrange coefficient at 0 of T (veil_ckks_threshold_decrypt_share,
 *            veil_bgv_threshold_decrypt_share, and the _switch_share forms), whose set is recorded in the
 *            share; anyone combines the |T| shares with the usual veil_ckks_decrypt_joint,
 *            veil_bgv_decrypt_joint, veil_*_switch_joint: sum_{j in T} lambda_j S_j = sum_i f_i(0) = s.
 * The combination refuses (clear error, nothing written): fewer than t parties, shares made for different
 * sets, a share of a party outside the set, a member of the set missing, a duplicated party, a share of
 * another group, ciphertext or receiver, and N-out-of-N shares mixed with threshold ones. The N-out-of-N
 * decryption with the secret shares s_i keeps working in a threshold group.
 *
 * Party j's evaluation point is j itself (1..N): distinct, nonzero, and invertible with their differences
 * modulo every prime of Q (every prime exceeds VEIL_PARTY_MAX; checked). Security: fewer than t parties'
 * threshold shares (and the deals they received) reveal nothing about s beyond what their own s_i do;
 * honest-but-curious parties as above; a dealer who deals inconsistent values is not detected (no
 * verifiable secret sharing): decrypting a known encryption with a few sets checks it (docs/multiparty.md).
 */

#define VEIL_PARTY_BOX_KEY_BYTES 32 /* crypto_box (X25519) public key */

typedef struct veil_party_box_key veil_party_box_key;             /* public: party j's box key */
typedef struct veil_party_deal veil_party_deal;                   /* encrypted: party i's f_i(j), for j */
typedef struct veil_party_threshold_key veil_party_threshold_key; /* secret: party j's S_j */

/* Party `party`'s box key, derived from its secret share sk (the same sk gives the same key). */
veil_status veil_party_box_key_new(veil_party_box_key **out, const veil_party_group *group, size_t party,
                                   const veil_secret_key *sk, veil_error *err);
void veil_party_box_key_free(veil_party_box_key *key);
size_t veil_party_box_key_party(const veil_party_box_key *key);
const uint8_t *veil_party_box_key_group(const veil_party_box_key *key);
const uint8_t *veil_party_box_key_bytes(const veil_party_box_key *key); /* VEIL_PARTY_BOX_KEY_BYTES */

/*
 * Party `party`'s deals: deals[j-1] receives the deal for party j, for every j = 1..N (count must be N).
 * box_keys: the box keys of all N parties, in any order, each once (box_count N). Nothing is written on
 * failure. The group's threshold must be below N (an N-out-of-N group needs no dealing).
 */
veil_status veil_party_deal_make(veil_party_deal **deals, size_t count, const veil_party_group *group, size_t party,
                                 const veil_secret_key *sk, const veil_party_box_key *const *box_keys,
                                 size_t box_count, veil_prng *prng, veil_error *err);
void veil_party_deal_free(veil_party_deal *deal);
size_t veil_party_deal_from(const veil_party_deal *deal);
size_t veil_party_deal_to(const veil_party_deal *deal);
const uint8_t *veil_party_deal_group(const veil_party_deal *deal);

/*
 * Party `party`'s threshold share from the N deals addressed to it (any order, one from each party, itself
 * included), opened with the box secret derived from sk and checked against each dealer's box key (all N box
 * keys, as for dealing). A deal for another party, of another group or threshold, from a party twice, a
 * missing dealer, or one that does not open (changed in transit, or made with another box key): an error
 * naming it, nothing written.
 */
veil_status veil_party_threshold_key_new(veil_party_threshold_key **out, const veil_party_group *group, size_t party,
                                         const veil_secret_key *sk, const veil_party_box_key *const *box_keys,
                                         size_t box_count, const veil_party_deal *const *deals, size_t count,
                                         veil_error *err);
void veil_party_threshold_key_free(veil_party_threshold_key *key); /* wipes */
size_t veil_party_threshold_key_party(const veil_party_threshold_key *key);
size_t veil_party_threshold_key_threshold(const veil_party_threshold_key *key);
const uint8_t *veil_party_threshold_key_group(const veil_party_threshold_key *key);

/*
 * The set of parties of a threshold share, as a bit mask (bit j-1: party j); 0 for other shares. The set a
 * party is asked for is a list of party numbers (1..N, each once, including the party itself, at least t).
 */
uint64_t veil_party_share_set(const veil_party_share *share);

VEIL_API_END

#ifdef __cplusplus
}
#endif
#endif /* VEIL_PARTY_H */
