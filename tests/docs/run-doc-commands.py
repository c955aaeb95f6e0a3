#!/usr/bin/env python3
"""Runs every command block of the given markdown files; TAP output.

usage: run-doc-commands.py SOURCE_ROOT QEMU BUILD_DIR DOC.md...

The convention of docs/*.md: a fenced block tagged ```sh is commands, and
is run here; other blocks (```text output, ```ini files, ```json, ```c) are
not commands.  A fenced block without a tag, or tagged bash/shell/console,
is an error, so that no command escapes.  A ```sh-device-vm block is
commands that need the seL4 device VM (UIO, a running systemd): reported
as a skipped test, with its line.  The blocks of one document run
in order, each with bash -euo pipefail in SOURCE_ROOT; variables a block
exports reach the next blocks of that document.  QEMU, BUILD (the meson
build dir) and TMPDIR (a fresh directory, removed afterwards) are set
beforehand: the documents' first block defaults them with ${QEMU:-...},
so they run the same by hand from the repository's root.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^```(\S*)\s*$")
TIMEOUT_S = 240


def blocks(path):
    """(line, tag, text) of each fenced block."""
    out, tag, start, lines = [], None, 0, []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = FENCE.match(line.rstrip("\n"))
            if tag is None and m:
                tag, start, lines = m.group(1), n, []
            elif tag is not None and line.rstrip("\n") == "```":
                out.append((start, tag, "".join(lines)))
                tag = None
            elif tag is not None:
                lines.append(line)
    return out


def main():
    src, qemu, build, docs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    n = failed = 0

    def ok(cond, what):
        nonlocal n, failed
        n += 1
        failed += not cond
        print(("ok" if cond else "not ok") + f" {n} - {what}", flush=True)

    for doc in docs:
        rel = os.path.relpath(doc, src)
        tmp = tempfile.mkdtemp(prefix="doc-commands-")
        envf = os.path.join(tmp, ".exports")
        env = dict(os.environ, QEMU=qemu, BUILD=build, TMPDIR=tmp)
        found = blocks(doc)
        ok(any(t == "sh" for _, t, _ in found), f"{rel}: has command blocks")
        for line, tag, text in found:
            if tag == "sh-device-vm":
                ok(True, f"{rel}:{line}: # SKIP needs the seL4 device VM")
                continue
            if tag != "sh":
                ok(tag not in ("", "bash", "shell", "console"),
                   f"{rel}:{line}: a ```{tag} block is not a command")
                continue
            script = (f'[ -f "{envf}" ] && . "{envf}"\n'
                      "set -euo pipefail\n" + text +
                      f'\nexport -p > "{envf}"\n')
            try:
                r = subprocess.run(["bash", "-c", script], cwd=src, env=env,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True,
                                   timeout=TIMEOUT_S)
                status, output = r.returncode, r.stdout
            except subprocess.TimeoutExpired as e:
                status, output = "timeout", str(e.output or "")
            first = text.strip().splitlines()[0]
            ok(status == 0, f"{rel}:{line}: {first} (exit {status})")
            if status != 0:
                for out in output.splitlines()[-30:]:
                    print(f"#   {out}")
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
