#!/usr/bin/env python3
"""Summarise one log of QEMU's iotests `check` (plain output, not -tap):
the counts passed / not run / failed, the failures, and the tests not run
grouped by their reason.  Exit 1 when a test failed.

usage: summarise.py FORMAT LOG [RETRY_LOG]
       summarise.py --failed FORMAT LOG    (the failed tests' names)

RETRY_LOG: the failed tests run once more, alone.  One that passes there
counts as passed and is named as such: the group run's own deadlines
(e.g. a job's wait=5.0) can run out on a loaded 2-core machine.  The
summary always says which passed only when run again."""
import collections
import re
import sys

LINE = re.compile(r'^(\S+)\s+(pass|fail|not run)\s+\[[^]]*\]\s*'
                  r'(?:\[[^]]*\])?\s*\S*\s*(?:\(last: [^)]*\))?\s*(.*)$')


def parse(path):
    """{test: status}, {reason: [tests not run]}"""
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
    return status, reasons


def main():
    if sys.argv[1] == '--failed':
        status, _ = parse(sys.argv[3])
        print(' '.join(sorted(t for t, s in status.items() if s == 'fail')))
        return 0
    fmt, path = sys.argv[1], sys.argv[2]
    status, reasons = parse(path)
    again = []
    if len(sys.argv) > 3:
        retry, _ = parse(sys.argv[3])
        again = sorted(t for t, s in status.items()
                       if s == 'fail' and retry.get(t) == 'pass')
        for t in again:
            status[t] = 'pass'
    count = collections.Counter(status.values())
    failed = sorted(t for t, s in status.items() if s == 'fail')
    print(f'   {fmt}: {count["pass"]} passed, {count["not run"]} not run, '
          f'{count["fail"]} failed (of {len(status)})')
    if again:
        print(f'   passed when run again alone ({len(again)}), having failed '
              f'in the group run: {" ".join(again)}')
    if failed:
        print(f'   failed: {" ".join(failed)}')
    for why, tests in sorted(reasons.items(), key=lambda r: -len(r[1])):
        print(f'   not run ({len(tests)}): {why}: {" ".join(sorted(tests))}')
    return 1 if failed or not status else 0


if __name__ == '__main__':
    sys.exit(main())
