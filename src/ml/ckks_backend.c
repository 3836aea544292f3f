/* The CKKS back end's table of operations (ml_plan.h): the plan, keys, sets and evaluator of CKKS inference. */
#include "ml/ml_plan.h"

const veil_ml_backend veil_ml_ckks_backend = {
    .plan = veil_ckks_plan,
    .input_bytes = veil_ckks_plan_input_bytes,
    .keygen = veil_ml_ckks_keygen,
    .keygen_to_file = veil_ml_ckks_keygen_to_file,
    .keyset_save = veil_ml_ckks_keyset_save,
    .keyset_load = veil_ml_ckks_keyset_load,
    .eval_keys_save = veil_ml_ckks_eval_keys_save,
    .eval_keys_load = veil_ml_ckks_eval_keys_load,
    .ciphertexts_save = veil_ml_ckks_ciphertexts_save,
    .ciphertexts_load = veil_ml_ckks_ciphertexts_load,
    .encrypt = veil_ml_ckks_encrypt,
    .decrypt = veil_ml_ckks_decrypt,
    .evaluator_new = veil_ml_ckks_evaluator_new,
    .evaluator_run = veil_ml_ckks_evaluator_run,
    .evaluator_free = veil_ml_ckks_evaluator_free,
};
