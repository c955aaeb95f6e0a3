/*
 * The QEMU APIs our files use that moved between the two QEMU versions we
 * build against: 10.2 (qemu/pin.env) and 10.0 (trixie, the fallback;
 * SEL4_QEMU_FORCE_FALLBACK=trixie:10.0. builds it). 10.1 is not built.
 * Include after "qemu/osdep.h" (QEMU_VERSION_* come from config-host.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SYSTEM_SEL4_COMPAT_H
#define SYSTEM_SEL4_COMPAT_H

#define SEL4_QEMU_10_0 (QEMU_VERSION_MAJOR == 10 && QEMU_VERSION_MINOR == 0)

#if SEL4_QEMU_10_0
/* 10.0: old header homes, non-const class data, no DEFINE_MACHINE_AARCH64 */
#include "system/accel-ops.h"       /* AccelOpsClass */
#include "system/cpus.h"            /* dummy_start_vcpu_thread() */
#include "exec/memory.h"
#include "exec/address-spaces.h"
#define SEL4_CLASS_DATA void
#define SEL4_DEFINE_MACHINE DEFINE_MACHINE
#else
#include "accel/accel-ops.h"
#include "accel/accel-cpu-ops.h"    /* generic_handle_interrupt() */
#include "accel/dummy-cpus.h"
#include "system/memory.h"
#include "system/address-spaces.h"
#include "hw/arm/machines-qom.h"
#define SEL4_CLASS_DATA const void
#define SEL4_DEFINE_MACHINE DEFINE_MACHINE_AARCH64
#endif

#endif
