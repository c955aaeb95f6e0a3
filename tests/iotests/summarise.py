#!/usr/bin/env python3
"""Summarise one log of QEMU's iotests `check` (plain output, not -tap):
the counts passed / not run / failed, the failures, and the tests not run
grouped by their reason.  Exit 1 when a test failed.

usage: summarise.py FORMAT LOG"""
import collections
import re
import sys

LINE = re.compile(r'^(\S+)\s+(pass|fail|not run)\s+\[[^]]*\]\s*'
                  r'(?:\[[^]]*\])?\s*\S*\s*(?:\(last: [^)]*\))?\s*(.*)$')


def main():
    fmt, path = sys.argv[1], sys.argv[2]
    status = {}
    reasons = collections.defaultdict(list)
    for line in open(path, encoding='utf-8', errors='replace'):
        # a test's progress line and its result share a line, split by \r
        m = LINE.match(line.rstrip('\n').split('\r')[-1])
        if not m:
            continue
        test, st, desc = m.groups()
        status[test] = st
        if st == 'not run':
            reasons[desc.strip() or '(no reason given)'].append(test)
    count = collections.Counter(status.values())
    failed = sorted(t for t, s in status.items() if s == 'fail')
    print(f'   {fmt}: {count["pass"]} passed, {count["not run"]} not run, '
          f'{count["fail"]} failed (of {len(status)})')
    if failed:
        print(f'   failed: {" ".join(failed)}')
    for why, tests in sorted(reasons.items(), key=lambda r: -len(r[1])):
        print(f'   not run ({len(tests)}): {why}: {" ".join(sorted(tests))}')
    return 1 if failed or not status else 0


if __name__ == '__main__':
    sys.exit(main())
