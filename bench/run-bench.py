#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Copyright (c) 2026 The sel4-qemu-uring authors
"""fio and iperf3 through the seL4 path, loop modes side by side.

Block: fio with the sel4sim engine (bench/fio/sel4sim.c): fio -> the
simulated guest's virtio-blk -> vso_rpc -> QEMU (-accel sel4, loop=MODE)
-> its backing file -> MSI -> fio.  The limit: fio's own io_uring engine
on the same backing file (for the null-co workload, whose QEMU drive
reads zeroes: fio's null engine).  The QD32 block jobs run again with
each VMM doorbell charged 10 us (sel4sim's sel4_doorbell_ns).  Network:
iperf3 from namespace A to B through sel4-net-bridge (tap -> guest
virtio-net -> QEMU -> tap), both directions; the limit: iperf3 over a
veth pair.

Modes run in turns within each round (thread, thread_batch, aio, uring,
uring_poll, thread_deployed, uring_iothread (block), uring_vhost (block
jobs of one queue on the file), limit, then again), so drift in the machine's load hits all of
them alike; each number is the median over the rounds.

Writes OUT/latest.json, OUT/latest.md and OUT/*.png (gnuplot).  Needs
root (namespaces).  See bench/README.md.
"""
import argparse
import collections
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

MODES = {
    # name: (accelerator loop, poll-us, more -accel options)
    "thread": ("thread", 0, ""),
    # the same thread, batches: what batching gains without io_uring
    "thread_batch": ("thread-batch", 0, ""),
    "aio": ("aio", 0, ""),
    "uring": ("uring", 0, ""),
    "uring_poll": ("uring", 50, ""),
    # the deployed accelerator's shape: one request at a time, every notify
    # through the memory API, the guest's notifies never suppressed
    "thread_deployed": ("thread", 0, "ioeventfd=off,notify-suppress-us=0"),
}
ALL_MODES = list(MODES) + ["limit"]
# block only: the device is vhost-user-blk-pci, served by
# qemu-storage-daemon on the same file (the data path outside QEMU: its
# kicks through the accelerator's ioeventfd fast path); CPU per op adds
# the daemon's
VHOST_MODES = {"uring_vhost": "uring"}
# block only: the virtio-blk device served by an IOThread (all its queues
# in one, sel4sim's sel4_iothread), its guest notifies held off there by
# virtio's notify hold
IOTHREAD_MODES = {"uring_iothread": "uring"}
BLOCK_MODES = list(MODES) + list(IOTHREAD_MODES) + list(VHOST_MODES) + \
    ["limit"]
# iperf3 only: loop=uring without the guest's checksum/TSO offloads
PLAIN = "uring_plain"
NET_MODES = ALL_MODES + [PLAIN]

# a fio job; drive: sel4sim's sel4_drive (QEMU's drive: the backing file,
# or null-co); doorbell_ns: what the simulated VMM spends per doorbell;
# jobs: fio threads, each on its own request queue of the one device (the
# limit: as many threads on the file), qd each
Job = collections.namedtuple("Job", "rw bs qd drive doorbell_ns jobs",
                             defaults=("file", 0, 1))
# a doorbell's cost on seL4, as the bench assumes it (a signal and a
# context switch each way, against an eventfd write here)
DOORBELL_NS = 10000
BLOCK = {
    "randread4k_qd1": Job("randread", "4k", 1),
    "randread4k_qd32": Job("randread", "4k", 32),
    "randwrite4k_qd32": Job("randwrite", "4k", 32),
    "seqread128k": Job("read", "128k", 8),
    "seqwrite128k": Job("write", "128k", 8),
    # two queues of one device, 16 each: requests of both meet in a batch
    "randread4k_qd32_mq2": Job("randread", "4k", 16, jobs=2),
    # the device path alone: no storage behind QEMU's virtio-blk
    "randread4k_qd32_null": Job("randread", "4k", 32, drive="null-co"),
    # ... on two queues, 16 each
    "randread4k_qd32_null_mq2": Job("randread", "4k", 16, drive="null-co",
                                    jobs=2),
    # every doorbell the VMM rings or takes costs it 10 us
    "randread4k_qd32_db10us": Job("randread", "4k", 32,
                                  doorbell_ns=DOORBELL_NS),
    "randwrite4k_qd32_db10us": Job("randwrite", "4k", 32,
                                   doorbell_ns=DOORBELL_NS),
}
def free_doorbells_of(wl):
    """The workload @wl is with doorbells at no cost (None: it is one)."""
    job = BLOCK.get(wl)
    if not job or not job.doorbell_ns:
        return None
    return next(w for w, j in BLOCK.items()
                if j == job._replace(doorbell_ns=0))


def modes_of(wl):
    """The block modes workload @wl runs in: qemu-storage-daemon's
    vhost-user-blk export serves one queue on the file."""
    job = BLOCK[wl]
    if job.jobs > 1 or job.drive != "file":
        return [m for m in BLOCK_MODES if m not in VHOST_MODES]
    return BLOCK_MODES


# what --real-file runs again on a real disk: the jobs that read the file
REAL_FILE_BLOCK = [wl for wl, j in BLOCK.items()
                   if j.drive == "file" and not j.doorbell_ns]
NET = {
    # name: iperf3 parallel streams
    "iperf3_tcp1": 1,
    "iperf3_tcp4": 4,
}
DISK_MB = 512


