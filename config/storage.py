"""Artifact storage in an S3-compatible bucket (ARTIFACT_STORAGE=s3), through django-storages.

django-storages' own S3 file downloads the whole object before the first byte can be read (into
memory, unless AWS_S3_MAX_MEMORY_SIZE is set). An artifact can be gigabytes and a download is sent
to the client as it arrives, so files opened for reading here stream from the bucket instead, and
seeking (Parquet bulk uploads read their footer first) turns into a ranged GET.
"""

from __future__ import annotations

import io
from typing import Any

from botocore.exceptions import ClientError
from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

_READ_BUFFER = 1024 * 1024


class _ObjectReader(io.RawIOBase):
    """An S3 object as a read-only, seekable stream: one GET from the current position, read as
    it is consumed; a seek drops that GET and the next read starts a new one at the new offset."""

    def __init__(self, obj: Any, size: int) -> None:
        self._obj = obj
        self._size = size
        self._position = 0
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        target = max(0, base + offset)
        if target != self._position:
            self._drop_body()
            self._position = target
        return self._position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size or not len(buffer):
            return 0
        if self._body is None:
            self._body = self._obj.get(Range=f"bytes={self._position}-")["Body"]
        data = self._body.read(len(buffer))
        if not data:  # a dropped connection must not look like the end of the file
            raise OSError(
                f"{self._obj.key}: the bucket's response ended at byte {self._position} of {self._size}"
            )
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class ArtifactS3Storage(S3Storage):
    """S3Storage whose files opened for reading stream from the bucket."""

    def _open(self, name: str, mode: str = "rb") -> File:
        if mode != "rb":
            return super()._open(name, mode)
        obj = self.bucket.Object(self._normalize_name(clean_name(name)))
        try:
            obj.load()  # one HEAD: the size, and a missing object fails here like a missing file
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise FileNotFoundError(f"{name} is not in the artifact bucket") from None
            raise
        reader = io.BufferedReader(_ObjectReader(obj, obj.content_length), buffer_size=_READ_BUFFER)
        return File(reader, name=name)


def s3_storage_options(env: Any) -> dict[str, Any]:
    """STORAGES["default"]["OPTIONS"] for ARTIFACT_STORAGE=s3, from AWS_* variables.

    Credentials left unset fall through to boto3's own chain (instance role, ~/.aws), so none
    has to be written into the environment on AWS itself.
    """
    bucket = env.str("AWS_STORAGE_BUCKET_NAME", default="")
    if not bucket:
        raise ImproperlyConfigured("ARTIFACT_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME (the artifact bucket).")
    options: dict[str, Any] = {
        "bucket_name": bucket,
        # Artifacts are private: served through Lab Ledger's permission checks, never by URL.
        "default_acl": None,
        "querystring_auth": True,
        # A fresh key for each upload: the artifact service deletes the old object only after the
        # new row is committed, and deletes the new one if the commit fails (tracker/services).
        "file_overwrite": False,
        "location": env.str("AWS_LOCATION", default=""),
    }
    optional = {
        "endpoint_url": "AWS_S3_ENDPOINT_URL",  # MinIO, Ceph, R2...; unset for AWS itself
        "region_name": "AWS_S3_REGION_NAME",
        "access_key": "AWS_ACCESS_KEY_ID",
        "secret_key": "AWS_SECRET_ACCESS_KEY",
        "addressing_style": "AWS_S3_ADDRESSING_STYLE",  # "path" for most self-hosted services
    }
    for option, variable in optional.items():
        value = env.str(variable, default="")
        if value:
            options[option] = value
    return options
