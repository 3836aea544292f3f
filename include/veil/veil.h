/*
 * veil/veil.h - everything in Veil: include this one header.
 *
 * Veil is built in layers, each with its own header: core (errors, memory, randomness, threads) and
 * ring (RNS polynomials and the NTT). The schemes (CKKS, BGV) and the ML layer build on them.
 */
#ifndef VEIL_VEIL_H
#define VEIL_VEIL_H
#include "veil/core.h"
#include "veil/ring.h"
#include "veil/params.h"
#include "veil/rlwe.h"
#include "veil/ckks.h"
#include "veil/bgv.h"
#include "veil/circuits.h"
#include "veil/serial.h"
#include "veil/ml.h"
#include "veil/train.h"
#include "veil/net.h"
#endif
