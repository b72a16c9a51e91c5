"""The signed checkpoint's wire format; no Django, so the offline verifier can import it.

A checkpoint is a JSON object `{"payload": {...}, "signature": "<base64>"}`. The signature is
Ed25519 over the payload's canonical JSON. The payload is versioned and lists *heads*: today one
chain ("main") with its sequence and hash; a chain split into several (or sealed up to a
position) later adds heads or fields under a new version, and verifiers refuse versions they do
not know rather than guess.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .hashing import canonical_json

FORMAT = "labledger.audit-checkpoint"
VERSION = 1
MAIN_CHAIN = "main"


class CheckpointFormatError(ValueError):
    """A checkpoint that cannot be read: not JSON, missing fields, an unknown version."""


@dataclass(frozen=True)
class Head:
    """One chain's newest position at signing time."""

    chain: str
    sequence: int
    hash: str


@dataclass(frozen=True)
class SignedCheckpoint:
    """A payload and the signature over its canonical JSON, exactly as stored and exported."""

    payload: dict[str, Any]
    signature: str

    @property
    def key_id(self) -> str:
        return str(self.payload["key_id"])

    @property
    def signed_at(self) -> str:
        return str(self.payload["signed_at"])

    @property
    def heads(self) -> list[Head]:
        return [Head(h["chain"], h["sequence"], h["hash"]) for h in self.payload["heads"]]

    @property
    def main_head(self) -> Head:
        return next(head for head in self.heads if head.chain == MAIN_CHAIN)

    def as_json(self) -> str:
        return canonical_json({"payload": self.payload, "signature": self.signature})

    def signature_problem(self, public_keys: dict[str, Ed25519PublicKey]) -> str | None:
        """Why the signature does not hold under the trusted keys, or None when it does."""
        key = public_keys.get(self.key_id)
        if key is None:
            return f"signed with key {self.key_id}, which is not a trusted key"
        try:
            key.verify(base64.b64decode(self.signature, validate=True), _signed_bytes(self.payload))
        except (InvalidSignature, binascii.Error, ValueError):
            return "signature does not verify (forged or altered)"
        return None


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a key: the start of the sha256 of its raw 32 bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key_pem(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; anything else is a CheckpointFormatError."""
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise CheckpointFormatError(f"not a PEM public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointFormatError("the public key is not an Ed25519 key")
    return key


def _signed_bytes(payload: dict[str, Any]) -> bytes:
    return canonical_json(payload).encode("utf-8")


def sign_heads(*, private_key: Ed25519PrivateKey, heads: list[Head], signed_at: str) -> SignedCheckpoint:
    """Sign the heads with the time they were read; the key's id travels in the payload."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "key_id": key_id_of(private_key.public_key()),
        "signed_at": signed_at,
        "heads": [{"chain": h.chain, "sequence": h.sequence, "hash": h.hash} for h in heads],
    }
    signature = base64.b64encode(private_key.sign(_signed_bytes(payload))).decode("ascii")
    return SignedCheckpoint(payload=payload, signature=signature)


def parse_checkpoint(text: str) -> SignedCheckpoint:
    """Read one checkpoint (a JSON line); the message says which field is wrong."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointFormatError(f"not JSON ({error.msg})") from None
    if not isinstance(document, dict) or not isinstance(document.get("payload"), dict):
        raise CheckpointFormatError("payload: missing or not an object")
    if not isinstance(document.get("signature"), str):
        raise CheckpointFormatError("signature: missing or not a string")
    payload = document["payload"]
    if payload.get("format") != FORMAT:
        raise CheckpointFormatError(f"payload.format: expected {FORMAT!r}, got {payload.get('format')!r}")
    if payload.get("version") != VERSION:
        raise CheckpointFormatError(
            f"payload.version: {payload.get('version')!r} is not a version this verifier reads ({VERSION})"
        )
    for field in ("key_id", "signed_at"):
        if not isinstance(payload.get(field), str):
            raise CheckpointFormatError(f"payload.{field}: missing or not a string")
    heads = payload.get("heads")
    if not isinstance(heads, list) or not heads:
        raise CheckpointFormatError("payload.heads: missing or empty")
    for index, head in enumerate(heads):
        if not (
            isinstance(head, dict)
            and isinstance(head.get("chain"), str)
            and type(head.get("sequence")) is int
            and isinstance(head.get("hash"), str)
        ):
            raise CheckpointFormatError(f"payload.heads[{index}]: needs chain, sequence (integer) and hash")
    if not any(head["chain"] == MAIN_CHAIN for head in heads):
        raise CheckpointFormatError(f"payload.heads: no {MAIN_CHAIN!r} chain")
    return SignedCheckpoint(payload=payload, signature=document["signature"])
