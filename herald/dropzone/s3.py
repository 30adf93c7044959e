"""A drop zone in an S3 bucket (AWS or any S3-compatible store).

``HERALD_DROPZONE_URL=s3://bucket/prefix`` picks it; ``HERALD_S3_ENDPOINT_URL`` points it at an
S3-compatible store instead of AWS. Credentials and region come from boto3's standard chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, instance roles, ...): Herald
never reads, stores or logs them itself.

The layout rules live in :class:`~herald.dropzone.base.DropZone`; this module only maps its
storage primitives onto S3 keys (``<prefix>/<zone path>``):

* S3 has no folders: a listing is one ``Delimiter="/"`` level, paginated (1,000 keys a page).
* S3 has no rename: a move is copy-then-delete.
* A PUT or a completed multipart upload is atomic, so readers never see half an object and
  uploads need no temporary name (unlike the local folder's ``.part`` files).
* A multipart object's ETag is not the MD5 of its content, so checksums are SHA-256: taken from
  the uploader's ``x-amz-meta-sha256`` when present, otherwise computed by streaming the body.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from herald.dropzone.base import DropZone, DropZoneError, Entry, sha256_of
from herald.settings import ENV_DROPZONE_URL, ENV_S3_ENDPOINT_URL, DropZoneTarget

__all__ = ["S3DropZone"]

MiB = 1 << 20
GiB = 1 << 30
STREAM_CHUNK = MiB  # hashing a body streams it in pieces this size
SHA256_METADATA = "sha256"  # user metadata key: x-amz-meta-sha256
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)

# Error codes S3 (and compatible stores) answer when the caller's identity is the problem.
# A HEAD request has no body, so its refusal only carries the status code ("403").
_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "403",
        "Forbidden",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
    }
)
_MISSING_KEY_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class S3DropZone(DropZone):
    """A drop zone under ``s3://<bucket>/<prefix>``: zone paths are keys below the prefix."""

    # CopyObject copies at most 5 GiB in one request; bigger objects need a multipart copy.
    COPY_OBJECT_LIMIT = 5 * GiB

    def __init__(self, target: DropZoneTarget, client: Any = None):
        if not target.bucket:
            raise DropZoneError(f"{ENV_DROPZONE_URL}={target.url} names no bucket")
        self.url = target.url
        self.bucket = target.bucket
        self.prefix = target.prefix.strip("/")
        self.endpoint_url = target.endpoint_url
        self._owns_client = client is None
        if client is None:
            # S3-compatible stores behind a custom endpoint rarely resolve virtual-hosted
            # bucket names (bucket.host), so path-style addressing is the safe choice there.
            config = Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
                s3={"addressing_style": "path"} if target.endpoint_url else None,
            )
            # a session of our own: boto3's default session is shared and not thread-safe
            client = boto3.session.Session().client("s3", endpoint_url=target.endpoint_url, config=config)
        self.client = client
        # Bounded memory whatever the object's size: a download writes to disk through at most
        # max_io_queue x 256 KiB of buffered chunks; an upload reads each part from the file as
        # it is sent. Large objects go in 16 MiB parts, 4 at a time.
        self._transfer = TransferConfig(
            multipart_threshold=64 * MiB,
            multipart_chunksize=16 * MiB,
            max_concurrency=4,
            max_io_queue=16,
        )

    # --- naming ----------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The endpoint requests go to (a custom one, or AWS's for the client's region)."""
        return self.endpoint_url or getattr(getattr(self.client, "meta", None), "endpoint_url", "") or "AWS S3"

    def _key(self, path: str) -> str:
        path = path.strip("/")
        if not self.prefix:
            return path
        return f"{self.prefix}/{path}" if path else self.prefix

    def _where(self, path: str | None) -> str:
        return f"s3://{self.bucket}/{self._key(path)}" if path is not None else f"s3://{self.bucket}"

    # --- errors ----------------------------------------------------------------------------------

    def _error(self, exc: BaseException, action: str, path: str | None) -> DropZoneError:
        """An S3/botocore exception as a message a person can act on (never with secrets)."""
        where = self._where(path)
        settings = f"{ENV_DROPZONE_URL}={self.url}"
        if self.endpoint_url:
            settings += f", {ENV_S3_ENDPOINT_URL}={self.endpoint_url}"
        if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, ClientError):
            exc = exc.__context__  # boto3 wraps upload errors in a message-only exception
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "")) or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            message = error.get("Message") or ""
            # HEAD has no body: a missing bucket answers head_bucket with a bare 404
            if code == "NoSuchBucket" or (code in _MISSING_KEY_CODES and path is None):
                return DropZoneError(f"bucket {self.bucket!r} does not exist ({settings})")
            if code in _CREDENTIAL_CODES:
                return DropZoneError(
                    f"S3 refused the credentials ({code}{': ' + message if message else ''}) to {action} {where}: "
                    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and that they may use "
                    f"this bucket ({settings})"
                )
            if code in _MISSING_KEY_CODES and path is not None:
                return DropZoneError(f"{where} does not exist (moved or deleted by someone else?) ({settings})")
            return DropZoneError(f"S3 could not {action} {where}: {code} {message}".rstrip() + f" ({settings})")
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return DropZoneError(
                f"no usable S3 credentials to {action} {where} ({exc}): set AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, or AWS_PROFILE ({settings})"
            )
        if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
            return DropZoneError(
                f"cannot reach S3 endpoint {self.endpoint} to {action} {where}: {exc} "
                f"(is {ENV_S3_ENDPOINT_URL} right and the store running?) ({settings})"
            )
        if isinstance(exc, ReadTimeoutError):
            return DropZoneError(
                f"S3 endpoint {self.endpoint} stopped answering while asked to {action} {where} ({settings})"
            )
        return DropZoneError(f"S3 could not {action} {where}: {exc} ({settings})")

    @contextmanager
    def _s3(self, action: str, path: str | None = None) -> Iterator[None]:
        """Turns botocore/boto3 exceptions raised inside into :class:`DropZoneError`."""
        try:
            yield
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise self._error(exc, action, path) from exc

    # --- storage primitives ----------------------------------------------------------------------

    def _list(self, folder: str) -> list[Entry]:
        base = self._key(folder)
        list_prefix = f"{base}/" if base else ""
        folders: set[str] = set()
        files: dict[str, Entry] = {}
        with self._s3("list", folder):
            # The paginator follows continuation tokens: a folder of thousands of keys is read
            # page by page (1,000 per page) and every key appears in exactly one page.
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=list_prefix, Delimiter="/"
            )
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(list_prefix) :].rstrip("/")
                    if name:
                        folders.add(name)
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(list_prefix) :]
                    # "folder/" keys are markers that consoles create for empty folders: not files
                    if not name or name.endswith("/"):
                        continue
                    files[name] = Entry(name, False, int(obj["Size"]), _microseconds(obj["LastModified"]))
        entries = [Entry(name, is_dir=True) for name in folders] + list(files.values())
        return sorted(entries, key=lambda e: (e.name, not e.is_dir))

    def _read_bytes(self, path: str, limit: int = 1 << 16) -> bytes | None:
        with self._s3("read", path):
            try:
                # a ranged GET: a "sidecar" that turns out to be huge is never fetched whole
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(path), Range=f"bytes=0-{limit - 1}")
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code == "NoSuchKey":
                    return None
                if code == "InvalidRange":  # any range of an empty object is unsatisfiable
                    return b""
                raise
            body = response["Body"]  # botocore's StreamingBody (its context manager yields the raw socket)
            try:
                return body.read(limit)
            finally:
                body.close()

    def _write_bytes(self, path: str, data: bytes) -> None:
        with self._s3("write", path):
            self.client.put_object(Bucket=self.bucket, Key=self._key(path), Body=data)

    @contextmanager
    def _download(self, path: str) -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(prefix="herald-s3-"))
        # the original file name: whatever reads the copy sees the same name and extension
        local = folder / (PurePosixPath(path).name or "object")
        try:
            with self._s3("download", path):
                try:
                    with local.open("wb") as f:
                        # streamed to disk part by part (ranged GETs pinned to the object's ETag
                        # when large): a 1 GB packet never sits whole in memory
                        self.client.download_fileobj(self.bucket, self._key(path), f, Config=self._transfer)
                except OSError as exc:
                    raise DropZoneError(
                        f"cannot write {self._where(path)} to the temporary folder {folder}: {exc} "
                        "(set TMPDIR to a disk with room)"
                    ) from exc
            yield local
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _upload(self, local_file: Path, path: str) -> None:
        digest = sha256_of(local_file)
        with self._s3("upload", path):
            # A single PUT or a completed multipart upload appears all at once: no temp key needed.
            # The SHA-256 goes along twice: S3 verifies the parts' checksums on arrival, and the
            # metadata gives readers the whole file's hash without reading it (the checksum of a
            # multipart object is a checksum of checksums, and its ETag no MD5).
            self.client.upload_file(
                str(local_file),
                self.bucket,
                self._key(path),
                ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": {SHA256_METADATA: digest}},
                Config=self._transfer,
            )

    def _move(self, source: str, target: str) -> None:
        source_key, target_key = self._key(source), self._key(target)
        copy_source = {"Bucket": self.bucket, "Key": source_key}
        with self._s3("move", source):
            size = int(self.client.head_object(Bucket=self.bucket, Key=source_key)["ContentLength"])
            if size <= self.COPY_OBJECT_LIMIT:
                # server-side, one request; user metadata (x-amz-meta-sha256) comes along
                self.client.copy_object(
                    Bucket=self.bucket, Key=target_key, CopySource=copy_source, MetadataDirective="COPY"
                )
            else:
                # multipart copy (still server-side); s3transfer carries the metadata over
                self.client.copy(
                    copy_source,
                    self.bucket,
                    target_key,
                    Config=TransferConfig(multipart_threshold=self.COPY_OBJECT_LIMIT, multipart_chunksize=512 * MiB),
                )
            # S3 cannot rename: the copy is complete before the original goes, so a crash in
            # between leaves two copies (a re-run files the packet again), never none
            self.client.delete_object(Bucket=self.bucket, Key=source_key)

    def _exists(self, path: str) -> bool:
        with self._s3("look up", path):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(path))
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in _MISSING_KEY_CODES:
                    return False
                raise
        return True

    def _sha256(self, path: str) -> str:
        key = self._key(path)
        with self._s3("checksum", path):
            head = self.client.head_object(Bucket=self.bucket, Key=key)
            recorded = (head.get("Metadata") or {}).get(SHA256_METADATA, "")
            if _HEX64.fullmatch(recorded):
                return recorded.lower()  # written by the uploader (or by :meth:`_upload`)
            # Otherwise hash the content itself. Never the ETag: for a multipart upload it is
            # "<md5 of the parts' md5s>-<parts>", not the file's MD5.
            digest = hashlib.sha256()
            # IfMatch: the bytes hashed are those of the object just looked at, not a replacement
            response = self.client.get_object(Bucket=self.bucket, Key=key, IfMatch=head["ETag"])
            body = response["Body"]
            try:
                for chunk in body.iter_chunks(STREAM_CHUNK):  # checks the length S3 announced
                    digest.update(chunk)
            finally:
                body.close()
            return digest.hexdigest()

    def check(self) -> str:
        """Whether the bucket can be reached and listed: a one-line description, or DropZoneError."""
        with self._s3("open"):
            head = self.client.head_bucket(Bucket=self.bucket)
        with self._s3("list", ""):
            # listing too: credentials may be allowed to see the bucket but not the prefix
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "", MaxKeys=1)
        region = head.get("BucketRegion") or getattr(getattr(self.client, "meta", None), "region_name", None)
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} reachable at {self.endpoint}" + (f" (region {region})" if region else "")

    def close(self) -> None:
        if self._owns_client:
            self.client.close()  # its HTTP connection pool; a client passed in belongs to the caller


def _microseconds(moment: datetime) -> int:
    """A LastModified timestamp as whole microseconds since the epoch (exact, no float)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_MICROSECOND
