"""Signed checkpoints of the chain head: the key, and the copies kept outside the database.

The database holds the chain and a copy of each checkpoint, but never the key, so whoever
controls the database can rewrite events and even recompute every hash, yet cannot sign a head
that matches. Copies outside the database (a JSON-lines file on another disk, or a storage
bucket) survive the checkpoint rows being deleted too.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from .checkpoint_format import (
    CheckpointFormatError,
    SignedCheckpoint,
    key_id_of,
    load_public_key_pem,
    parse_checkpoint,
    public_key_pem,
)
from .models import AuditCheckpoint

STORAGE_FOLDER = "audit-checkpoints"


def _read_private_key(data: bytes, *, source: str) -> Ed25519PrivateKey:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(data.strip(), validate=True))
    except (ValueError, TypeError, binascii.Error) as error:
        raise ImproperlyConfigured(f"{source}: not an Ed25519 private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{source}: the key is not an Ed25519 key")
    return key


def _generate_key_file(path: Path) -> None:
    """Write a new key readable by its owner only; O_EXCL so two processes never both win."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as file:
        file.write(pem)


def signing_key() -> Ed25519PrivateKey:
    """The configured private key: the environment, else the key file (generated if allowed)."""
    if settings.AUDIT_SIGNING_KEY:
        return _read_private_key(settings.AUDIT_SIGNING_KEY.encode(), source="AUDIT_SIGNING_KEY")
    path = Path(settings.AUDIT_SIGNING_KEY_FILE)
    if not path.exists():
        if not settings.AUDIT_GENERATE_SIGNING_KEY:
            raise ImproperlyConfigured(f"AUDIT_SIGNING_KEY_FILE: {path} does not exist")
        _generate_key_file(path)
    return _read_private_key(path.read_bytes(), source=f"AUDIT_SIGNING_KEY_FILE ({path})")


def public_key() -> Ed25519PublicKey:
    return signing_key().public_key()


def public_key_text() -> str:
    """The public key as PEM, for download: all an offline verifier needs besides the export."""
    return public_key_pem(public_key())


def trusted_keys() -> dict[str, Ed25519PublicKey]:
    """The current key and any retired ones (AUDIT_PREVIOUS_PUBLIC_KEYS), by key id."""
    keys = [public_key()]
    for path in settings.AUDIT_PREVIOUS_PUBLIC_KEYS:
        try:
            keys.append(load_public_key_pem(Path(path).read_bytes()))
        except (OSError, CheckpointFormatError) as error:
            raise ImproperlyConfigured(f"AUDIT_PREVIOUS_PUBLIC_KEYS: {path}: {error}") from None
    return {key_id_of(key): key for key in keys}


def _append_to_file(checkpoint: SignedCheckpoint) -> None:
    """One line per checkpoint, opened O_APPEND and synced: earlier lines are never rewritten."""
    path = Path(settings.AUDIT_CHECKPOINT_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (checkpoint.as_json() + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _storage_name(checkpoint: SignedCheckpoint) -> str:
    stamp = checkpoint.signed_at.replace(":", "").replace("+", "Z")
    return f"{STORAGE_FOLDER}/{checkpoint.main_head.sequence:012d}-{stamp}.json"


def write_outside_database(checkpoint: SignedCheckpoint) -> None:
    """Copy the checkpoint to every configured place outside the database."""
    if settings.AUDIT_CHECKPOINT_FILE:
        _append_to_file(checkpoint)
    if settings.AUDIT_CHECKPOINT_STORAGE:
        storage = storages[settings.AUDIT_CHECKPOINT_STORAGE]
        storage.save(_storage_name(checkpoint), ContentFile(checkpoint.as_json().encode("utf-8")))


def read_outside_database() -> list[tuple[str, SignedCheckpoint]]:
    """Every checkpoint kept outside the database, each with where it came from."""
    found: list[tuple[str, SignedCheckpoint]] = []
    if settings.AUDIT_CHECKPOINT_FILE and Path(settings.AUDIT_CHECKPOINT_FILE).exists():
        path = Path(settings.AUDIT_CHECKPOINT_FILE)
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    found.append((f"{path.name} line {number}", _parse(line, where=f"{path} line {number}")))
    if settings.AUDIT_CHECKPOINT_STORAGE:
        storage = storages[settings.AUDIT_CHECKPOINT_STORAGE]
        _, names = storage.listdir(STORAGE_FOLDER) if storage.exists(STORAGE_FOLDER) else ([], [])
        for name in sorted(names):
            with storage.open(f"{STORAGE_FOLDER}/{name}") as file:
                text = file.read().decode("utf-8")
            found.append((name, _parse(text, where=f"{STORAGE_FOLDER}/{name}")))
    return found


def _parse(text: str, *, where: str) -> SignedCheckpoint:
    try:
        return parse_checkpoint(text)
    except CheckpointFormatError as error:
        raise CheckpointFormatError(f"{where}: {error}") from None


def parse_stored(checkpoint: AuditCheckpoint) -> SignedCheckpoint:
    return _parse(checkpoint.document, where=f"checkpoint {checkpoint.pk}")
