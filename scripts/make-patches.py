#!/usr/bin/env python3
"""Writes our QEMU changes as a `git format-patch` series against the pinned
QEMU source (./run patches), from this repo's files: the overlay
(qemu/overlay.list) and the hooks (qemu/hooks/), split into patches as
qemu/series.list says.

  scripts/make-patches.py [--out DIR] [--build | --check]

  --build  apply the series to a clean copy of the pinned source, and
           configure and build the result as qemu/build.sh does
  --check  the same, building after every patch (each step must build)

Always runs QEMU's scripts/checkpatch.pl on every patch: an error fails,
the warnings are listed in the cover letter, and so are the findings that
tests/checkpatch/false-positives.txt excuses (with its reasons). Work
trees are in
build/patches-work/ (the series' git repo) and build/patches-build/ (the
clean copy that is built; its build dir is kept, so later runs are
incremental).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU_DIR = os.path.join(TOP, "qemu")
AUTHOR = "sel4-qemu-uring authors <sel4-qemu-uring@invalid>"
# fixed dates: the same files give the same series
DATE = "2026-01-01T00:00:00+00:00"
COVER_SUBJECT = "seL4 device VM: accelerator, machine and VMM proxy"


def tap(ok, what):
    """One TAP result line (meson test reads them)."""
    tap.count += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", tap.count, what),
          flush=True)


tap.count = 0


def log(msg):
    print("[patches] " + msg, file=sys.stderr, flush=True)


def die(msg):
    log("ERROR: " + msg)
    sys.exit(1)


def run(cmd, cwd=None, env=None, capture=False):
    r = subprocess.run(cmd, cwd=cwd, env=env, text=True,
                       stdout=subprocess.PIPE if capture else None)
    if r.returncode != 0:
        die("%s failed (exit %d)" % (" ".join(cmd), r.returncode))
    return r.stdout if capture else None


def shell_lib(snippet):
    """Runs SNIPPET after sourcing qemu/lib.sh; returns its stdout."""
    return run(["bash", "-c", '. "$1"; ' + snippet, "lib",
                os.path.join(QEMU_DIR, "lib.sh")], capture=True)


def glob_re(pattern):
    """A shell glob whose * and ? stay within one path component."""
    out = ""
    for c in pattern:
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
    return re.compile(out + r"\Z")


def parse_series(path):
    patches, cur = [], None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("#") or not line.strip():
                continue
            key, _, val = line.partition(":")
            val = val.strip()
            if key == "subject":
                cur = {"subject": val, "body": [], "files": [], "hooks": []}
                patches.append(cur)
            elif cur is None:
                die("%s:%d: a block starts with subject:" % (path, n))
            elif key == "body":
                cur["body"].append(val)
            elif key == "files":
                cur["files"] += val.split()
            elif key == "hook":
                cur["hooks"].append(val)
            else:
                die("%s:%d: unknown key %r" % (path, n, key))
    return patches


def assign_files(patches, files):
    """Each file goes to the patch with its most specific matching glob
    (the most literal characters; the earlier patch on a tie)."""
    for p in patches:
        p["paths"] = []
    for f in files:
        best = None
        for i, p in enumerate(patches):
            for g in p["files"]:
                if glob_re(g).match(f):
                    score = len(g.replace("*", "").replace("?", ""))
                    if best is None or score > best[0]:
                        best = (score, i)
        if best is None:
            die("overlay file %s is in no patch of qemu/series.list" % f)
        patches[best[1]]["paths"].append(f)


def git(tree, *args, capture=False):
    env = dict(os.environ, GIT_AUTHOR_DATE=DATE, GIT_COMMITTER_DATE=DATE,
               GIT_AUTHOR_NAME="sel4-qemu-uring authors",
               GIT_AUTHOR_EMAIL="sel4-qemu-uring@invalid",
               GIT_COMMITTER_NAME="sel4-qemu-uring authors",
               GIT_COMMITTER_EMAIL="sel4-qemu-uring@invalid")
    return run(["git", "-C", tree] + list(args), env=env, capture=capture)


def extract(tarball, dest):
    """The tarball's one top-level directory becomes DEST."""
    tmp = dest + ".tmp"
    run(["rm", "-rf", dest, tmp])
    os.makedirs(tmp)
    run(["tar", "--no-same-owner", "-xf", tarball, "-C", tmp])
    (top,) = os.listdir(tmp)
    os.rename(os.path.join(tmp, top), dest)
    os.rmdir(tmp)


