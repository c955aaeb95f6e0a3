#!/usr/bin/env python3
"""Summarise meson testlog.json files: one line per test executable and
one closing line "N passed, N failed, N skipped" over every TAP case.

A test executable that failed without reporting a failing case (a crash,
a timeout) counts as one failure of its own, so nothing is hidden."""
import json
import re
import sys

passed = failed = skipped = 0
for build in sys.argv[1:]:
    try:
        lines = open(f"{build}/meson-logs/testlog.json").read().splitlines()
    except OSError as e:
        print(f"{build}: no test log ({e.strerror})")
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        out = t.get("stdout") or ""
        ok = len(re.findall(r"^ok \d+", out, re.M))
        skip = len(re.findall(r"^ok \d+.*# SKIP", out, re.M))
        bad = len(re.findall(r"^not ok \d+", out, re.M))
        result = t["result"]
        if result not in ("OK", "EXPECTEDFAIL", "SKIP") and bad == 0:
            bad = 1
        passed += ok - skip
        skipped += skip
        failed += bad
        print(f"  {build:12} {t['name']:20} {result:8} "
              f"{ok - skip} passed, {bad} failed, {skip} skipped "
              f"({t['duration']:.1f}s)")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