def log(msg):
    print(msg, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True,
                          **kw)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def perf_works():
    """Whether perf can count cycles and instructions here."""
    if not shutil.which("perf"):
        return False, "perf not installed"
    r = subprocess.run(["perf", "stat", "-x,", "-e", "cycles,instructions",
                        "true"], capture_output=True, text=True)
    if r.returncode != 0 or "not supported" in r.stderr or \
            "<not" in r.stderr:
        return False, "perf stat: cycles/instructions not supported " \
                      "(no hardware counters in this VM)"
    return True, "perf stat cycles and instructions"


def perf_parse(path):
    counts = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[0].isdigit():
                    counts[parts[2].split(":")[0]] = int(parts[0])
    except OSError:
        pass
    return counts


def perf_record_cmd(data):
    """Sample a command and its children (QEMU, its io_uring workers)."""
    return ["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-g",
            "-o", data, "--"]


def perf_summary(data, out, title):
    """Where the CPU went: by process and library, then by symbol."""
    with open(out, "w") as f:
        f.write("# %s\n# perf record -e cpu-clock (software clock: no "
                "hardware counters here), callers folded\n" % title)
        # the accelerator's and the RPC library's own functions in QEMU
        r = subprocess.run(["perf", "report", "-i", data, "--stdio",
                            "--no-children", "-g", "none", "--comm",
                            "qemu-system-aar", "--sort", "sym"],
                           capture_output=True, text=True)
        share = sum(float(l.split("%")[0]) for l in r.stdout.splitlines()
                    if "%" in l and not l.startswith("#") and
                    ("sel4_" in l or "vso_" in l))
        f.write("# samples in QEMU's sel4_*/vso_* functions (the "
                "accelerator, the RPC queues): %.2f%% of all\n" % share)
        for sort, n in (("comm,dso", 25), ("comm,sym", 60)):
            r = subprocess.run(["perf", "report", "-i", data, "--stdio",
                                "--no-children", "-g", "none", "--sort",
                                sort], capture_output=True, text=True)
            rows = [l for l in r.stdout.splitlines()
                    if l.strip() and not l.startswith("#")]
            f.write("\n## by %s (top %d)\n" % (sort, n))
            f.write("\n".join(rows[:n]) + "\n")


# ---- block ----------------------------------------------------------------

class Block:
    def __init__(self, args, disk, cache, aio, limit_engine, direct):
        self.args = args
        self.disk = disk
        self.cache = cache
        self.aio = aio
        self.limit_engine = limit_engine
        self.direct = direct

    def fio_cmd(self, wl, mode, stats):
        job = BLOCK[wl]
        cmd = ["fio", "--output-format=json", "--name=" + wl,
               "--filename=" + self.disk, "--size=%dM" % DISK_MB,
               "--rw=" + job.rw, "--bs=" + job.bs, "--iodepth=%d" % job.qd,
               "--time_based", "--runtime=%g" % self.args.runtime,
               "--lat_percentiles=1", "--randrepeat=0", "--norandommap",
               "--direct=%d" % self.direct]
        if job.jobs > 1:
            cmd += ["--numjobs=%d" % job.jobs, "--thread",
                    "--group_reporting"]
        if mode == "limit":
            cmd.append("--ioengine=" + self.limit_of(wl))
            return cmd
        vhost = mode in VHOST_MODES
        iothread = mode in IOTHREAD_MODES
        loop, poll_us, accel = MODES[VHOST_MODES[mode] if vhost else
                                     IOTHREAD_MODES[mode] if iothread else
                                     mode]
        # the engine's options come after --ioengine
        return cmd + ["--ioengine=external:" + self.args.engine,
                      "--sel4_qemu=" + self.args.qemu,
                      "--sel4_loop=" + loop, "--sel4_poll_us=%d" % poll_us,
                      "--sel4_cache=" + self.cache,
                      "--sel4_aio=" + self.aio,
                      "--sel4_drive=" + job.drive,
                      "--sel4_doorbell_ns=%d" % job.doorbell_ns,
                      "--sel4_stats=" + stats] + \
            (["--sel4_accel=" + accel] if accel else []) + \
            (["--sel4_vhost_user=" + self.args.storage_daemon]
             if vhost else []) + \
            (["--sel4_iothread=1"] if iothread else [])

    def limit_of(self, wl):
        """The limit's fio engine: with no storage (null-co), fio's null."""
        return "null" if BLOCK[wl].drive == "null-co" else self.limit_engine

    def once(self, wl, mode, tmp, profile=None):
        stats = os.path.join(tmp, "stats.json")
        perf_out = os.path.join(tmp, "perf.csv")
        for p in (stats, perf_out):
            if os.path.exists(p):
                os.unlink(p)
        cmd = self.fio_cmd(wl, mode, stats)
        if profile:
            cmd = perf_record_cmd(profile) + cmd
        elif self.args.perf:
            # fio and its children: the job, its QEMU
            cmd = ["perf", "stat", "-x,", "-e", "cycles,instructions",
                   "-o", perf_out, "--"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=self.args.runtime * 10 + 60)
        if r.returncode != 0:
            raise RuntimeError("fio %s %s failed: %s" %
                               (wl, mode, r.stderr.strip()[-2000:]))
        job = json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]
        if job.get("error"):
            raise RuntimeError("fio %s %s: error %s" %
                               (wl, mode, job["error"]))
        ddir = "write" if "write" in BLOCK[wl].rw else "read"
        d = job[ddir]
        ios = d["total_ios"]
        pct = d["lat_ns"]["percentile"]
        res = {
            "iops": d["iops"],
            "mbps": d["bw_bytes"] / 1e6,
            "lat_p50_us": pct["50.000000"] / 1000,
            "lat_p99_us": pct["99.000000"] / 1000,
        }
        # the job's process: fio itself, and for sel4 modes the guest
        fio_cpu_us = (job["usr_cpu"] + job["sys_cpu"]) / 100 * \
            job["job_runtime"] * 1000
        extra = {"fio_cpu_us": fio_cpu_us, "ios": ios}
        if mode == "limit":
            extra["engine"] = self.limit_of(wl)
        if mode != "limit":
            with open(stats) as f:
                st = json.loads(f.read().splitlines()[-1])
            if st["protocol_errors"]:
                raise RuntimeError("%s %s: %d protocol errors" %
                                   (wl, mode, st["protocol_errors"]))
            extra.update({
                "qemu_cpu_us": st["qemu_cpu_us"],
                "daemon_cpu_us": st["daemon_cpu_us"],
                "doorbells_per_op": (st["vmm_doorbells_out"] +
                                     st["vmm_doorbells_in"]) / st["ios"],
                # VMM -> QEMU (the VMM rings) and QEMU -> VMM
                "doorbells_to_qemu_per_op": st["vmm_doorbells_out"] /
                st["ios"],
                "doorbells_to_vmm_per_op": st["vmm_doorbells_in"] /
                st["ios"],
                "notifies_per_op": st["mmio_requests"] / st["ios"],
                "msis_per_op": st["msis"] / st["ios"],
                "batch_hist": st["accel"]["batch_hist"],
                "accel_requests": st["accel"]["requests"],
                "accel_doorbells": st["accel"]["doorbells_in"] +
                st["accel"]["doorbells_out"],
                "drive": st["drive"],
                "doorbell_ns": st["doorbell_ns"],
            })
            res["cpu_us_per_op"] = (fio_cpu_us + st["qemu_cpu_us"] +
                                    st["daemon_cpu_us"]) / ios
        else:
            res["cpu_us_per_op"] = fio_cpu_us / ios
        if self.args.perf:
            c = perf_parse(perf_out)
            if "cycles" in c:
                res["cycles_per_op"] = c["cycles"] / ios
                res["instructions_per_op"] = c.get("instructions", 0) / ios
        res.update(extra)
        return res


