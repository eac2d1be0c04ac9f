"""Keys, key ids and the detached signature file."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from kbuilder.errors import InputError
from kbuilder.repository.errors import BadSignature, UnknownKey
from kbuilder.repository.keys import (
    generate,
    load_private,
    load_public,
    parse_public,
    parse_signature_file,
    signature_file,
    verify_signed,
    write_keypair,
)


def test_keypair_files_round_trip(tmp_path: Path) -> None:
    key = generate()
    pub = write_keypair(key, tmp_path / "k.key")
    assert pub == tmp_path / "k.key.pub"
    assert os.stat(tmp_path / "k.key").st_mode & 0o777 == 0o600
    assert (tmp_path / "k.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_private(tmp_path / "k.key")
    assert again.public == key.public
    assert load_public(str(pub)) == key.public
    assert load_public(key.public.text) == key.public
    assert len(key.public.keyid) == 16
    with pytest.raises(InputError, match="already exists"):
        write_keypair(generate(), tmp_path / "k.key")


def test_pem_public_key_is_accepted(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = generate()
    pem = key._private.public_key().public_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert parse_public(pem) == key.public


@pytest.mark.parametrize("text, message", [
    ("ed25519:AAAA", "base64 of 32 bytes"),
    ("ed25519:!!!", "base64 of 32 bytes"),
    ("ssh-ed25519 AAAA", "a public key is"),
])
def test_bad_public_keys(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_public(text)


def test_not_an_ed25519_private_key(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ec.key").write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    with pytest.raises(InputError, match="not an Ed25519 private key"):
        load_private(tmp_path / "ec.key")
    with pytest.raises(InputError, match="not found"):
        load_private(tmp_path / "missing.key")


def test_verify_signed() -> None:
    key, other = generate(), generate()
    data = b'{"format":"x"}'
    sig = signature_file([(key.public.keyid, key.sign(data))])
    assert verify_signed(data, sig, [other.public, key.public], where="i", sig_where="s") == key.public
    with pytest.raises(BadSignature, match="does not match its signature"):
        verify_signed(data + b" ", sig, [key.public], where="i", sig_where="s")
    with pytest.raises(UnknownKey, match=f"signed by key {key.public.keyid}, which is not pinned"):
        verify_signed(data, sig, [other.public], where="i", sig_where="s")
    # A second signature (the previous index's) does not hurt.
    both = signature_file([(key.public.keyid, key.sign(b"new")), (key.public.keyid, key.sign(data))])
    assert verify_signed(data, both, [key.public], where="i", sig_where="s") == key.public


@pytest.mark.parametrize("blob, message", [
    (b"not json", "not JSON"),
    (b'{"format":"other","signatures":[]}', "format is not"),
    (b'{"format":"kbuilder-repo-signature/1","signatures":[]}', "no signatures"),
    (b'{"format":"kbuilder-repo-signature/1","signatures":[{"keyid":"a"}]}', "entry 1 is not"),
    (b'{"format":"kbuilder-repo-signature/1","signatures":[{"keyid":"a","sig":"AAAA"}]}', "64 bytes, not 3"),
    (b'{"format":"kbuilder-repo-signature/1","signatures":[{"keyid":"a","sig":"%%"}]}', "not base64"),
    (b'{"extra":1,"format":"kbuilder-repo-signature/1","signatures":[]}', "unexpected members extra"),
])
def test_malformed_signature_files(blob: bytes, message: str) -> None:
    with pytest.raises(BadSignature, match=message) as info:
        parse_signature_file(blob, where="index.json.sig")
    assert str(info.value).startswith("bad signature: index.json.sig: the signature file is malformed")
    assert "\n" not in str(info.value)


def test_signature_file_is_canonical() -> None:
    blob = signature_file([("00", b"\0" * 64)])
    sig = base64.b64encode(b"\0" * 64).decode()
    assert blob == ('{"format":"kbuilder-repo-signature/1","signatures":[{"keyid":"00","sig":"' + sig + '"}]}').encode()
