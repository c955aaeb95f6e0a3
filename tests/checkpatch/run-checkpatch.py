#!/usr/bin/env python3
"""QEMU's scripts/checkpatch.pl on our C files (accel/ hw/ io/ lib/
include/), TAP: one line per file.  A file fails on any ERROR or WARNING
that false-positives.txt does not excuse; excused findings are counted
in the line's description.

usage: run-checkpatch.py SOURCE_ROOT CHECKPATCH_PL
"""
import os
import re
import subprocess
import sys

DIRS = ['accel', 'hw', 'io', 'lib', 'include']


def load_excuses(path):
    excuses = []
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith('#'):
                continue
            msg, code, why = line.rstrip('\n').split('\t')
            excuses.append((re.compile(msg), re.compile(code), why))
    return excuses


def findings(checkpatch, root, rel):
    """[(kind, message, quoted code line)] of one file."""
    run = subprocess.run(['perl', checkpatch, '--no-tree', '--no-color',
                          '-f', rel], cwd=root, capture_output=True,
                         text=True)
    found = []
    lines = run.stdout.splitlines()
    if not any(x.startswith('total: ') for x in lines):
        return [('ERROR', 'checkpatch.pl did not run: ' +
                 run.stderr.strip(), '')]
    for i, line in enumerate(lines):
        m = re.match(r'^(ERROR|WARNING): (.*)$', line)
        if not m:
            continue
        code = next((x for x in lines[i + 1:i + 4] if x.startswith('+')), '')
        found.append((m.group(1), m.group(2), code))
    return found


def main():
    root, checkpatch = sys.argv[1], os.path.abspath(sys.argv[2])
    here = os.path.dirname(os.path.abspath(__file__))
    excuses = load_excuses(os.path.join(here, 'false-positives.txt'))
    files = sorted(os.path.relpath(os.path.join(d, f), root)
                   for top in DIRS
                   for d, _, names in os.walk(os.path.join(root, top))
                   for f in names if f.endswith(('.c', '.h')))
    print('1..%d' % len(files))
    failed = 0
    for n, rel in enumerate(files, 1):
        bad, excused = [], 0
        for kind, msg, code in findings(checkpatch, root, rel):
            if any(m.search(msg) and c.search(code) for m, c, _ in excuses):
                excused += 1
            else:
                bad.append('%s: %s: %s' % (kind, msg, code[1:].strip()))
        note = ' (%d known false positives)' % excused if excused else ''
        if bad:
            failed += 1
            print('not ok %d - %s%s' % (n, rel, note))
            for b in bad:
                print('#   ' + b)
        else:
            print('ok %d - %s%s' % (n, rel, note))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