def prepare_disk(path, direct):
    """Fill the backing file, so reads read data and writes overwrite."""
    run(["fio", "--name=fill", "--filename=" + path,
         "--size=%dM" % DISK_MB, "--rw=write", "--bs=1M",
         "--ioengine=io_uring", "--iodepth=8", "--direct=%d" % direct,
         "--refill_buffers", "--output=/dev/null"])


# ---- network ----------------------------------------------------------------

def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, capture_output=True)


def sh_quiet(cmd):
    subprocess.run(cmd, shell=True, capture_output=True)


class Veth:
    """Namespaces A and B joined by a veth pair: the network's limit."""

    def __init__(self):
        pid = os.getpid()
        self.ns = ("s4vA-%d" % pid, "s4vB-%d" % pid)
        self.ip = ("10.78.%d.1" % (pid % 200), "10.78.%d.2" % (pid % 200))

    def __enter__(self):
        a, b = self.ns
        self.__exit__()
        sh("ip netns add %s && ip netns add %s" % (a, b))
        sh("ip link add s4va netns %s type veth peer name s4vb netns %s"
           % (a, b))
        for ns, dev, ip in ((a, "s4va", self.ip[0]), (b, "s4vb", self.ip[1])):
            sh("ip -n %s addr add %s/24 dev %s && ip -n %s link set %s up "
               "&& ip -n %s link set lo up" % (ns, ip, dev, ns, dev, ns))
        return self

    def __exit__(self, *exc):
        for ns in self.ns:
            sh_quiet("ip netns del %s" % ns)


class Bridge:
    """sel4-net-bridge running for one measurement."""

    def __init__(self, args, mode, profile=None):
        loop, poll_us, accel = MODES["uring" if mode == PLAIN else mode]
        self.cmd = [args.bridge, "--qemu", args.qemu, "--loop", loop,
                    "--poll-us", str(poll_us)] + \
            (["--accel", accel] if accel else [])
        if mode != PLAIN:
            # as a Linux guest: checksum and TSO offloads both ways
            self.cmd.append("--offloads")
        self.profile = profile
        if profile:
            # perf passes the SIGTERM on to the bridge when it ends
            self.cmd = perf_record_cmd(profile) + self.cmd

    def __enter__(self):
        self.p = subprocess.Popen(self.cmd, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().split()
        if len(line) != 5 or line[0] != "ready":
            self.p.kill()
            raise RuntimeError("sel4-net-bridge did not start: %s" %
                               self.p.stderr.read().strip())
        _, a, b, ipa, ipb = line
        self.ns, self.ip = (a, b), (ipa, ipb)
        return self

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        out, err = self.p.communicate(timeout=30)
        lines = [l for l in out.splitlines() if l.startswith("{")]
        if (self.p.returncode != 0 and not self.profile) or not lines:
            raise RuntimeError("sel4-net-bridge: %s" % err.strip())
        return json.loads(lines[-1])

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def iperf3(ns, ip, streams, reverse, seconds):
    """One iperf3 run from ns[0] to the server in ns[1]; its JSON."""
    port = 5201 + os.getpid() % 1000
    srv = subprocess.Popen(["ip", "netns", "exec", ns[1], "iperf3", "-s",
                            "-1", "-B", ip[1], "-p", str(port)],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        cmd = ["ip", "netns", "exec", ns[0], "iperf3", "-c", ip[1],
               "-p", str(port), "-t", "%g" % seconds, "-P", str(streams),
               "-i", "0.2", "-J"]
        if reverse:
            cmd.append("-R")
        for attempt in range(20):
            r = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=seconds + 60)
            d = json.loads(r.stdout) if r.stdout.strip() else {}
            if "error" in d and "connect" in d["error"] and attempt < 19:
                time.sleep(0.1)     # the server is not listening yet
                continue
            break
        if d.get("error") or "end" not in d:
            raise RuntimeError("iperf3: %s" % d.get("error", r.stderr))
        return d
    finally:
        srv.wait(timeout=30)


def iperf3_result(d, streams):
    bps = d["end"]["sum_received"]["bits_per_second"]
    # the sender's smoothed TCP RTT, sampled every 0.2 s per stream
    rtts = [s["rtt"] for iv in d["intervals"] for s in iv["streams"]
            if s.get("rtt")]
    rtts.sort()
    pick = (lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))]
            if rtts else None)
    return {"gbps": bps / 1e9, "lat_p50_us": pick(0.5),
            "lat_p99_us": pick(0.99)}