def apply_hook(tree, name, version):
    path = os.path.join(QEMU_DIR, "hooks", name)
    if name.endswith(".patch"):
        with open(path) as f:
            r = subprocess.run(["patch", "-p1", "--forward", "--batch", "-s"],
                               cwd=tree, stdin=f)
        if r.returncode != 0:
            die("hook %s does not apply" % name)
    else:
        run(["bash", path], cwd=tree,
            env=dict(os.environ, SEL4_REPO_ROOT=TOP,
                     SEL4_QEMU_VERSION=version))


def make_series(patches, tarball, version, work):
    tree = os.path.join(work, "qemu")
    log("extracting the pinned source into %s" % tree)
    extract(tarball, tree)
    run(["git", "init", "-q", tree])
    # no gc in the background: the next run removes this tree
    git(tree, "config", "gc.auto", "0")
    git(tree, "add", "-A", "-f")
    git(tree, "commit", "-q", "-m", "QEMU %s (pinned source)" % version)
    base = git(tree, "rev-parse", "HEAD", capture=True).strip()
    hooks = []
    for i, p in enumerate(patches, 1):
        for f in p["paths"]:
            dst = os.path.join(tree, f)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(os.path.join(TOP, f), dst)
        hooks = sorted(hooks + p["hooks"])
        for h in hooks:
            apply_hook(tree, h, version)
        git(tree, "add", "-A", "-f")
        if not git(tree, "status", "--porcelain", capture=True).strip():
            die("patch %d (%s) changes nothing" % (i, p["subject"]))
        msg = p["subject"] + "\n\n" + "\n".join(p["body"]) + \
            "\n\nSigned-off-by: %s\n" % AUTHOR
        msgfile = os.path.join(work, "msg")
        with open(msgfile, "w") as f:
            f.write(msg)
        git(tree, "commit", "-q", "-F", msgfile)
    return tree, base


def false_positives():
    """tests/checkpatch/false-positives.txt: [(message re, code re, why)],
    the findings of checkpatch.pl on our files that are not faults."""
    path = os.path.join(TOP, "tests", "checkpatch", "false-positives.txt")
    out = []
    if os.path.exists(path):
        for ln in open(path):
            if ln.strip() and not ln.startswith("#"):
                msg, code, why = ln.rstrip("\n").split("\t")
                out.append((re.compile(msg), re.compile(code), why))
    return out


