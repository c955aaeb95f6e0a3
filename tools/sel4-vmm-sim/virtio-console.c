/*
 * The simulated guest's virtio-console driver (see virtio-console.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "virtio-console.h"
