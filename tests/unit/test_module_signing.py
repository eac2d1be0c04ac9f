"""kbuilder.module.signing without a kernel: input checks, finding
sign-file, and what the report says after signing (a fake sign-file appends
a well-formed trailer; tests/kernel/test_build_signing.py uses the real one)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kbuilder.errors import InputError, ToolchainError
from kbuilder.module import signing
from kbuilder.module.signing import Signing

ELF = b"\x7fELF" + b"\0" * 60
# Appends 10 signature bytes and the trailer (id_type 2: PKCS#7, length 10).
FAKE_SIGN_FILE = ("#!/bin/sh\n"
                  "printf '0123456789\\000\\000\\002\\000\\000\\000\\000\\000\\000\\000\\000\\012"
                  "~Module signature appended~\\n' >> \"$4\"\n")


def _files(tmp_path: Path, tool_text: str = FAKE_SIGN_FILE) -> Signing:
    key, cert, tool = tmp_path / "k.pem", tmp_path / "c.x509", tmp_path / "sign-file"
    key.write_text("k")
    cert.write_text("c")
    tool.write_text(tool_text)
    tool.chmod(0o755)
    return Signing(str(key), cert, "sha256", tool)


def test_inputs_are_checked_before_the_build(tmp_path: Path) -> None:
    good = _files(tmp_path)
    signing.check(good)
    signing.check(Signing("pkcs11:token=kernel", good.certificate))   # a token URI is not a file
    with pytest.raises(InputError, match="signing key not found"):
        signing.check(Signing(str(tmp_path / "nope.pem"), good.certificate))
    with pytest.raises(InputError, match="certificate not found"):
        signing.check(Signing(good.key, tmp_path / "nope.x509"))
    with pytest.raises(InputError, match="unknown module signature hash 'md5'"):
        signing.check(Signing(good.key, good.certificate, "md5"))
    with pytest.raises(InputError, match="sign-file program not found"):
        signing.check(Signing(good.key, good.certificate, tool=tmp_path / "nope"))


def test_sign_file_is_found_in_the_build_tree_first(tmp_path: Path) -> None:
    obj, src = tmp_path / "obj", tmp_path / "src"
    plain = Signing("k", tmp_path / "c")
    with pytest.raises(ToolchainError, match=r"no scripts/sign-file in the target kernel .*--sign-file"):
        signing.find_tool(plain, [obj, src])
    (src / "scripts").mkdir(parents=True)
    (src / "scripts/sign-file").write_text("")
    assert signing.find_tool(plain, [obj, src]) == src / "scripts/sign-file"
    (obj / "scripts").mkdir(parents=True)
    (obj / "scripts/sign-file").write_text("")
    assert signing.find_tool(plain, [obj, src]) == obj / "scripts/sign-file"
    given = Signing("k", tmp_path / "c", tool=tmp_path / "mine")
    assert signing.find_tool(given, [obj, src]) == tmp_path / "mine"


def test_the_report_describes_the_signed_file(tmp_path: Path) -> None:
    how = _files(tmp_path)
    assert how.tool is not None
    signed = signing.sign_blob(ELF, how, how.tool, tmp_path / "work" / "m.ko")
    assert signed.startswith(ELF) and signed.endswith(b"~Module signature appended~\n")
    report = {"module": {"sha256": hashlib.sha256(ELF).hexdigest()},
              "metadata": {"module": {"sha256": hashlib.sha256(ELF).hexdigest(), "size": len(ELF)}}}
    signing.record_signature(report, signed, how, how.tool)
    sha = hashlib.sha256(signed).hexdigest()
    assert report["module"]["sha256"] == sha
    assert report["metadata"]["module"] == {"sha256": sha, "size": len(signed)}
    assert report["module"]["signature"]["unsigned_sha256"] == hashlib.sha256(ELF).hexdigest()
    assert report["module"]["signature"]["pkcs7"] and report["module"]["signature"]["signature_bytes"] == 10


def test_a_sign_file_that_rewrites_the_module_is_refused(tmp_path: Path) -> None:
    # Same length, one byte changed, then a well-formed signature.
    how = _files(tmp_path, "#!/bin/sh\n{ printf '\\177ELFX'; head -c 59 /dev/zero; } > \"$4\"\n"
                 + FAKE_SIGN_FILE.split("\n", 1)[1])
    assert how.tool is not None
    with pytest.raises(ToolchainError, match="changed the module instead of appending a signature"):
        signing.sign_blob(ELF, how, how.tool, tmp_path / "m.ko")
