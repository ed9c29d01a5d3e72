"""Storage on S3 or an S3-compatible server (MinIO in compose, moto in tests).

Two clients: one on ``endpoint_url`` for the service's own calls, and one on
``public_endpoint_url`` used only to presign, because a presigned URL embeds (and signs) the
host it was made for; inside compose the service reaches ``http://minio:9000`` while browsers
must be sent to the public host. Presigning is pure computation, so that client never connects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    PresignedUpload,
    StorageError,
    resolve_content_type,
    validate_key,
)
from app.storage.signing import content_disposition
from app.storage.url_cache import SignedUrlCache

DELETE_BATCH = 1000  # S3's DeleteObjects limit
# HEAD answers carry no body, so a missing key there is just "404". A missing bucket
# (NoSuchBucket) stays a StorageError: it is misconfiguration, not an absent object.
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}


class S3Storage:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        public_endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        path_style: bool = False,
        max_attempts: int = 5,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.region = region
        self._download_urls = SignedUrlCache()
        config = Config(
            region_name=region,
            signature_version="s3v4",
            # "standard" retries throttling, 5xx and connection errors with jittered exponential
            # backoff; max_attempts counts the first try.
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            s3={"addressing_style": "path"} if path_style else {},
        )
        # An explicit session keeps this client independent of boto3's global default session.
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        self._client: BaseClient = session.client("s3", endpoint_url=endpoint_url, config=config)
        self._presign_client: BaseClient = session.client(
            "s3", endpoint_url=public_endpoint_url or endpoint_url, config=config
        )

    # -- helpers -------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _strip(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    @contextmanager
    def _errors(self, op: str, key: str | None = None) -> Iterator[None]:
        """Turn botocore failures (after its retries) into StorageError with a clear message."""
        where = f"s3://{self.bucket}/{self._full(key) if key else self.prefix}"
        try:
            yield
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = err.get("Message") or str(exc)
            if key is not None and code in _NOT_FOUND_CODES:
                raise ObjectNotFound(f"{op} {where}: no such object") from exc
            raise StorageError(f"S3 {op} {where} failed: {code or status}: {message}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {op} {where} failed: {exc}") from exc

    # -- Storage protocol ----------------------------------------------------------------

    def put(self, key: str, data: bytes | BinaryIO, content_type: str | None = None) -> None:
        full = self._full(key)
        ctype = resolve_content_type(key, content_type)
        with self._errors("put", key):
            if isinstance(data, bytes | bytearray | memoryview):
                self._client.put_object(
                    Bucket=self.bucket, Key=full, Body=bytes(data), ContentType=ctype
                )
            else:
                # Managed transfer: streams file objects and switches to multipart for large
                # ones (checkpoints), with per-part retries.
                self._client.upload_fileobj(
                    data, self.bucket, full, ExtraArgs={"ContentType": ctype}
                )

    def get(self, key: str) -> bytes:
        with self._errors("get", key):
            resp = self._client.get_object(Bucket=self.bucket, Key=self._full(key))
            body = resp["Body"]
            try:
                return body.read()
            finally:
                body.close()

    def stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        # The request is made now so a missing key raises here, not at the first chunk.
        with self._errors("get", key):
            body = self._client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                with self._errors("stream", key):
                    yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

        return chunks()

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with self._errors("head", key):
                resp = self._client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ObjectNotFound:
            return None
        return ObjectInfo(
            key=key,
            size=resp["ContentLength"],
            content_type=resp.get("ContentType"),
            etag=_etag(resp.get("ETag")),
        )

    def download_to(self, key: str, path: str) -> None:
        # download_file writes a temp file and renames, and uses ranged parallel GETs when big.
        with self._errors("download", key):
            self._client.download_file(self.bucket, self._full(key), path)

    def copy(self, src_key: str, dst_key: str) -> None:
        # Managed copy stays server-side and uses multipart copy past 5 GB; metadata and
        # content type are copied with the object.
        source = {"Bucket": self.bucket, "Key": self._full(src_key)}
        with self._errors("copy", src_key):
            self._client.copy(source, self.bucket, self._full(dst_key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` sorted by key. Listing does not return content types, so
        ``content_type`` is None here; use ``head`` when it matters."""
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors("list"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        key=self._strip(obj["Key"]), size=obj["Size"], etag=_etag(obj.get("ETag"))
                    )

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def delete_many(self, keys: Iterable[str]) -> None:
        full_keys = [self._full(k) for k in keys]  # validate all before deleting any
        failures: list[str] = []
        for start in range(0, len(full_keys), DELETE_BATCH):
            batch = full_keys[start : start + DELETE_BATCH]
            with self._errors("delete_many"):
                resp = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            failures += [
                f"{e.get('Key')}: {e.get('Code')} {e.get('Message', '')}".strip()
                for e in resp.get("Errors", [])
            ]
        if failures:
            shown = "; ".join(failures[:20])
            more = f" (and {len(failures) - 20} more)" if len(failures) > 20 else ""
            raise StorageError(
                f"S3 delete_many in s3://{self.bucket} failed for {len(failures)} keys: "
                f"{shown}{more}"
            )

    # -- presigned URLs ------------------------------------------------------------------

    def presign_put(
        self, key: str, content_type: str, expires_s: int = 3600, *, max_bytes: int | None = None
    ) -> PresignedUpload:
        # max_bytes cannot be expressed in a presigned PUT; the service verifies the size of
        # what arrived (and uses presign_post where a hard limit matters).
        with self._errors("presign_put", key):
            url = self._presign_client.generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": self._full(key), "ContentType": content_type},
                ExpiresIn=expires_s,
            )
        return PresignedUpload(url=url, method="PUT", headers={"Content-Type": content_type})

    def presign_post(
        self, key: str, content_type: str, max_bytes: int, expires_s: int = 3600
    ) -> PresignedUpload:
        with self._errors("presign_post", key):
            post = self._presign_client.generate_presigned_post(
                Bucket=self.bucket,
                Key=self._full(key),
                Fields={"Content-Type": content_type},
                Conditions=[
                    {"Content-Type": content_type},
                    ["content-length-range", 0, max_bytes],
                ],
                ExpiresIn=expires_s,
            )
        return PresignedUpload(url=post["url"], method="POST", fields=dict(post["fields"]))

    def presign_get(self, key: str, expires_s: int = 3600, filename: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full(key)}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)

        def sign() -> str:
            with self._errors("presign_get", key):
                return str(self._presign_client.generate_presigned_url(
                    "get_object", Params=params, ExpiresIn=expires_s))

        return self._download_urls.get(key, filename, expires_s, sign)

    def check(self) -> None:
        with self._errors("head_bucket"):
            self._client.head_bucket(Bucket=self.bucket)

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (dev and tests; production buckets are
        provisioned outside the service)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status != 404:
                raise StorageError(f"S3 head_bucket s3://{self.bucket} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 head_bucket s3://{self.bucket} failed: {exc}") from exc
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code != "BucketAlreadyOwnedByYou":  # created concurrently by us: fine
                raise StorageError(f"S3 create_bucket s3://{self.bucket} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 create_bucket s3://{self.bucket} failed: {exc}") from exc


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None
