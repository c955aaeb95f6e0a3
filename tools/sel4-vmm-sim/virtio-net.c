/*
 * The simulated guest's virtio-net driver (see virtio-net.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "virtio-net.h"
