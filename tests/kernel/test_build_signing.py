"""`kbuild build --sign-key KEY --sign-cert CERT`: the module carries the
kernel's module signature (PKCS#7, made by the kernel's own sign-file), the
sha256 and size in NAME.json are those of the signed file, the repository
accepts it as signed, and the signed module still loads and patches.

The test kernel is built without CONFIG_MODULE_SIG, so its tree has no
sign-file: the test compiles scripts/sign-file.c of the same source (as a
CONFIG_MODULE_SIG build would) and passes it with --sign-file."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kbuilder.kernel import testkernel, vm
from kbuilder.repository.modsign import signature_info

pytestmark = pytest.mark.kernel

PATCH = Path(__file__).resolve().parents[2] / "examples" / "series" / "0001-cmdline.patch"
FIX1 = "grep -q fix1=nft /proc/cmdline"


def _run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))}: exit {proc.returncode}: {proc.stderr.strip()}"
    return proc


@pytest.fixture(scope="module")
def kernel() -> testkernel.TestKernel:
    from helpers import test_kernel_or_skip

    return test_kernel_or_skip()


@pytest.fixture
def signer(kernel: testkernel.TestKernel, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(sign-file, key, certificate): a sign-file built from the test
    kernel's source, and a fresh RSA key with a self-signed certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    tool = tmp_path / "sign-file"
    _run("gcc", "-O2", "-o", tool, kernel.source / "scripts" / "sign-file.c", "-lcrypto")
    key, cert = tmp_path / "signing_key.pem", tmp_path / "signing_key.x509"
    _run("openssl", "req", "-new", "-nodes", "-utf8", "-sha256", "-days", "1", "-batch", "-x509",
         "-subj", "/CN=kbuilder test module signing", "-newkey", "rsa:2048", "-keyout", key, "-outform", "DER",
         "-out", cert)
    return tool, key, cert


def test_built_module_is_signed_and_described_as_signed(kernel: testkernel.TestKernel, signer: tuple[Path, Path, Path],
                                                        tmp_path: Path) -> None:
    from helpers import kbuild_script

    tool, key, cert = signer
    out = tmp_path / "out"
    _run(kbuild_script(), "build", "--source", kernel.source, "--config", kernel.config_file, "-o", out,
         "--name", "livepatch-signed", "--sign-key", key, "--sign-cert", cert, "--sign-file", tool, PATCH)
    module = out / "livepatch-signed.ko"
    blob = module.read_bytes()
    info = signature_info(blob)
    assert info is not None and info.pkcs7 and info.signature_length > 200

    # NAME.json (the report, with the metadata) describes the signed file.
    report = json.loads((out / "livepatch-signed.json").read_text())
    sha = hashlib.sha256(blob).hexdigest()
    assert report["module"]["sha256"] == sha
    assert report["metadata"]["module"]["sha256"] == sha and report["metadata"]["module"]["size"] == len(blob)
    signature = report["module"]["signature"]
    assert signature["pkcs7"] and signature["hash"] == "sha256"
    assert signature["unsigned_sha256"] == hashlib.sha256(blob[:info.unsigned_length]).hexdigest()

    # The PKCS#7 signature verifies against the certificate over the unsigned bytes.
    (tmp_path / "unsigned.ko").write_bytes(blob[:info.unsigned_length])
    (tmp_path / "sig.p7").write_bytes(blob[info.unsigned_length:info.unsigned_length + info.signature_length])
    _run("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", tmp_path / "sig.p7",
         "-content", tmp_path / "unsigned.ko", "-certfile", cert, "-nointern", "-noverify", "-out", "/dev/null")

    # The repository takes NAME.json as is and records the kernel signature.
    repo, repo_key = tmp_path / "repo", tmp_path / "repo.key"
    _run(kbuild_script(), "repo", "keygen", "--out", repo_key)
    _run(kbuild_script(), "repo", "init", repo, "--key", repo_key)
    _run(kbuild_script(), "repo", "add", repo, module, out / "livepatch-signed.json", "--channel", "dev")
    listed = json.loads(_run(kbuild_script(), "repo", "list", repo, "--json").stdout)
    assert [(a["module"]["sha256"], a["module"]["kernel_signature"]) for a in listed["artifacts"]] == [(sha, True)]

    # A kernel without CONFIG_MODULE_SIG ignores the signature: the module loads and patches.
    result = vm.test_load(kernel.bzimage, [module], FIX1, log=tmp_path / "console.log")
    assert result.ok, f"{result.failure} (log: {result.log})"


def test_missing_sign_file_is_one_line_before_any_build(kernel: testkernel.TestKernel,
                                                        signer: tuple[Path, Path, Path], tmp_path: Path) -> None:
    from helpers import kbuild_script

    _tool, key, cert = signer
    proc = subprocess.run([str(kbuild_script()), "build", "--source", str(kernel.source), "--config",
                           str(kernel.config_file), "-o", str(tmp_path), "--sign-key", str(key), "--sign-cert",
                           str(cert), str(PATCH)], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("kbuild: error: no scripts/sign-file in the target kernel ("), lines
    assert "give its path with --sign-file" in lines[-1] and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.ko"))