def net_once(args, wl, mode, reverse, profile=None):
    streams = NET[wl]
    if mode == "limit":
        with Veth() as v:
            d = iperf3(v.ns, v.ip, streams, reverse, args.net_seconds)
        res = iperf3_result(d, streams)
        res["iops"] = None      # no frame counter on a veth
        res["cpu_us_per_op"] = None  # nothing forwards: no path process
        return res
    with Bridge(args, mode, profile) as br:
        d = iperf3(br.ns, br.ip, streams, reverse, args.net_seconds)
        st = br.stop()

    if st["protocol_errors"]:
        raise RuntimeError("%s %s: %d protocol errors" %
                           (wl, mode, st["protocol_errors"]))
    res = iperf3_result(d, streams)
    frames = st["tx_frames"] + st["rx_frames"]
    res.update({
        # frames through the guest, either way, per second of the span
        "iops": frames / st["seconds"],
        "cpu_us_per_op": (st["qemu_cpu_us"] + st["sim_cpu_us"]) / frames,
        # frames are 64 KiB with TSO, 1.5 KB without: per MB compares
        "cpu_us_per_mb": (st["qemu_cpu_us"] + st["sim_cpu_us"]) /
        ((st["tx_bytes"] + st["rx_bytes"]) / 1e6),
        "qemu_cpu_us": st["qemu_cpu_us"], "sim_cpu_us": st["sim_cpu_us"],
        "frames": frames,
        "doorbells_per_op": (st["vmm_doorbells_out"] +
                             st["vmm_doorbells_in"]) / frames,
        "notifies_per_op": st["mmio_requests"] / frames,
        "batch_hist": st["accel"]["batch_hist"],
    })
    return res


# ---- rounds -------------------------------------------------------------

def combine(samples):
    """Median of every numeric key over the rounds."""
    out = {}
    for k in samples[0]:
        vals = [s.get(k) for s in samples]
        if all(isinstance(v, list) for v in vals):
            out[k] = [sum(x) for x in zip(*vals)]
        elif all(isinstance(v, (int, float)) or v is None for v in vals):
            out[k] = median(vals)
            if k in ("iops", "mbps", "gbps", "lat_p50_us"):
                out[k + "_rounds"] = vals
        else:
            out[k] = vals[0]
    out["rounds"] = len(samples)
    return out


def run_block(args, blk, workloads):
    samples = {wl: {m: [] for m in modes_of(wl)} for wl in workloads}
    with tempfile.TemporaryDirectory(prefix="sel4-bench-") as tmp:
        for rnd in range(args.rounds):
            for wl in workloads:
                for m in modes_of(wl):
                    r = blk.once(wl, m, tmp)
                    samples[wl][m].append(r)
                    log("  round %d %-17s %-10s %9.0f IOPS %8.1f MB/s "
                        "p50 %7.1f us p99 %7.1f us %6.2f us CPU/op" %
                        (rnd + 1, wl, m, r["iops"], r["mbps"],
                         r["lat_p50_us"], r["lat_p99_us"],
                         r["cpu_us_per_op"]))
    res = {wl: {m: combine(samples[wl][m]) for m in modes_of(wl)}
           for wl in workloads}
    for modes in res.values():
        flag_stalls(modes)
    return res


STALL_FACTOR = 3


def flag_stalls(modes):
    """Per round, a mode whose p50 is over STALL_FACTOR x the best sel4
    mode's p50 in that round stalled: modes[m]["stalled_rounds"], the
    rounds (1-based) it did."""
    sel4 = [m for m in modes if m != "limit"]
    rounds = len(modes[sel4[0]]["lat_p50_us_rounds"]) if sel4 else 0
    for m in sel4:
        modes[m]["stalled_rounds"] = []
    for i in range(rounds):
        p50s = {m: modes[m]["lat_p50_us_rounds"][i] for m in sel4}
        best = min(v for v in p50s.values() if v is not None)
        for m, v in p50s.items():
            if v is not None and v > STALL_FACTOR * best:
                modes[m]["stalled_rounds"].append(i + 1)


