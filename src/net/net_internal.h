/* The server's internals shared between its files (src/net). */
#ifndef VEIL_NET_INTERNAL_H
#define VEIL_NET_INTERNAL_H

#include "veil/ml.h"

#define VEIL_SIDE_FILE_MAX (64 * 1024) /* bytes of a model's side file */

/*
 * A served model's options, from its side file DIR/NAME.json beside DIR/NAME.onnx (docs/net.md): the
 * approximation settings the model is loaded with, and the inputs' range its plans are made for.
 */
typedef struct veil_side_options {
    veil_model_options model; /* model.calibration points into calibration */
    double *calibration;      /* the calibration rows (owned; NULL without "calibrate") */
    int have_input_range;
    double input_lo, input_hi;
    char path[4096];          /* the side file, for messages */
} veil_side_options;

/*
 * Reads DIR/NAME.json when there is one (*found = 1) into out; without one, *found = 0 and out holds no
 * options. A side file that is not a JSON object of the known keys with values of their types, or whose
 * calibration file is outside DIR or unreadable, is refused with a message naming it.
 */
veil_status veil_side_options_read(veil_side_options *out, const char *dir, const char *name, int *found,
                                   veil_error *err);
void veil_side_options_clear(veil_side_options *o);

#endif /* VEIL_NET_INTERNAL_H */