def checkpatch(tree, patch_files):
    """Returns [(patch, errors, warnings, [findings], [excused])]: errors
    and warnings that false-positives.txt excuses are counted apart."""
    excuses = false_positives()
    results = []
    for pf in patch_files:
        r = subprocess.run(["perl", "scripts/checkpatch.pl", pf], cwd=tree,
                           text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if not re.search(r"total: \d+ errors, \d+ warnings", r.stdout):
            die("checkpatch.pl said nothing countable on %s:\n%s" %
                (pf, r.stdout[-2000:]))
        # a finding: its message line, "#N: FILE: path:line:", the code
        findings, excused = [], []
        lines = r.stdout.splitlines()
        for i, ln in enumerate(lines):
            if not ln.startswith(("ERROR:", "WARNING:")):
                continue
            code = lines[i + 2] if i + 2 < len(lines) else ""
            where = lines[i + 1] if i + 1 < len(lines) else ""
            m = re.match(r"#\d+: FILE: (\S+):", where)
            text = ln + (" (%s)" % m.group(1).rstrip(":") if m else "")
            why = [w for mre, cre, w in excuses
                   if mre.search(ln) and cre.search(code)]
            if why:
                excused.append(text + ": " + why[0])
            else:
                findings.append(text)
        errors = sum(f.startswith("ERROR:") for f in findings)
        results.append((os.path.basename(pf), errors,
                        len(findings) - errors, findings, excused))
    return results


def bench_excerpt():
    path = os.path.join(TOP, "bench", "results", "latest.md")
    if not os.path.exists(path):
        return ["(no bench/results/latest.md)"]
    keep, targets = [], False
    for ln in open(path).read().splitlines():
        if ln.startswith("Targets:"):
            targets = True
        elif targets and not ln.startswith("- "):
            targets = False
        if targets or ln.startswith(("Machine:", "uring / thread:")) or \
                ln.startswith(("| randread4k_qd32 |", "| iperf3_tcp1 |",
                               "| workload |", "|---")):
            keep.append(ln.replace("**", ""))
    return keep


def counted(findings):
    """[(patch file, finding)] as lines "  NNNN: finding", repeats counted;
    checkpatch's warning on new files gets its answer."""
    lines, seen = [], {}
    for name, f in findings:
        if f.startswith("WARNING: added, moved or deleted file(s)"):
            f += " (MAINTAINERS is updated by the last patch)"
        key = "  %s: %s" % (name[:4], f)
        if key not in seen:
            seen[key] = 0
            lines.append(key)
        seen[key] += 1
    return [k + (" (%d times)" % seen[k] if seen[k] > 1 else "")
            for k in lines]


def write_cover(out, patches, results, version):
    (cover,) = [f for f in os.listdir(out) if f.startswith("0000-")]
    path = os.path.join(out, cover)
    text = open(path).read()
    errors = sum(r[1] for r in results)
    warnings = sum(r[2] for r in results)
    blurb = [
        "On an seL4 system the virtio devices of a guest VM are emulated by",
        "QEMU in a Linux device VM: the seL4 VMM forwards each trapped MMIO",
        "or PCI config access as an RPC message over queues in shared memory,",
        "QEMU answers over the same queues, and a doorbell tells each side",
        "that there is work. This series adds that device model's pieces:",
        "",
    ]
    for i, p in enumerate(patches, 1):
        blurb.append("  %2d. %s" % (i, p["subject"]))
    blurb += [
        "",
        "-accel sel4 has no vCPUs. It serves the queues in one of four loops",
        "(loop=thread: a blocking thread, one message at a time, as the",
        "deployed accelerator does; loop=thread-batch: the same thread,",
        "batch= messages per pass; loop=aio: an AioContext fd handler;",
        "loop=uring, the default: the doorbell read is an io_uring request",
        "on the AioContext's ring), in batches, with one doorbell per batch.",
        "Everything read from the shared memory is validated: a hostile VMM",
        "gets error replies and counters, never a crash.",
        "",
        "The queue and transport code (include/sel4/, lib/, io/) is shared",
        "with the VMM simulator of the out-of-tree project and has no QEMU",
        "headers; it sits at the top of the tree as in the project's overlay.",
        "",
        "How it was tested",
        "-----------------",
        "Built from this series applied to QEMU %s (Debian's source" % version,
        "package, pinned by checksum) with --target-list=aarch64-softmmu and",
        "a device set of our machine, virt and virtio-pci. The project's",
        "tests run against the same files built into that QEMU (the",
        "project's overlay of them): unit, hostile-peer and stress tests",
        "of the queues; a simulated seL4 VMM driving QEMU (PCI enumeration,",
        "virtio-blk, -net, -console, -rng and 9p drivers) in every loop; a",
        "hostile VMM; fault tests (VMM or QEMU killed mid-I/O, full queues,",
        "restart); a Linux guest under TCG whose devices are served through",
        "sel4-vmm-proxy; an iotest with backup, snapshot and mirror. The same",
        "code was cross-built for arm64 and its tests ran under qemu-user.",
        "Every patch of the series builds (./run patches --check).",
        "",
        "Benchmarks (fio and iperf3 through the simulated seL4 path, every",
        "loop, against the limits; from the project's bench/results):",
        "",
    ]
    blurb += ["  " + ln for ln in bench_excerpt()]
    blurb += [
        "",
        "checkpatch.pl: %d errors, %d warnings" % (errors, warnings),
    ]
    blurb += counted([(r[0], m) for r in results for m in r[3]])
    excused = [(r[0], x) for r in results for x in r[4]]
    if excused:
        blurb += ["", "and %d findings that are not faults (the project's" %
                  len(excused),
                  "tests/checkpatch/false-positives.txt says why):"]
        blurb += counted(excused)
    text = text.replace("*** SUBJECT HERE ***", COVER_SUBJECT)
    text = text.replace("*** BLURB HERE ***", "\n".join(blurb))
    with open(path, "w") as f:
        f.write(text)


def build(tarball, version, patch_files, every_step):
    root = os.path.join(TOP, "build", "patches-build")
    src = os.path.join(root, "qemu-src")
    log("applying the series to a clean copy of QEMU %s (%s)" %
        (version, src))
    extract(tarball, src)
    env = dict(os.environ, SEL4_BUILD_ROOT=root, SEL4_QEMU_SRC_PREPARED="1",
               SEL4_QEMU_TARGETS="qemu-system-aarch64 qemu-img qemu-io")
    buildlog = os.path.join(root, "build.log")
    open(buildlog, "w").close()
    for i, pf in enumerate(patch_files, 1):
        with open(pf) as f:
            r = subprocess.run(["patch", "-p1", "--batch", "-s"], cwd=src,
                               stdin=f)
        if r.returncode != 0:
            die("%s does not apply" % os.path.basename(pf))
        if every_step or i == len(patch_files):
            log("build after %s (log: %s)" % (os.path.basename(pf),
                                               buildlog))
            with open(buildlog, "a") as lf:
                lf.write("=== after %s\n" % os.path.basename(pf))
                lf.flush()
                r = subprocess.run([os.path.join(QEMU_DIR, "build.sh")],
                                   env=env, stdout=lf, stderr=lf)
            if r.returncode != 0:
                die("the build fails after %s (see %s)" %
                    (os.path.basename(pf), buildlog))
            tap(True, "builds after %s" % os.path.basename(pf))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(TOP, "build", "patches"))
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--build", action="store_true")
    g.add_argument("--check", action="store_true")
    args = ap.parse_args()

    run([os.path.join(QEMU_DIR, "fetch.sh")])
    tarball, version = shell_lib(
        'load_selected && echo "$SRC_CACHE/$SEL_TARBALL" && '
        'echo "$SEL_VERSION"').split()
    patches = parse_series(os.path.join(QEMU_DIR, "series.list"))
    assign_files(patches, shell_lib("overlay_files").split())
    hooks = sorted(h for h in os.listdir(os.path.join(QEMU_DIR, "hooks"))
                   if h.endswith((".sh", ".patch")))
    listed = sorted(h for p in patches for h in p["hooks"])
    if hooks != listed:
        die("qemu/hooks has %s, qemu/series.list names %s" % (hooks, listed))

    work = os.path.join(TOP, "build", "patches-work")
    os.makedirs(work, exist_ok=True)
    tree, base = make_series(patches, tarball, version, work)
    shutil.rmtree(args.out, ignore_errors=True)
    git(tree, "format-patch", "-q", "--cover-letter", "--no-signature",
        "-o", args.out, base + "..HEAD")
    patch_files = sorted(os.path.join(args.out, f)
                         for f in os.listdir(args.out)
                         if not f.startswith("0000-"))
    results = checkpatch(tree, patch_files)
    write_cover(args.out, patches, results, version)
    for name, e, w, msgs, excused in results:
        tap(not e, "checkpatch %s: %d errors, %d warnings, %d excused" %
            (name, e, w, len(excused)))
        for m in msgs:
            print("# " + m, flush=True)
    errors = sum(r[1] for r in results)
    log("wrote %d patches and a cover letter to %s; checkpatch: %d errors, "
        "%d warnings" % (len(patch_files), args.out, errors,
                         sum(r[2] for r in results)))
    if args.build or args.check:
        build(tarball, version, patch_files, args.check)
    print("1..%d" % tap.count)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