def run_net(args):
    res = {}
    samples = {(wl, rev): {m: [] for m in NET_MODES}
               for wl in NET for rev in (False, True)}
    for rnd in range(args.rounds):
        for wl in NET:
            for rev in (False, True):
                for m in NET_MODES:
                    r = net_once(args, wl, m, rev)
                    samples[(wl, rev)][m].append(r)
                    log("  round %d %-12s %-3s %-10s %6.2f Gbit/s "
                        "%9s frames/s  %s us CPU/frame" %
                        (rnd + 1, wl, "B>A" if rev else "A>B", m,
                         r["gbps"],
                         "%.0f" % r["iops"] if r["iops"] else "-",
                         "%.2f" % r["cpu_us_per_op"]
                         if r["cpu_us_per_op"] is not None else "-"))
    for wl in NET:
        res[wl] = {}
        for m in NET_MODES:
            fwd = combine(samples[(wl, False)][m])
            fwd["reverse"] = combine(samples[(wl, True)][m])
            res[wl][m] = fwd
    return res


# ---- reporting ----------------------------------------------------------

def ratio(a, b):
    return a / b if a is not None and b else None


def ratio_of(a, b, key):
    """@a's @key over @b's: the median of the ratios within each round
    (whose runs were back to back), else of the medians."""
    ra, rb = a.get(key + "_rounds"), b.get(key + "_rounds")
    if ra and rb and len(ra) == len(rb) and \
            all(x is not None for x in ra) and all(rb):
        return statistics.median(x / y for x, y in zip(ra, rb))
    return ratio(a.get(key), b.get(key))


def throughput(r):
    return r.get("iops") if "mbps" in r else r.get("gbps")


def ratios(workloads):
    out = {}
    for wl, modes in workloads.items():
        key = "gbps" if wl.startswith("iperf3") else "iops"
        out[wl] = {"uring_vs_thread": ratio_of(modes["uring"],
                                               modes["thread"], key),
                   "uring_vs_thread_deployed": ratio_of(
                       modes["uring"], modes["thread_deployed"], key)}
        for m in modes:
            if m != "limit" and m != PLAIN:
                out[wl][m + "_vs_limit"] = ratio_of(modes[m], modes["limit"],
                                                    key)
        free = free_doorbells_of(wl)
        if free in workloads:
            for m in modes:
                if m != "limit" and m in workloads[free]:
                    out[wl][m + "_vs_free_doorbells"] = ratio_of(
                        modes[m], workloads[free][m], key)
        if wl.startswith("iperf3"):
            out[wl][PLAIN + "_vs_limit"] = ratio_of(modes[PLAIN],
                                                    modes["limit"], key)
            out[wl]["uring_vs_" + PLAIN] = ratio_of(modes["uring"],
                                                    modes[PLAIN], key)
            rv = {m: modes[m]["reverse"] for m in NET_MODES}
            out[wl]["reverse_uring_vs_thread"] = ratio_of(
                rv["uring"], rv["thread"], key)
            for m in list(MODES) + [PLAIN]:
                out[wl]["reverse_%s_vs_limit" % m] = ratio_of(
                    rv[m], rv["limit"], key)
    return out


def targets(workloads, rat):
    """Issue 15's targets, each met or not (ratios within one run)."""
    t = []

    def add(name, value, want, at_most=False):
        met = value is not None and (value <= want if at_most
                                     else value >= want)
        t.append({"target": name, "value": value, "want": want,
                  "at_most": at_most, "met": met})

    def val(wl, mode, key):
        return workloads.get(wl, {}).get(mode, {}).get(key)

    blk = [wl for wl in BLOCK if wl in workloads]
    if blk:
        add("stalled rounds, every block workload and mode",
            sum(len(r.get("stalled_rounds", []))
                for wl in blk for r in workloads[wl].values()), 0, True)
    q = rat.get("randread4k_qd32")
    if q:
        best = max((v for k, v in q.items()
                    if k.endswith("_vs_limit") and v is not None),
                   default=None)
        add("randread4k_qd32 best sel4 mode / fio io_uring limit", best, 0.5)
        add("randread4k_qd32 uring / thread", q["uring_vs_thread"], 2.0)
        add("randread4k_qd32 uring / thread as deployed",
            q["uring_vs_thread_deployed"], 2.0)
    for wl in ("randread4k_qd32", "randwrite4k_qd32"):
        if wl in workloads:
            add("%s uring CPU µs per I/O (fio + QEMU)" % wl,
                val(wl, "uring", "cpu_us_per_op"), 4.5, True)
            add("%s uring doorbells per I/O to QEMU" % wl,
                val(wl, "uring", "doorbells_to_qemu_per_op"), 0.05, True)
            add("%s uring doorbells per I/O to the VMM" % wl,
                val(wl, "uring", "doorbells_to_vmm_per_op"), 0.05, True)
    if "randread4k_qd1" in workloads:
        up = val("randread4k_qd1", "uring", "lat_p50_us")
        tp = val("randread4k_qd1", "thread", "lat_p50_us")
        add("randread4k_qd1 thread p50 / uring p50",
            tp / up if up and tp else None, 1.0)
    if "randread4k_qd32_null_mq2" in workloads:
        add("randread4k_qd32_null_mq2 best sel4 mode IOPS",
            max((r["iops"] for m, r in
                 workloads["randread4k_qd32_null_mq2"].items()
                 if m != "limit"), default=None), 400000)
    d = rat.get("randread4k_qd32_db10us")
    if d:
        add("randread4k_qd32_db10us uring / thread", d["uring_vs_thread"],
            3.0)
    n = rat.get("iperf3_tcp1")
    if n:
        add("iperf3_tcp1 uring / thread", n["uring_vs_thread"], 2.0)
        add("iperf3_tcp1 uring / veth limit A→B", n["uring_vs_limit"], 0.8)
        add("iperf3_tcp1 uring / veth limit B→A",
            n.get("reverse_uring_vs_limit"), 0.8)
    return t


