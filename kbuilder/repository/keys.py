"""Ed25519 keys and the detached signature of a repository index.

* A **private key** is a PKCS#8 PEM file (`-----BEGIN PRIVATE KEY-----`,
  readable by openssl), mode 0600, never inside the served tree.
* A **public key** is written as one line, `ed25519:` and the base64 of its
  32 raw bytes (what agent.toml pins); a PEM SubjectPublicKeyInfo file is
  accepted too.
* A **key id** is the first 16 hex digits of the sha256 of the 32 raw bytes.
* The **signature file** (`index.json.sig`) is canonical JSON:
  `{"format": "kbuilder-repo-signature/1", "signatures": [{"keyid": ID,
  "sig": BASE64}, ...]}`; each `sig` is the 64-byte Ed25519 signature of
  the exact bytes of an `index.json`. It lists the signature of the current
  index first and may list the previous index's: the writer publishes the
  signature before the index it signs, so a reader that sees either index
  finds its signature (docs/repository.md, "Atomic publication").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from kbuilder.errors import InputError
from kbuilder.repository.errors import BadSignature, UnknownKey

PUBLIC_PREFIX = "ed25519:"
SIGNATURE_FORMAT = "kbuilder-repo-signature/1"
MAX_SIGNATURE_FILE = 64 * 1024


def _crypto() -> tuple[type, type]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    return Ed25519PrivateKey, Ed25519PublicKey


@dataclass(frozen=True, slots=True)
class PublicKey:
    raw: bytes

    @property
    def keyid(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()[:16]

    @property
    def text(self) -> str:
        return PUBLIC_PREFIX + base64.b64encode(self.raw).decode("ascii")

    def verify(self, signature: bytes, data: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        _, public_cls = _crypto()
        try:
            public_cls.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True


class SigningKey:
    """A loaded Ed25519 private key."""

    def __init__(self, private: object, path: str | None = None) -> None:
        from cryptography.hazmat.primitives import serialization

        self._private = private
        self.path = path
        raw = private.public_key().public_bytes(serialization.Encoding.Raw,  # type: ignore[attr-defined]
                                                serialization.PublicFormat.Raw)
        self.public = PublicKey(raw)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)  # type: ignore[attr-defined, no-any-return]

    def private_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self._private.private_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined, no-any-return]
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())


def generate() -> SigningKey:
    private_cls, _ = _crypto()
    return SigningKey(private_cls.generate())


def write_keypair(key: SigningKey, private_path: str | Path, *, force: bool = False) -> Path:
    """Write the private key (mode 0600) and PATH.pub next to it; returns
    the .pub path. Refuses to overwrite unless `force`."""
    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        if path.exists() and not force:
            raise InputError("already exists (use --force to overwrite a key)", path=str(path))
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_pem())
    os.chmod(private_path, 0o600)
    public_path.write_text(key.public.text + "\n", encoding="ascii")
    return public_path


def load_private(path: str | Path) -> SigningKey:
    from cryptography.hazmat.primitives import serialization

    where = str(path)
    try:
        blob = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError("signing key not found", path=where) from None
    except OSError as exc:
        raise InputError(f"cannot read the signing key: {exc.strerror}", path=where) from None
    private_cls, _ = _crypto()
    try:
        private = serialization.load_pem_private_key(blob, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"not an unencrypted PEM private key ({exc})", path=where) from None
    if not isinstance(private, private_cls):
        raise InputError("not an Ed25519 private key (make one with kbuild repo keygen)", path=where)
    return SigningKey(private, where)


def parse_public(text: str, *, where: str | None = None) -> PublicKey:
    """`ed25519:BASE64` or a PEM public key."""
    from cryptography.hazmat.primitives import serialization

    text = text.strip()
    if text.startswith(PUBLIC_PREFIX):
        try:
            raw = base64.b64decode(text[len(PUBLIC_PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise InputError(f"public key {text[:60]!r} is not 'ed25519:' and the base64 of 32 bytes",
                             path=where)
        return PublicKey(raw)
    if text.startswith("-----BEGIN PUBLIC KEY-----"):
        _, public_cls = _crypto()
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise InputError(f"not a PEM public key ({exc})", path=where) from None
        if not isinstance(key, public_cls):
            raise InputError("not an Ed25519 public key", path=where)
        return PublicKey(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    raise InputError("a public key is 'ed25519:BASE64' (kbuild repo keygen writes it to KEY.pub) or PEM",
                     path=where)


def load_public(spec: str) -> PublicKey:
    """A public key given inline (`ed25519:...`) or as a file holding one."""
    if spec.strip().startswith((PUBLIC_PREFIX, "-----BEGIN")):
        return parse_public(spec)
    try:
        text = Path(spec).read_text(encoding="ascii")
    except FileNotFoundError:
        raise InputError("public key file not found", path=spec) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the public key: {exc}", path=spec) from None
    return parse_public(text, where=spec)


# ---------------------------------------------------------------------------
# The signature file
# ---------------------------------------------------------------------------

def signature_file(entries: list[tuple[str, bytes]]) -> bytes:
    """The canonical bytes of a signature file listing (keyid, signature)."""
    from kbuilder.metadata.model import canonical_json

    return canonical_json({"format": SIGNATURE_FORMAT,
                           "signatures": [{"keyid": k, "sig": base64.b64encode(s).decode("ascii")}
                                          for k, s in entries]})


def parse_signature_file(blob: bytes, *, where: str) -> list[tuple[str, bytes]]:
    """The (keyid, signature) entries; BadSignature when the file is not one."""
    def bad(why: str) -> BadSignature:
        return BadSignature(f"the signature file is malformed ({why})", path=where)

    if len(blob) > MAX_SIGNATURE_FILE:
        raise bad(f"{len(blob)} bytes, more than {MAX_SIGNATURE_FILE}")
    try:
        data = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != SIGNATURE_FORMAT:
        raise bad(f"format is not {SIGNATURE_FORMAT!r}")
    if set(data) != {"format", "signatures"}:
        raise bad("unexpected members " + ", ".join(sorted(set(data) - {"format", "signatures"})))
    items = data["signatures"]
    if not isinstance(items, list) or not items:
        raise bad("no signatures")
    out = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict) or set(item) != {"keyid", "sig"} or not isinstance(item["keyid"], str) \
                or not isinstance(item["sig"], str):
            raise bad(f"entry {n} is not {{keyid, sig}}")
        try:
            sig = base64.b64decode(item["sig"], validate=True)
        except (binascii.Error, ValueError):
            raise bad(f"entry {n}: sig is not base64") from None
        if len(sig) != 64:
            raise bad(f"entry {n}: an Ed25519 signature has 64 bytes, not {len(sig)}")
        out.append((item["keyid"], sig))
    return out


def verify_signed(data: bytes, signature_blob: bytes, pinned: list[PublicKey], *, where: str,
                  sig_where: str) -> PublicKey:
    """The pinned key whose signature in `signature_blob` verifies `data`.

    UnknownKey when no entry is by a pinned key; BadSignature when entries
    by pinned keys are there but none verifies (the index or the signature
    was changed)."""
    entries = parse_signature_file(signature_blob, where=sig_where)
    by_id = {k.keyid: k for k in pinned}
    ours = [(by_id[keyid], sig) for keyid, sig in entries if keyid in by_id]
    if not ours:
        named = ", ".join(sorted({keyid for keyid, _ in entries}))
        trusted = ", ".join(sorted(by_id)) or "none"
        raise UnknownKey(f"signed by key {named}, which is not pinned (pinned: {trusted})", path=where)
    for key, sig in ours:
        if key.verify(sig, data):
            return key
    names = ", ".join(sorted({k.keyid for k, _ in ours}))
    raise BadSignature(f"does not match its signature by key {names} (changed or corrupt)", path=where)
