"""The kernel's own module signatures (Documentation/admin-guide/module-signing.rst).

A signed module is `ELF | PKCS#7 DER signature | struct module_signature
(12 bytes) | "~Module signature appended~\\n"`; kernels with
CONFIG_MODULE_SIG_FORCE (or module.sig_enforce=1) load only modules signed
by a key in their keyrings. `sign_module` runs the target tree's
`scripts/sign-file`, `signature_info` reads the trailer, `strip_signature`
gives the unsigned bytes (what the metadata's sha256 describes when the
module was signed after `kbuild build` wrote NAME.json).

This is the second layer of trust: the repository's Ed25519 index says the
file is the one the repository published; the module signature says the
kernel's keyring accepts it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kbuilder.errors import InputError, ToolchainError

MAGIC = b"~Module signature appended~\n"
_TRAILER = struct.Struct(">BBBBB3xI")    # algo, hash, id_type, signer_len, key_id_len, pad, sig_len
PKEY_ID_PKCS7 = 2
HASHES = ("sha256", "sha384", "sha512", "sha3-256", "sha3-384", "sha3-512")


@dataclass(frozen=True, slots=True)
class ModuleSignature:
    id_type: int
    signature_length: int
    unsigned_length: int          # bytes of the module before the signature

    @property
    def pkcs7(self) -> bool:
        return self.id_type == PKEY_ID_PKCS7


def signature_info(blob: bytes) -> ModuleSignature | None:
    """The appended signature's trailer, or None for an unsigned module.
    InputError when the magic is there but the trailer does not fit."""
    if not blob.endswith(MAGIC):
        return None
    end = len(blob) - len(MAGIC)
    if end < _TRAILER.size:
        raise InputError("module signature trailer is truncated")
    _algo, _hash, id_type, _signer, _keyid, sig_len = _TRAILER.unpack_from(blob, end - _TRAILER.size)
    start = end - _TRAILER.size - sig_len
    if sig_len == 0 or start < 4 or blob[:4] != b"\x7fELF":
        raise InputError(f"module signature trailer says {sig_len} signature bytes, which do not fit the file")
    return ModuleSignature(id_type, sig_len, start)


def strip_signature(blob: bytes) -> bytes:
    info = signature_info(blob)
    return blob if info is None else blob[:info.unsigned_length]


def sign_file_tool(kernel_tree: str | Path) -> Path:
    tool = Path(kernel_tree) / "scripts" / "sign-file"
    if not tool.is_file():
        raise ToolchainError(f"{tool} not found: build it in the kernel tree (make scripts; it needs libssl-dev)")
    return tool


def sign_module(module: str | Path, *, kernel_tree: str | Path | None = None, key: str, certificate: str | Path,
                hash_algo: str = "sha256", tool: str | Path | None = None) -> ModuleSignature:
    """Sign `module` in place with `tool` (default: the tree's
    scripts/sign-file). `key` is a PEM private key file or a PKCS#11 URI;
    `certificate` the X.509 (PEM or DER) the target kernel trusts. Refuses
    a module that is already signed."""
    if hash_algo not in HASHES:
        raise InputError(f"unknown module signature hash {hash_algo!r} (expected {', '.join(HASHES)})")
    module = Path(module)
    blob = module.read_bytes()
    if signature_info(blob) is not None:
        raise InputError("already signed (sign-file would append a second signature)", path=str(module))
    if not key.startswith("pkcs11:") and not Path(key).is_file():
        raise InputError("module signing key not found", path=key)
    if not Path(certificate).is_file():
        raise InputError("module signing certificate not found", path=str(certificate))
    if tool is not None:
        tool = Path(tool)
        if not tool.is_file():
            raise ToolchainError(f"{tool} not found (the kernel's scripts/sign-file)")
    elif kernel_tree is not None:
        tool = sign_file_tool(kernel_tree)
    else:
        raise InputError("sign_module needs the kernel tree or the sign-file tool")
    if shutil.which(str(tool)) is None and not tool.stat().st_mode & 0o111:
        raise ToolchainError(f"{tool} is not executable")
    proc = subprocess.run([str(tool), hash_algo, key, str(certificate), str(module)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ToolchainError(f"sign-file failed (exit {proc.returncode}): {detail[-1] if detail else 'no output'}")
    info = signature_info(module.read_bytes())
    if info is None:
        raise ToolchainError(f"sign-file exited 0 but {module} carries no signature")
    return info