def fmt(v, spec="%.1f"):
    return "-" if v is None else spec % v


def markdown(result):
    m = result["machine"]
    lines = ["# Benchmarks: fio and iperf3 through the seL4 path", "",
             "Machine: %s, %d CPUs, %s, kernel %s; load average %s at the "
             "start, %s at the end; %s; fio %s, iperf3 %s; %s, %d round(s) "
             "in turns, medians. Backing file: %s (QEMU cache=%s, aio=%s)."
             % (m["cpu_model"], m["cpus"], m["memory"], m["kernel"],
                m["load_start"], m["load_end"], m["date"], m["fio"],
                m["iperf3"], "quick" if m["quick"] else "full", m["rounds"],
                m["disk"], m["cache"], m["aio"]), ""]
    lines += ["| workload | mode | IOPS (min-max) | MB/s | p50 µs | p99 µs | "
              "CPU µs/op | vs limit | doorbells/op to QEMU, to VMM | "
              "notifies/op | MSIs/op | stalled rounds |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rat = result["ratios"]
    for wl in BLOCK:
        if wl not in result["workloads"]:
            continue
        for mode in BLOCK_MODES:
            r = result["workloads"][wl].get(mode)
            if r is None:       # a result of before the mode was added
                continue
            vs = rat[wl].get(mode + "_vs_limit")
            each = r.get("iops_rounds") or []
            spread = "%s (%s-%s)" % (fmt(r["iops"], "%.0f"),
                                     fmt(min(each), "%.0f"),
                                     fmt(max(each), "%.0f")) \
                if len(each) > 1 else fmt(r["iops"], "%.0f")
            ways = "-" if "doorbells_to_qemu_per_op" not in r else \
                "%.3f, %.3f" % (r["doorbells_to_qemu_per_op"],
                                r["doorbells_to_vmm_per_op"])
            stalls = r.get("stalled_rounds")
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s "
                         "| %s | %s |"
                         % (wl, mode if mode != "limit" else
                            "limit (fio %s)" % r.get("engine",
                                                     m["limit_engine"]),
                            spread, fmt(r["mbps"]),
                            fmt(r["lat_p50_us"]), fmt(r["lat_p99_us"]),
                            fmt(r["cpu_us_per_op"], "%.2f"),
                            fmt(vs, "%.2f"), ways,
                            fmt(r.get("notifies_per_op"), "%.3f"),
                            fmt(r.get("msis_per_op"), "%.3f"),
                            "-" if stalls is None else
                            ",".join(map(str, stalls)) or "none"))
    lines += ["", "| workload | mode | Gbit/s A→B | Gbit/s B→A | "
              "frames/s | RTT p50 µs | RTT p99 µs | CPU µs/frame | "
              "CPU µs/MB | vs limit A→B | vs limit B→A |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for wl in NET:
        if wl not in result["workloads"]:
            continue
        for mode in NET_MODES:
            r = result["workloads"][wl][mode]
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s "
                         "| %s |"
                         % (wl, {"limit": "limit (veth)",
                                 PLAIN: "uring, no offloads"}.get(mode, mode),
                            fmt(r["gbps"], "%.2f"),
                            fmt(r["reverse"]["gbps"], "%.2f"),
                            fmt(r["iops"], "%.0f"),
                            fmt(r["lat_p50_us"], "%.0f"),
                            fmt(r["lat_p99_us"], "%.0f"),
                            fmt(r["cpu_us_per_op"], "%.2f"),
                            fmt(r.get("cpu_us_per_mb"), "%.1f"),
                            fmt(rat[wl].get(mode + "_vs_limit"), "%.2f"),
                            fmt(rat[wl].get("reverse_%s_vs_limit" % mode),
                                "%.2f")))
    lines += ["", "Ratios are medians of the ratios within each round.",
              "", "uring / thread: " + ", ".join(
        "%s %s" % (wl, fmt(rat[wl]["uring_vs_thread"], "%.2f×"))
        for wl in result["workloads"]),
              "", "uring / thread as deployed (ioeventfd=off, "
              "notify-suppress-us=0): " + ", ".join(
        "%s %s" % (wl, fmt(rat[wl]["uring_vs_thread_deployed"], "%.2f×"))
        for wl in result["workloads"]), ""]
    costly = [wl for wl in result["workloads"]
              if free_doorbells_of(wl) in result["workloads"]]
    if costly:
        lines += ["Doorbells at %g µs each (the VMM busy-waits that long "
                  "for each one it rings or takes), IOPS as a share of "
                  "the same workload's at no cost:" % (DOORBELL_NS / 1000),
                  ""]
        for wl in costly:
            lines.append("- %s: %s" % (free_doorbells_of(wl), ", ".join(
                "%s %s" % (mo, fmt(rat[wl].get(mo + "_vs_free_doorbells"),
                                   "%.2f")) for mo in MODES)))
        lines.append("")
    lines += ["Targets:", ""]
    for t in result["targets"]:
        lines.append("- %s = %s (want %s %s): %s" %
                     (t["target"], fmt(t["value"], "%.4g"),
                      "≤" if t.get("at_most") else "≥", "%g" % t["want"],
                      "met" if t["met"] else "**missed**"))
    lines += ["", "Batch sizes the accelerator served (passes of 0, 1, 2-3, "
              "4-7, 8-15, 16-31, 32 requests; all rounds):", ""]
    for wl, modes in result["workloads"].items():
        for mode in [m for m in NET_MODES if m in modes and m != "limit"]:
            h = modes[mode].get("batch_hist")
            if h:
                lines.append("- %s %s: %s" % (wl, mode, h))
    real = result.get("real_file")
    if real:
        lines += ["", "Real file %s (QEMU cache=none; limit: fio with "
                  "direct=1), IOPS, µs p50/p99 and vs limit:" % real["path"],
                  "", "| workload | QEMU aio | " + " | ".join(BLOCK_MODES) +
                  " |", "|---|---|" + "---:|" * len(BLOCK_MODES)]
        for wl in [w for w in REAL_FILE_BLOCK
                   if w in real["aio=io_uring"]["workloads"]]:
            for aio in ("aio=io_uring", "aio=native"):
                w = real[aio]["workloads"][wl]
                rt = real[aio]["ratios"][wl]
                lines.append("| %s | %s | %s |" % (wl, aio, " | ".join(
                    "-" if mo not in w else "%s (%s/%s µs%s)" % (
                        fmt(w[mo]["iops"], "%.0f"),
                        fmt(w[mo]["lat_p50_us"], "%.0f"),
                        fmt(w[mo]["lat_p99_us"], "%.0f"),
                        "" if mo == "limit" else
                        ", " + fmt(rt.get(mo + "_vs_limit"), "%.2f"))
                    for mo in BLOCK_MODES)))
        lines.append("")
        lines.append("(limit with aio=native: fio's libaio engine)")
    lines.append("")
    lines.append("Cost: %s." % m["perf"])
    return "\n".join(lines) + "\n"


