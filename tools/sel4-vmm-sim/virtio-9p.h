/*
 * The simulated guest's virtio-9p driver (being written).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VMM_SIM_VIRTIO_9P_H
#define VMM_SIM_VIRTIO_9P_H

#include "virtio-pci.h"

#endif
