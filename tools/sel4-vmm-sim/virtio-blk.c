/*
 * The simulated guest's virtio-blk driver (see virtio-blk.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "virtio-blk.h"
