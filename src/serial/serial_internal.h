/* Internal to libveil (and its tests): the wire format's helpers that are not public API. */
#ifndef VEIL_SERIAL_INTERNAL_H
#define VEIL_SERIAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Rewrites the integrity digest of the version-2 object data[0..len) (its last VEIL_DIGEST_BYTES) to match
 * the bytes before it. The tests use it to hand a deliberately edited object to the checks behind the
 * digest, as a forger could: the digest detects accidents, it authenticates nothing.
 */
void veil_object_reseal(uint8_t *data, size_t len);

#endif /* VEIL_SERIAL_INTERNAL_H */
