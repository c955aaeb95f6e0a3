/* SKELETON (qemu/hooks/examples/stub-overlay): build-pipeline test only */
#ifndef SYSTEM_SEL4_H
#define SYSTEM_SEL4_H
extern bool sel4_allowed;
#define sel4_enabled() (sel4_allowed)
#endif
