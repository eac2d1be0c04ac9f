#!/usr/bin/env bash
# Check that the system tools kbuilder needs are present, and install the
# Debian packages that provide them when something is missing.  Called by
# `make deps` with:
#   APT_PACKAGES    Debian packages the project needs (space separated)
#   REQUIRED_TOOLS  commands that must be on PATH
#   PYTHON          interpreter the virtual environment will be made from
# Installing needs root (as on the project's machines and in CI); otherwise
# the script says what to install and fails.
set -euo pipefail

read -r -a packages <<< "${APT_PACKAGES:-gcc binutils make}"
read -r -a tools <<< "${REQUIRED_TOOLS:-gcc readelf ld nm make}"
python=${PYTHON:-python3}

missing_tools=()
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing_tools+=("$tool")
done

wanted=()
if command -v dpkg-query >/dev/null 2>&1; then
    # On Debian, every listed package must be installed, not only the tools.
    for pkg in "${packages[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [[ $status == *"install ok installed"* ]] || wanted+=("$pkg")
    done
    # Debian's own python3 needs python3-venv for `python3 -m venv`.
    if command -v "$python" >/dev/null 2>&1 && ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
        wanted+=("python3-venv")
    fi
elif ((${#missing_tools[@]})); then
    wanted=("${packages[@]}")
fi

if ((${#missing_tools[@]} == 0 && ${#wanted[@]} == 0)); then
    exit 0
fi
((${#wanted[@]})) || wanted=("${packages[@]}")

echo "--> missing: ${missing_tools[*]:-} packages: ${wanted[*]}"
if [[ $(id -u) -ne 0 ]]; then
    echo "deps: not root; install these first: sudo apt-get install ${wanted[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: no apt-get on this machine; install the equivalent of: ${wanted[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${wanted[@]}"

for tool in "${tools[@]}"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "deps: '$tool' is still missing after installing ${wanted[*]}" >&2
        exit 1
    fi
done
