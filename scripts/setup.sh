#!/usr/bin/env bash
# Set up everything the tests need; idempotent, safe to re-run.
#   1. Debian packages for the libvirt checks (tests/libvirt_checker.py) and the
#      boot test's guest (tests/guest.py), via apt-get, only when some are missing
#      (root, or sudo when not root).
#   2. .venv made with Debian's python3 (/usr/bin/python3, which python3-libvirt
#      brings), else the python3 on PATH (PYTHON=... to choose another, >= 3.11),
#      with the project installed editable plus its `test`, `server` and `libvirt`
#      extras (an existing .venv is kept unless PYTHON names another python).
#      Debian builds its python with profile-guided optimization and LTO, linked
#      statically: a compile takes ~14% less CPU on it than on a python built with
#      ./configure's defaults, as pyenv builds one (README, Speed). The libvirt
#      binding is built from PyPI's libvirt-python against the host's libvirt
#      (libvirt-dev, pkg-config, gcc, python3-dev) rather
#      than taken from Debian's python3-libvirt: that one is built for
#      /usr/bin/python3 alone, and the venv's python may be another (pyenv, a newer
#      python), and system site packages would let Debian's other modules into it.
#      pip runs again only when pyproject.toml or the python changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(
    libvirt0                    # libvirt, its RelaxNG schemas (domain.rng)
    libvirt-clients             # virsh, virt-xml-validate
    libvirt-daemon-driver-qemu  # the QEMU driver, embedded in-process
    qemu-system-x86             # the QEMU whose capabilities libvirt probes
    libxml2-utils               # xmllint (not pulled in without recommends)
    python3-libvirt             # libvirt for Debian's /usr/bin/python3
    ovmf                        # UEFI firmware descriptors for firmware='efi'
    swtpm                       # emulated TPM
    swtpm-tools                 # swtpm_setup: libvirt probes TPM 2.0 support with it
    osinfo-db                   # guest OS data for 'os ID' and 'recommended'
    virtinst                    # virt-install, the parity test's reference (tests/test_parity.py)
    linux-image-cloud-amd64     # the boot test's guest kernel (tests/guest.py)
    busybox-static              # ... and its userland, in an initramfs built there
    libvirt-dev                 # to build libvirt-python for the venv (--connect)
    pkg-config                  # ... which finds libvirt with it
    gcc                         # ... and compiles it
    python3-dev                 # ... against Python.h (of Debian's python3)
    openssl                     # certificates made at test time (tests/server/test_access.py)
)
PYTHON=${PYTHON:-}
DEBIAN_PYTHON=/usr/bin/python3
export DEBIAN_FRONTEND=noninteractive PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
# Debian's own python3 has venv's ensurepip in a separate package.
if { [ -z "$PYTHON" ] || [ "$(command -v "$PYTHON")" = "$DEBIAN_PYTHON" ]; } \
        && ! "$DEBIAN_PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    installed python3-venv || missing+=(python3-venv)
fi

if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: missing packages ${missing[*]}, and no apt-get to install them" >&2
        exit 1
    fi
    SUDO=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
        SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive)
    fi
    echo "setup: apt-get install ${missing[*]}" >&2
    "${SUDO[@]}" apt-get update -q </dev/null
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 \
        "${missing[@]}" </dev/null
fi

py_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
# The python a venv was made with (pyvenv.cfg's 'executable'), resolved.
made_with() { sed -n 's/^executable = //p' "$1/pyvenv.cfg" 2>/dev/null | xargs -r realpath; }
resolved() { "$1" -c 'import os, sys; print(os.path.realpath(sys.executable))'; }
asked=${PYTHON:-}
if [ -z "$PYTHON" ]; then  # an older Debian's python3 is too old: the one on PATH
    if py_ok "$DEBIAN_PYTHON"; then PYTHON=$DEBIAN_PYTHON; else PYTHON=python3; fi
fi
if ! py_ok .venv/bin/python \
        || { [ -n "$asked" ] && [ "$(made_with .venv)" != "$(resolved "$PYTHON")" ]; }; then
    py_ok "$PYTHON" || { echo "setup: $PYTHON is not a python >= 3.11" >&2; exit 1; }
    rm -rf .venv
    echo "setup: creating .venv with $(command -v "$PYTHON")" >&2
    "$PYTHON" -m venv .venv
fi

stamp=$( { sha256sum pyproject.toml; .venv/bin/python -VV; } | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.virtuned-setup 2>/dev/null || true)" != "$stamp" ]; then
    echo "setup: pip install -e '.[test,server,libvirt,fuzz]'" >&2
    .venv/bin/python -m pip install -q -e '.[test,server,libvirt,fuzz]' </dev/null
    echo "$stamp" > .venv/.virtuned-setup
fi
