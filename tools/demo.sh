#!/usr/bin/env bash
# `make demo`: run kbuilder on the bundled example fixtures/new-function
# (widget_reset() starts calling a new helper).  Compiles both sides with
# kernel-like flags, inspects the original object and, once `kbuild diff`
# exists, diffs the pair.  A kernel build and QEMU boot will replace this.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
KBUILD=.venv/bin/kbuild
FIXTURE=new-function
CACHE_DIR=.cache/test-objects
OUT_DIR=.cache/demo

step() { printf '\n==> %s\n' "$*"; }

step "compiling fixtures/$FIXTURE/{orig,patched}.c (cache: $CACHE_DIR)"
mapfile -t objs < <("$PY" -c '
import sys
sys.path.insert(0, "tests")
from fixture_build import compile_fixture
for path in compile_fixture(sys.argv[1], sys.argv[2]):
    print(path)
' "$FIXTURE" "$CACHE_DIR")
ORIG=${objs[0]}
PATCHED=${objs[1]}
echo "original: $ORIG"
echo "patched:  $PATCHED"

step "kbuild inspect $ORIG"
"$KBUILD" inspect "$ORIG"

step "kbuild diff $ORIG $PATCHED -o $OUT_DIR/out.o --parent-symbols $ORIG --explain"
if ! "$KBUILD" diff --help >/dev/null 2>&1; then
    echo "kbuild diff: not available yet"
    exit 0
fi
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR/out.o"
rc=0
"$KBUILD" diff "$ORIG" "$PATCHED" -o "$OUT_DIR/out.o" --parent-symbols "$ORIG" --explain || rc=$?
case $rc in
    0) echo "kbuild diff: exit 0, output written to $OUT_DIR/out.o" ;;
    2) echo "kbuild diff: exit 2, the change cannot be live-patched" ;;
    3) echo "kbuild diff: exit 3, no functional change (nothing written)" ;;
    *) echo "kbuild diff: failed with exit $rc" >&2; exit "$rc" ;;
esac

if [[ -f $OUT_DIR/out.o ]]; then
    step "kbuild inspect $OUT_DIR/out.o"
    "$KBUILD" inspect "$OUT_DIR/out.o"
fi