def plots(result, out):
    """IOPS and latency per mode, throughput per mode (gnuplot PNGs)."""
    if not shutil.which("gnuplot"):
        log("gnuplot not found: no plots")
        return []
    wls = [w for w in BLOCK if w in result["workloads"]]
    nets = [w for w in NET if w in result["workloads"]]
    dat = os.path.join(out, "plot-data")
    os.makedirs(dat, exist_ok=True)

    def table(name, rows, header):
        path = os.path.join(dat, name)
        with open(path, "w") as f:
            f.write("# " + " ".join(header) + "\n")
            for row in rows:
                f.write(" ".join("NaN" if v is None else str(v)
                                 for v in row) + "\n")
        return path

    W = result["workloads"]
    # the block modes are a superset of the network's: a network row has
    # no value (NaN) in a block-only column
    M = BLOCK_MODES

    def val(w, m, key, rev=False):
        r = W[w].get(m)
        r = r and (r["reverse"] if rev else r)
        return r[key] if r else None

    iops = table("iops.dat", [[w] + [val(w, m, "iops") for m in M]
                              for w in wls], ["workload"] + M)
    lat = table("latency.dat",
                [[w + "-" + p] + [val(w, m, "lat_%s_us" % p) for m in M]
                 for w in ("randread4k_qd1", "randread4k_qd32") if w in W
                 for p in ("p50", "p99")], ["workload"] + M)
    thr = table("throughput.dat",
                [[w + "-MB/s"] + [val(w, m, "mbps") for m in M]
                 for w in ("seqread128k", "seqwrite128k") if w in W] +
                [[w + ("-rev" if rev else "") + "-Mbit/s"] +
                 [val(w, m, "gbps", rev) and val(w, m, "gbps", rev) * 1000
                  for m in M] for w in nets for rev in (False, True)],
                ["workload"] + M)
    cols = ", ".join("'%s' using %d:xtic(1) title '%s'" %
                     (p, i + 2, m) for i, m in enumerate(M)
                     for p in ["%FILE%"])
    m = result["machine"]
    sub = "%s, %d CPUs, load %s" % (m["cpu_model"], m["cpus"],
                                    m["load_start"])
    made = []
    for png, path, title, ylabel, log_y in (
            ("block-iops.png", iops, "fio IOPS per mode", "IOPS", False),
            ("block-latency.png", lat, "fio latency per mode (µs, log "
             "scale)", "µs", True),
            ("throughput.png", thr, "Throughput per mode: fio MB/s, "
             "iperf3 Mbit/s (A>B, and B>A: rev)", "MB/s or Mbit/s", False)):
        script = """
set terminal pngcairo size 1100,500 font ",10" noenhanced
set output '%s'
set title "%s\\n%s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside right top
set ylabel '%s'
set grid ytics
%s
set xtics rotate by -20
plot %s
""" % (os.path.join(out, png), title, sub, ylabel,
       "set logscale y" if log_y else "set yrange [0:*]",
       cols.replace("%FILE%", path))
        r = subprocess.run(["gnuplot"], input=script, text=True,
                           capture_output=True)
        if r.returncode != 0:
            log("gnuplot %s: %s" % (png, r.stderr.strip()))
        else:
            made.append(png)
    return made


