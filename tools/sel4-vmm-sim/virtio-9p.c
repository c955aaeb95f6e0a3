/*
 * The simulated guest's virtio-9p driver (see virtio-9p.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "virtio-9p.h"
