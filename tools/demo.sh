#!/usr/bin/env bash
# `make demo`: the main job on the bundled default.
#   1. prepare the test kernel (Debian's linux-source-6.1 with a livepatch
#      config; built once, about 4 minutes on 2 cores, then cached),
#   2. build a livepatch module from examples/cmdline-string.patch,
#   3. boot the kernel under QEMU, show /proc/cmdline, load the module, show
#      the patched /proc/cmdline, disable and unload it, show the original.
set -euo pipefail
cd "$(dirname "$0")/.."

KBUILD=.venv/bin/kbuild
PY=.venv/bin/python
OUT=${KBUILDER_DEMO_OUT:-.cache/demo}
PATCH=examples/cmdline-string.patch

step() { printf '\n==> %s\n' "$*"; }

step "kbuild testkernel   (first run: unpack + configure + build, ~4-6 min; then cached)"
mkdir -p "$OUT"
"$KBUILD" testkernel --json > "$OUT/testkernel.json"
read -r SRC CONFIG BZIMAGE < <("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["source"], d["config"], d["bzimage"])' "$OUT/testkernel.json")
echo "    source:  $SRC"
echo "    config:  $CONFIG"
echo "    kernel:  $BZIMAGE"

step "kbuild build --source \$SRC --config \$CONFIG $PATCH -o $OUT"
cat "$PATCH"
"$KBUILD" build --source "$SRC" --config "$CONFIG" "$PATCH" -o "$OUT"
MODULE=$OUT/livepatch-cmdline-string.ko

step "kbuild info $MODULE"
"$KBUILD" info "$MODULE"

step "boot under QEMU: /proc/cmdline before, with and after the livepatch"
"$PY" - "$BZIMAGE" "$MODULE" "$OUT/console.log" <<'PYEOF'
import sys
from pathlib import Path
from kbuilder.kernel import vm
from kbuilder.kernel.vm import Check, Disable, Load, Unload, WaitTransition

kernel, module, log = (Path(a) for a in sys.argv[1:])
name = vm.module_name(module)
show = "cat /proc/cmdline"
steps = [Check(show, True, name="original"), Load(module), WaitTransition(name),
         Check(show, True, name="patched"), Check("grep -q kbuilder=patched /proc/cmdline", True, name="check"),
         Disable(name), Unload(name), Check(show, True, name="unpatched")]
result = vm.run_steps(kernel, steps, log=log)
lines = result.boot.log.read_text(errors="replace").splitlines()
for i, line in enumerate(lines):
    for label, what in (("original", "before loading"), ("patched", f"with {module.name} loaded"),
                        ("unpatched", "after disable + rmmod")):
        if line.startswith(f"KBUILDER: {label}="):
            print(f"    {what:<40} /proc/cmdline: {lines[i - 1]}")
print(f"    guest result: {'ok' if result.ok else 'FAILED: ' + result.failure} (console log: {log})")
sys.exit(0 if result.ok else 1)
PYEOF