def profile(args, tmpdir):
    """One extra run of the target workloads in loop=uring, sampled."""
    data = os.path.join(tmpdir, "perf.data")
    log("== profiles (perf record -e cpu-clock) of the target workloads")
    disk = os.path.join(tmpdir, "disk.img")
    prepare_disk(disk, 0)
    blk = Block(args, disk, "writeback", "io_uring", "io_uring", 0)
    for mode in ("thread", "uring"):
        r = blk.once("randread4k_qd32", mode, tmpdir, profile=data)
        name = "profile-randread4k_qd32-%s.txt" % mode
        perf_summary(data, os.path.join(args.out, name),
                     "fio randread 4k QD32 through loop=%s: %.0f IOPS; "
                     "fio (the guest) and QEMU with its threads" %
                     (mode, r["iops"]))
        log("  wrote %s (%.0f IOPS)" % (name, r["iops"]))
    os.unlink(disk)
    for mode in ("thread", "uring"):
        r = net_once(args, "iperf3_tcp1", mode, False, profile=data)
        name = "profile-iperf3_tcp1-%s.txt" % mode
        perf_summary(data, os.path.join(args.out, name),
                     "iperf3 1 stream A->B through loop=%s: %.2f Gbit/s; "
                     "sel4-net-bridge (the guest) and QEMU with its threads"
                     % (mode, r["gbps"]))
        log("  wrote %s (%.2f Gbit/s)" % (name, r["gbps"]))


def machine_info(args, perf_note):
    def first_line(cmd):
        try:
            return run(cmd).stdout.splitlines()[0].strip()
        except Exception:
            return None
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "kernel": platform.release(), "arch": platform.machine(),
        "cpus": os.cpu_count(), "cpu_model": cpu,
        "memory": "%.0f GiB" % (mem / 2**30),
        "load_start": "%.2f" % os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "fio": first_line(["fio", "--version"]),
        "iperf3": first_line(["iperf3", "--version"]),
        "qemu": first_line([args.qemu, "--version"]),
        "git": first_line(["git", "-C", os.path.dirname(__file__),
                           "rev-parse", "--short", "HEAD"]),
        "quick": args.quick, "rounds": args.rounds,
        "runtime_s": args.runtime, "net_seconds": args.net_seconds,
        "perf": perf_note,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--engine", required=True, help="sel4sim.so")
    ap.add_argument("--bridge", required=True, help="sel4-net-bridge")
    ap.add_argument("--storage-daemon",
                    help="qemu-storage-daemon of the uring_vhost mode "
                         "(default: storage-daemon/ next to --qemu)")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--real-file", metavar="PATH",
                    help="also run the block jobs on a file on a real disk "
                         "(cache=none), with aio=io_uring and aio=native "
                         "(those of --workload, when given)")
    ap.add_argument("--only", choices=["block", "net"])
    ap.add_argument("--workload", action="append", choices=list(BLOCK),
                    help="run only this block workload (repeatable; "
                    "default: all)")
    ap.add_argument("--profile", action="store_true",
                    help="also sample the target workloads in loop=thread "
                         "and uring with perf (profile-*.txt)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run-bench: needs root (network namespaces)")
    args.storage_daemon = args.storage_daemon or os.path.join(
        os.path.dirname(args.qemu), "storage-daemon", "qemu-storage-daemon")
    for p in (args.qemu, args.engine, args.bridge, args.storage_daemon):
        if not os.path.exists(p):
            sys.exit("run-bench: %s does not exist (./run bench builds it)"
                     % p)
    # the machine is shared: more, shorter rounds beat fewer long ones
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.runtime = 2 if args.quick else 4
    args.net_seconds = 2 if args.quick else 4
    # SIGTERM unwinds like an error: namespaces and bridges are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    args.perf, perf_note = perf_works()
    os.makedirs(args.out, exist_ok=True)
    info = machine_info(args, perf_note)
    info.update({"disk": "tmpfs (/dev/shm), %d MiB" % DISK_MB,
                 "cache": "writeback", "aio": "io_uring",
                 "limit_engine": "io_uring"})
    log("== machine: %s, %d CPUs, load %s; %s" %
        (info["cpu_model"], info["cpus"], info["load_start"], perf_note))
    workloads = {}
    tmpdir = tempfile.mkdtemp(prefix="sel4-bench-", dir="/dev/shm")
    try:
        if args.only != "net":
            disk = os.path.join(tmpdir, "disk.img")
            prepare_disk(disk, 0)
            log("== fio through the seL4 path vs fio io_uring (tmpfs)")
            blk = Block(args, disk, "writeback", "io_uring", "io_uring", 0)
            workloads.update(run_block(args, blk,
                                       args.workload or list(BLOCK)))
            os.unlink(disk)
        if args.only != "block":
            log("== iperf3 through the seL4 path vs veth")
            workloads.update(run_net(args))
        real = {}
        # --workload narrows the real-file jobs too
        real_wls = [w for w in REAL_FILE_BLOCK
                    if not args.workload or w in args.workload]
        if args.real_file and real_wls:
            prepare_disk(args.real_file, 1)
            for aio, lim in (("io_uring", "io_uring"), ("native", "libaio")):
                log("== real file %s: cache=none, aio=%s vs fio %s" %
                    (args.real_file, aio, lim))
                blk = Block(args, args.real_file, "none", aio, lim, 1)
                w = run_block(args, blk, real_wls)
                real["aio=" + aio] = {"workloads": w, "ratios": ratios(w)}
        if args.profile:
            profile(args, tmpdir)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    info["load_end"] = "%.2f" % os.getloadavg()[0]
    rat = ratios(workloads)
    result = {"machine": info, "workloads": workloads, "ratios": rat,
              "targets": targets(workloads, rat)}
    if real:
        result["real_file"] = dict(real, path=args.real_file)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    md = markdown(result)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    made = plots(result, args.out)
    log("")
    log(md)
    log("wrote %s/latest.json, latest.md, %s" % (args.out, ", ".join(made)))


if __name__ == "__main__":
    main()
