#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/.

The seeds are committed; rerun this after changing an input format.
Each seed is a well-formed case of what the target reads (see the
comment at the top of each tests/fuzz/fuzz-*.c), so the fuzzer starts
from the protocol's real shapes rather than from zeros."""
import os
import shutil
import struct
import sys

OP_MMIO, OP_PUTC, OP_SET_IRQ, OP_START, OP_REGISTER, OP_REGION = 0, 2, 16, 18, 19, 20
AS_GLOBAL = 0xFF
IOBUF = 2432
BUF_RPC, BUF_EVT = 0x000, 0x400
Q = {"req": 0x800, "req_dev": 0x860, "resp": 0x8C0, "evt": 0x920}


def mr0_mmio(write, as_, slot, length):
    return (OP_MMIO | (slot & 63) << 6 | (write & 1) << 12 |
            (as_ & 0xFF) << 13 | (length & 15) << 21)


def msg(mr0, mr1=0, mr2=0, mr3=0):
    return struct.pack("<4Q", mr0, mr1, mr2, mr3)


class Iobuf:
    def __init__(self):
        self.b = bytearray(IOBUF)

    def body(self, buf, idx, m):
        self.b[buf + idx * 32:buf + idx * 32 + 32] = m

    def queue(self, name, prod=(0, 0), cons=(0, 0), ring=()):
        """prod/cons: (pos, count) for both tail and head (committed)."""
        q = Q[name]
        struct.pack_into("<IIII", self.b, q, prod[0], prod[1], prod[0], prod[1])
        struct.pack_into("<IIII", self.b, q + 16, cons[0], cons[1], cons[0], cons[1])
        for i, v in enumerate(ring):
            struct.pack_into("<H", self.b, q + 32 + 2 * i, v)

    def bytes(self):
        return bytes(self.b)


def decode_seeds():
    hdr = bytes([3, 0b10, 0, 0, 0, 64])     # 3 devices, device 1 PCIe
    reqs = [
        msg(mr0_mmio(0, 0, 16, 4), 0x0),               # vendor/device id
        msg(mr0_mmio(1, 1, 16, 8), 0xFF8, 0x1122334455667788),
        msg(mr0_mmio(0, 1, 16, 8), 0xFFC),             # crosses the end
        msg(mr0_mmio(0, AS_GLOBAL, 3, 4), 0x10000000),
        msg(mr0_mmio(1, AS_GLOBAL, 3, 2), 0x10000004, 0xABCD),
        msg(OP_PUTC | 17 << 6, ord("x")),
        msg(7 | 5 << 6),                               # unknown opcode
        msg(mr0_mmio(0, 0, 6, 3)),                     # length 3
        msg(mr0_mmio(0, 0x40, 7, 4)),                  # bad address space
        msg(mr0_mmio(0, 5, 8, 4)),                     # unregistered
        msg(mr0_mmio(0, 0, 9, 4) | 1 << 40),           # reserved bits
    ]
    yield "all-shapes", hdr + b"".join(reqs)
    for i, r in enumerate(reqs):
        yield f"one-{i:02d}", hdr + r
    yield "no-devices", bytes([0, 0, 0, 0, 0, 1]) + reqs[0]


def queue_seeds():
    # three requests queued by a well-behaved VMM, nothing else
    io = Iobuf()
    reqs = [msg(mr0_mmio(0, 0, 16, 4), 0), msg(mr0_mmio(1, 1, 16, 2), 4, 7),
            msg(mr0_mmio(0, AS_GLOBAL, 0, 8), 0x10000000)]
    for i, r in enumerate(reqs):
        io.body(BUF_RPC, i, r)
    io.queue("req", prod=(3, 1), ring=(0, 1, 2))
    base = io.bytes()
    yield "three-requests", base
    # recv, reply, events: the normal pass
    yield "pass", base + bytes([0, 32, 1, 3, 2])
    # one at a time (loop=thread), then the peer rewrites prod.head mid-batch
    yield "one-by-one", base + bytes([0, 1, 1, 0, 1, 1]) + \
        bytes([2, 3]) + struct.pack("<H", Q["req"] + 8) + struct.pack("<Q", 40) + \
        bytes([0, 32, 4])
    # the markers wrapped around 2^32 with entries pending
    io2 = Iobuf()
    io2.b[:] = base
    start = 0xFFFFFFFE
    struct.pack_into("<IIII", io2.b, Q["req"], (start + 3) & 0xFFFFFFFF, 9,
                     (start + 3) & 0xFFFFFFFF, 9)
    struct.pack_into("<IIII", io2.b, Q["req"] + 16, start, 4, start, 4)
    for i in range(3):
        struct.pack_into("<H", io2.b, Q["req"] + 32 + 2 * ((start + i) & 31), i)
    yield "wrapped", io2.bytes() + bytes([5, 0, 32, 1, 3, 40, 3, 40])
    # a predecessor's half-done claim (restart): recover, then serve
    io3 = Iobuf()
    io3.b[:] = base
    struct.pack_into("<II", io3.b, Q["req"] + 16, 2, 1)   # cons.tail claimed 2
    yield "predecessor", io3.bytes() + bytes([5, 0, 32, 1])


def events_seeds():
    lent = struct.pack("<II", 0b111, 0b100)   # ids 0..2 lent, 2 abandoned
    io = Iobuf()
    evs = [msg(OP_REGISTER, 0), msg(OP_REGISTER, 1), msg(OP_START),
           msg(OP_SET_IRQ, 0, 1), msg(OP_SET_IRQ, 96, 2),
           msg(OP_REGION, 0x9000000, 0x1000, 0), msg(OP_SET_IRQ, 0, 0)]
    for i, e in enumerate(evs):
        io.body(BUF_EVT, i, e)
    io.queue("evt", prod=(len(evs), 1), ring=range(len(evs)))
    for i in range(3):
        io.body(BUF_RPC, i, msg(mr0_mmio(0, 0, 16, 4), 0, 0x10441AF4))
    io.queue("resp", prod=(3, 1), ring=(0, 1, 2))
    base = lent + io.bytes()
    yield "boot", base
    yield "take-twice", base + bytes([0, 0])
    # the device side writes mr0 of a reply (only mr2 is its to write)
    yield "bad-reply", base + bytes([1, 3]) + struct.pack("<H", 32) + \
        struct.pack("<Q", 0xFFFF) + bytes([0])
    # events straight to the parser: each bad in one way
    bad = [msg(OP_REGISTER, 32), msg(OP_SET_IRQ, 1020, 1), msg(OP_SET_IRQ, 5, 3),
           msg(OP_REGION, 0xFFFFFFFFFFFFF000, 0x2000, 0), msg(OP_REGION, 0, 0, 0),
           msg(OP_REGION, 0x1000, 0x1000, 1), msg(1 << 6 | OP_START), msg(63),
           msg(OP_START)]
    yield "parse", lent + bytes(IOBUF) + b"".join(bytes([2]) + b for b in bad)


TARGETS = {"decode": decode_seeds, "queue": queue_seeds, "events": events_seeds}


def main():
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for target, gen in TARGETS.items():
        d = os.path.join(top, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in gen():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
