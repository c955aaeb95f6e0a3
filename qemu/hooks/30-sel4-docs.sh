#!/usr/bin/env bash
# Hook: docs/system/arm/virt-sel4.rst (ours, from the overlay) in the arm
# targets' board list, after `arm/virt`, once the file is in the tree.
# Idempotent; a missing anchor fails.
set -euo pipefail

[ -f docs/system/arm/virt-sel4.rst ] || exit 0
f=docs/system/target-arm.rst
grep -qxF '   arm/virt-sel4' "$f" && exit 0
grep -qxF '   arm/virt' "$f" || { echo "30-sel4-docs.sh: $f: no '   arm/virt' line" >&2; exit 1; }
sed -i 's|^   arm/virt$|&\n   arm/virt-sel4|' "$f"
grep -qxF '   arm/virt-sel4' "$f" || { echo "30-sel4-docs.sh: $f: edit did not apply" >&2; exit 1; }
