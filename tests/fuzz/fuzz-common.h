/*
 * What the fuzz targets share.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Each target is a libFuzzer LLVMFuzzerTestOneInput(); the same binary
 * replays files given on its command line (the regressions of
 * tests/fuzz/regressions/).  An invariant that does not hold aborts, which
 * libFuzzer reports as a crash with the input that caused it.
 */
#ifndef TESTS_FUZZ_COMMON_H
#define TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, \
                    __LINE__, #cond); \
            abort(); \
        } \
    } while (0)

#define FUZZ_MIN(a, b)  ((a) < (b) ? (a) : (b))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A cursor over the input's bytes; reads past the end give zeros. */
typedef struct FuzzInput {
    const uint8_t *data;
    size_t size, pos;
} FuzzInput;

static inline uint8_t fuzz_u8(FuzzInput *in)
{
    return in->pos < in->size ? in->data[in->pos++] : 0;
}

static inline uint64_t fuzz_bytes(FuzzInput *in, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++) {
        v |= (uint64_t)fuzz_u8(in) << (8 * i);
    }
    return v;
}

static inline int fuzz_more(const FuzzInput *in)
{
    return in->pos < in->size;
}

#endif
