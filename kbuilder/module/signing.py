"""Signing a built livepatch module for kernels that check module signatures
(CONFIG_MODULE_SIG_FORCE, or module.sig_enforce=1 / lockdown under secure
boot), with the target kernel's own `scripts/sign-file`
(kbuilder.repository.modsign).

`kbuild build --sign-key KEY --sign-cert CERT` signs the module as the last
step, after the metadata is embedded (the signature covers it); the sha256
and size in NAME.json and in the report are those of the signed file, which
is what gets published and loaded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kbuilder.errors import InputError, ToolchainError
from kbuilder.repository.modsign import HASHES, sign_module, signature_info

SIGN_FILE = Path("scripts/sign-file")


@dataclass(frozen=True, slots=True)
class Signing:
    """How to sign: `key` is a PEM private key file or a `pkcs11:` URI,
    `certificate` the X.509 certificate (PEM or DER) in the target kernel's
    keyring; `tool` the sign-file program (default: the target's)."""

    key: str
    certificate: Path
    hash_algo: str = "sha256"
    tool: Path | None = None


def check(signing: Signing) -> None:
    """Refuse bad signing inputs before the (long) build starts."""
    if signing.hash_algo not in HASHES:
        raise InputError(f"unknown module signature hash {signing.hash_algo!r} (expected {', '.join(HASHES)})")
    if not signing.key.startswith("pkcs11:") and not Path(signing.key).is_file():
        raise InputError("module signing key not found", path=signing.key)
    if not Path(signing.certificate).is_file():
        raise InputError("module signing certificate not found", path=str(signing.certificate))
    if signing.tool is not None and not Path(signing.tool).is_file():
        raise InputError("sign-file program not found", path=str(signing.tool))


def find_tool(signing: Signing, trees: list[Path]) -> Path:
    """The sign-file to use: the given one, else the first of the target's
    trees (its build directory, then its source) that has one. A kernel
    built with CONFIG_MODULE_SIG has it in its build directory; Debian's
    linux-headers packages ship it too."""
    if signing.tool is not None:
        return Path(signing.tool)
    for tree in trees:
        if (tree / SIGN_FILE).is_file():
            return tree / SIGN_FILE
    where = " or ".join(str(tree / SIGN_FILE) for tree in trees)
    raise ToolchainError(f"no {SIGN_FILE} in the target kernel ({where}): it is built with CONFIG_MODULE_SIG "
                         "(or `make scripts` with it); give its path with --sign-file")


def sign_blob(blob: bytes, signing: Signing, tool: Path, scratch: Path) -> bytes:
    """The signed bytes of the module `blob` (signed in the file `scratch`,
    which is left holding them)."""
    scratch.parent.mkdir(parents=True, exist_ok=True)
    scratch.write_bytes(blob)
    sign_module(scratch, key=signing.key, certificate=signing.certificate, hash_algo=signing.hash_algo, tool=tool)
    signed = scratch.read_bytes()
    info = signature_info(signed)
    if info is None or info.unsigned_length != len(blob) or signed[:len(blob)] != blob:
        raise ToolchainError(f"{tool} changed the module instead of appending a signature to it")
    return signed


def record_signature(report: dict[str, Any], signed: bytes, signing: Signing, tool: Path) -> None:
    """Make the report and its metadata describe the signed file."""
    sha = hashlib.sha256(signed).hexdigest()
    info = signature_info(signed)
    assert info is not None
    report["module"]["sha256"] = sha
    report["module"]["signature"] = {"hash": signing.hash_algo, "certificate": str(signing.certificate),
                                     "tool": str(tool), "pkcs7": info.pkcs7,
                                     "signature_bytes": info.signature_length,
                                     "unsigned_sha256": hashlib.sha256(signed[:info.unsigned_length]).hexdigest()}
    metadata = report.get("metadata")
    if isinstance(metadata, dict):
        metadata["module"]["sha256"] = sha
        metadata["module"]["size"] = len(signed)
