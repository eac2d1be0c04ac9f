"""The kernel's appended module signature."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from kbuilder.errors import InputError, ToolchainError
from kbuilder.repository.modsign import MAGIC, sign_module, signature_info, strip_signature

ELF = b"\x7fELF" + b"\0" * 60


def _signed(body: bytes, sig: bytes = b"\x30\x82" + b"s" * 30) -> bytes:
    return body + sig + struct.pack(">BBBBB3xI", 0, 0, 2, 0, 0, len(sig)) + MAGIC


def test_trailer() -> None:
    assert signature_info(ELF) is None
    blob = _signed(ELF)
    info = signature_info(blob)
    assert info is not None and info.pkcs7 and info.signature_length == 32 and info.unsigned_length == len(ELF)
    assert strip_signature(blob) == ELF and strip_signature(ELF) == ELF
    with pytest.raises(InputError, match="do not fit"):
        signature_info(ELF[:8] + struct.pack(">BBBBB3xI", 0, 0, 2, 0, 0, 4096) + MAGIC)


def test_sign_module_runs_the_trees_sign_file(tmp_path: Path) -> None:
    tree = tmp_path / "linux"
    (tree / "scripts").mkdir(parents=True)
    tool = tree / "scripts/sign-file"
    tool.write_text("#!/bin/sh\n"
                    "printf '%s ' \"$@\" > \"$4.args\"\n"
                    "printf '0123456789\\000\\000\\002\\000\\000\\000\\000\\000\\000\\000\\000\\012"
                    "~Module signature appended~\\n' >> \"$4\"\n")
    tool.chmod(0o755)
    key, cert, module = tmp_path / "k.pem", tmp_path / "c.x509", tmp_path / "m.ko"
    key.write_text("k")
    cert.write_text("c")
    module.write_bytes(ELF)
    info = sign_module(module, kernel_tree=tree, key=str(key), certificate=cert)
    assert info.signature_length == 10 and info.unsigned_length == len(ELF)
    assert (tmp_path / "m.ko.args").read_text().split() == ["sha256", str(key), str(cert), str(module)]
    with pytest.raises(InputError, match="already signed"):
        sign_module(module, kernel_tree=tree, key=str(key), certificate=cert)
    with pytest.raises(ToolchainError, match="scripts/sign-file not found"):
        sign_module(tmp_path / "k.pem", kernel_tree=tmp_path, key=str(key), certificate=cert)
    with pytest.raises(InputError, match="unknown module signature hash"):
        sign_module(module, kernel_tree=tree, key=str(key), certificate=cert, hash_algo="md5")
