/*
 * veil/veil.h - everything in Veil: include this one header.
 *
 * ---- Encrypted inference in four calls -------------------------------------------------------------
 *
 * The data owner holds the rows and the secret key; the server holds the model and only evaluation keys.
 * First both sides agree on a plan: the parameters, the packing and the rotation keys the model needs.
 *
 *     veil_error err = {0};
 *     veil_model *model;                     // an ONNX file, lowered to what CKKS (or BGV) evaluates
 *     veil_plan *plan;
 *     veil_model_load_onnx_file(&model, "model.onnx", NULL, &err);
 *     veil_plan_request request = {.packing = VEIL_PACKING_THROUGHPUT, .box_lo = lo, .box_hi = hi};
 *     veil_model_plan(&plan, model, &request, &err);   // or veil_plan_load: the server's plan file
 *
 *     // 1. the data owner: a secret key set and the server's evaluation keys for the plan
 *     veil_keyset *owner;
 *     veil_eval_keys *server;
 *     veil_keyset_generate(&owner, &server, plan, NULL, NULL, NULL, &err);  // prng, progress, its argument
 *     // 2. the data owner: rows x input width values into a ciphertext set
 *     veil_ciphertexts *x, *y;
 *     veil_ciphertexts_encrypt(&x, owner, rows, count, NULL, &err);
 *     // 3. the server: the model on the ciphertexts, with the evaluation keys only
 *     veil_model_evaluate(&y, model, server, x, NULL, NULL, &err);
 *     // 4. the data owner: rows x output width values, the final Sigmoid, Softmax or ArgMax applied
 *     veil_ciphertexts_decrypt(out, NULL, owner, y, &err);
 *
 * Every call returns a veil_status (VEIL_OK, or the failure, explained in err.detail). Between the two
 * sides the objects travel in Veil's wire format: veil_eval_keys_save / veil_eval_keys_load,
 * veil_ciphertexts_save / veil_ciphertexts_load, veil_plan_save / veil_plan_load (veil/serial.h, veil/ml.h);
 * veil/net.h carries them over HTTP. examples/inference.c is this story as a whole program.
 *
 * ---- The headers, from the bottom layer up ---------------------------------------------------------
 *
 *   veil/core.h      statuses and error details, memory, randomness (prng, seeds), threads, the export macros
 *   veil/ring.h      Z_Q[X]/(X^N + 1) in RNS form: modular arithmetic, primes, the NTT, polynomials,
 *                    base conversion, automorphisms, samplers
 *   veil/params.h    RLWE parameter sets and their security check
 *   veil/rlwe.h      what CKKS and BGV share: the context, keys, key switching
 *   veil/party.h     multi-party keys: groups, key shares, joint keys (decryption shares: ckks.h, bgv.h)
 *   veil/ckks.h      CKKS: approximate arithmetic on vectors of complex or real numbers
 *   veil/bgv.h       BGV: exact arithmetic modulo a plaintext modulus, noise budgets
 *   veil/circuits.h  circuits on CKKS ciphertexts: linear transforms, polynomial evaluation, rotate-and-sum
 *   veil/serial.h    the versioned wire format: parameters, keys, plaintexts, ciphertexts, files
 *   veil/ml.h        encrypted inference of ONNX models: models, plans, key sets, ciphertext sets, CSV
 *   veil/train.h     encrypted training of linear and logistic regression
 *   veil/net.h       the HTTP server that hosts models, and its client
 */
#ifndef VEIL_VEIL_H
#define VEIL_VEIL_H
#include "veil/core.h"
#include "veil/ring.h"
#include "veil/params.h"
#include "veil/rlwe.h"
#include "veil/party.h"
#include "veil/ckks.h"
#include "veil/bgv.h"
#include "veil/circuits.h"
#include "veil/serial.h"
#include "veil/ml.h"
#include "veil/train.h"
#include "veil/net.h"
#endif
