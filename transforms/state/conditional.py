"""Conditional writes of one small object, atomic on each filesystem: the
storage layer of the output folder's lease (transforms/state/lease.py).

    read(path)                   -> Versioned(data, version), or None if absent
    create(path, data)           -> the new version, or None if the object exists
    replace(path, data, version) -> the new version, or None if the object is no
                                    longer at `version` (changed or vanished)
    delete(path, version)        -> True if deleted, False if the object is no
                                    longer at `version` (changed or vanished)

A version is an opaque token: compare it only for equality, and only with
versions of the same path. Per filesystem:

- local disk (a path without a scheme, or file://): the SHA-256 of the
  content. create writes a temporary file in the same folder and hard-links it
  to the path (the link fails if the path exists, and the content appears
  whole); replace holds an flock on a sidecar `.<name>.lock` while it reads,
  compares and renames a temporary file over the path.
  Why the content and not st_ino + st_mtime_ns + size: a rename frees the old
  inode for the next file, timestamps come from a coarse clock (one kernel
  tick, a few ms, on ext4), and lease bodies have near-equal sizes, so a different content could
  carry the old version and a stale replace would succeed. A content hash
  changes whenever the bytes do, needs no metadata, and survives a copy of
  the folder. The one thing it cannot tell apart is the same bytes written
  again; then a replace that succeeds still acts on exactly the content its
  caller read. The lease writes a unique token in every body, so every write
  has a new version.
- gs://: the object's generation. create is an upload with
  ifGenerationMatch=0, replace one with ifGenerationMatch=<generation>,
  delete a delete with ifGenerationMatch=<generation>; read
  takes the generation from the download's own response, so data and version
  always belong together.
- s3://: the ETag, quoted as S3 returns it. create is a PutObject with
  If-None-Match: *, replace one with If-Match: <ETag>, delete a DeleteObject
  with If-Match: <ETag> (AWS S3 and moto honour it; a store that ignores it
  deletes unconditionally); read takes the ETag of
  the GetObject response. For a plain upload the ETag is the MD5 of the
  content, with the same property as the local content hash.

A failed precondition (412; S3's 409 ConditionalRequestConflict; a replace
of an object that is gone) is an answer: None. Every other error raises.

A write whose response was lost and that the client library retried meets its
own write: the retry fails its precondition although the write took place.
When that happens (the library retried) and the object now holds exactly the
bytes of this call, the write is reported as done, with the object's version.

Clients come from Beam's own construction with the options set through
FileSystems.set_options (pipeline/cli.py does this before any work), so
credentials, STORAGE_EMULATOR_HOST and --s3_endpoint_url / keys / region
behave as for Beam's FileSystems.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import os
import re
import threading
import uuid
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

_SCHEME = re.compile(r"(?P<scheme>[a-zA-Z][-a-zA-Z0-9+.]*)://")


class Versioned(NamedTuple):
    """An object's content and the version it was read at."""
    data: bytes
    version: str  # opaque token: compare only for equality


def read(path: str) -> Optional[Versioned]:
    """The object at `path` and its version, or None if it does not exist."""
    return _store_for(path).read(path)


def create(path: str, data: bytes) -> Optional[str]:
    """Writes `data` at `path` only if nothing is there: the new version, or
    None if the object already exists (its content is left as it is)."""
    return _store_for(path).create(path, bytes(data))


def replace(path: str, data: bytes, version: str) -> Optional[str]:
    """Writes `data` at `path` only if the object is still at `version`: the
    new version, or None if it changed or vanished (nothing is written)."""
    return _store_for(path).replace(path, bytes(data), version)


def delete(path: str, version: str) -> bool:
    """Deletes the object at `path` only if it is still at `version`: True
    if deleted, False if it changed or vanished (nothing is deleted)."""
    return _store_for(path).delete(path, version)


def content_version(data: bytes) -> str:
    """The version of a local object: the SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


def _store_for(path: str):
    match = _SCHEME.match(path)
    scheme = match.group("scheme").lower() if match else None
    if scheme in (None, "file"):
        return LocalDisk
    if scheme == "gs":
        return GcsObjects
    if scheme == "s3":
        return S3Objects
    raise ValueError(f"conditional writes are not supported on {scheme}:// ({path})")


def split_bucket(path: str) -> Tuple[str, str]:
    """gs://bucket/key or s3://bucket/key -> (bucket, key)."""
    bucket, _, key = path.split("://", 1)[1].partition("/")
    if not bucket or not key:
        raise ValueError(f"not an object path: {path}")
    return bucket, key


def _beam_options():
    """The options Beam's FileSystems build their clients from, found the way
    FileSystems.get_filesystem finds them."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.value_provider import RuntimeValueProvider

    return FileSystems._pipeline_options or RuntimeValueProvider.runtime_options or _no_options()


@functools.lru_cache(maxsize=1)
def _no_options():
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions([])  # PipelineOptions() without flags would parse sys.argv


_shared_clients: Dict[str, tuple] = {}
_shared_lock = threading.Lock()
_thread_clients = threading.local()


def _client(kind: str, build: Callable, per_thread: bool):
    """A client built by `build(options)` from Beam's current options, kept
    while those options (and STORAGE_EMULATOR_HOST) stay the same: building a
    boto3 client costs ~0.5 s. One per kind, replaced when the options
    change. `per_thread`: one per thread, for clients not meant to be shared
    between threads."""
    options, emulator = _beam_options(), os.environ.get("STORAGE_EMULATOR_HOST")

    def current(cache):
        entry = cache.get(kind)
        if entry is None or entry[0] is not options or entry[1] != emulator:
            entry = cache[kind] = (options, emulator, build(options))
        return entry[2]

    if per_thread:
        return current(_thread_clients.__dict__.setdefault("clients", {}))
    with _shared_lock:
        return current(_shared_clients)


class LocalDisk:
    """Local disk: hard-link create, flock-guarded compare-and-rename replace."""

    @staticmethod
    def read(path: str) -> Optional[Versioned]:
        try:
            with open(_local(path), "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        return Versioned(data, content_version(data))

    @staticmethod
    def create(path: str, data: bytes) -> Optional[str]:
        target = _local(path)
        folder = os.path.dirname(target) or "."
        os.makedirs(folder, exist_ok=True)
        temp = _write_temp(target, data)
        try:
            os.link(temp, target)
        except FileExistsError:
            return None
        finally:
            os.unlink(temp)
        _sync_folder(folder)
        return content_version(data)

    @staticmethod
    def replace(path: str, data: bytes, version: str) -> Optional[str]:
        target = _local(path)
        with _at_version(target, version) as held:
            if not held:
                return None
            temp = _write_temp(target, data)
            try:
                os.replace(temp, target)
            except BaseException:
                os.unlink(temp)
                raise
        _sync_folder(os.path.dirname(target) or ".")
        return content_version(data)

    @staticmethod
    def delete(path: str, version: str) -> bool:
        target = _local(path)
        with _at_version(target, version) as held:
            if not held:
                return False
            os.unlink(target)
        _sync_folder(os.path.dirname(target) or ".")
        return True


@contextlib.contextmanager
def _at_version(target: str, version: str) -> Iterator[bool]:
    """Whether `target` is there at `version`, under its lock (held until
    the block ends, so no other writer changes it meanwhile)."""
    if not os.path.isdir(os.path.dirname(target) or "."):
        yield False
        return
    with _locked(target):
        current = LocalDisk.read(target)
        yield current is not None and current.version == version


def _local(path: str) -> str:
    return path[len("file://"):] if path.lower().startswith("file://") else path


def _write_temp(target: str, data: bytes) -> str:
    """`data` in a new hidden file beside `target`, flushed to disk."""
    folder, name = os.path.split(target)
    temp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return temp


@contextlib.contextmanager
def _locked(target: str) -> Iterator[None]:
    """An exclusive flock on `.<name>.lock` beside `target`. The lock file is
    never deleted: a deleted lock file could be locked by two holders."""
    folder, name = os.path.split(target)
    fd = os.open(os.path.join(folder, f".{name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _sync_folder(folder: str) -> None:
    """Makes a new name in `folder` survive a crash of the machine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):  # folders that cannot be synced
            raise
    finally:
        os.close(fd)


class GcsObjects:
    """gs:// through google-cloud-storage, with Beam's client: generations
    as versions, ifGenerationMatch as the condition."""

    @staticmethod
    def read(path: str) -> Optional[Versioned]:
        from google.api_core import exceptions

        blob = _gcs_blob(path)
        try:
            data = blob.download_as_bytes()
        except exceptions.NotFound:
            return None
        # The download's own x-goog-generation header: the generation of these bytes.
        if blob.generation is None:
            # GCS always sends it; gcp-storage-emulator (whole-run tests) does
            # not, so ask the metadata (it ignores preconditions anyway).
            try:
                blob.reload()
            except exceptions.NotFound:
                return None
        return Versioned(data, str(blob.generation))

    @staticmethod
    def create(path: str, data: bytes) -> Optional[str]:
        return _gcs_upload(path, data, 0)

    @staticmethod
    def replace(path: str, data: bytes, version: str) -> Optional[str]:
        if not version.isdigit() or int(version) == 0:
            return None  # not a generation, so not this object's
        return _gcs_upload(path, data, int(version))

    @staticmethod
    def delete(path: str, version: str) -> bool:
        from google.api_core import exceptions

        if not version.isdigit() or int(version) == 0:
            return False
        try:
            # A retried delete that meets its own deletion finds the object
            # gone (404): the same answer as a delete that lost, False; the
            # object is gone either way.
            _gcs_blob(path).delete(if_generation_match=int(version))
        except (exceptions.PreconditionFailed, exceptions.NotFound):
            return False
        return True


def _gcs_blob(path: str):
    from apache_beam.io.gcp import gcsio

    bucket, name = split_bucket(path)
    client = _client("gs", lambda options: gcsio.GcsIO(pipeline_options=options).client, per_thread=True)
    return client.bucket(bucket).blob(name)


def _gcs_upload(path: str, data: bytes, generation: int) -> Optional[str]:
    from google.api_core import exceptions
    from google.api_core.retry import Retry
    from google.cloud.storage.retry import DEFAULT_RETRY

    retried: List[Exception] = []
    # Storage's default retry (built from its predicate and api_core's default
    # delays; the condition makes a retry safe), noting each retry.
    retry = Retry(predicate=DEFAULT_RETRY._predicate, on_error=retried.append)
    blob = _gcs_blob(path)
    try:
        blob.upload_from_string(data, content_type="application/octet-stream",
                                if_generation_match=generation, retry=retry)
    except exceptions.PreconditionFailed:  # also a replace of an object that is gone
        return _own_write(path, data) if retried else None
    return str(blob.generation)


class S3Objects:
    """s3:// through boto3, with Beam's client: ETags as versions,
    If-None-Match / If-Match as the conditions."""

    @staticmethod
    def read(path: str) -> Optional[Versioned]:
        bucket, key = split_bucket(path)
        try:
            response = _s3_client().get_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if _s3_error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        with contextlib.closing(response["Body"]) as body:
            return Versioned(body.read(), response["ETag"])

    @staticmethod
    def create(path: str, data: bytes) -> Optional[str]:
        return _s3_put(path, data, IfNoneMatch="*")

    @staticmethod
    def replace(path: str, data: bytes, version: str) -> Optional[str]:
        return _s3_put(path, data, IfMatch=version)

    @staticmethod
    def delete(path: str, version: str) -> bool:
        bucket, key = split_bucket(path)
        try:
            _s3_client().delete_object(Bucket=bucket, Key=key, IfMatch=version)
        except Exception as exc:
            if _s3_error_code(exc) not in _S3_NOT_WRITTEN:
                raise
            return False
        return True


_S3_NOT_WRITTEN = {
    "PreconditionFailed", "412",            # the condition did not hold
    "ConditionalRequestConflict", "409",    # a racing conditional write won
    "NoSuchKey", "404",                     # If-Match on an object that is gone
}


def _s3_client():
    from apache_beam.io.aws.clients.s3 import boto3_client

    # boto3 clients are thread-safe: one for all threads.
    return _client("s3", lambda options: boto3_client.Client(options=options).client, per_thread=False)


def _s3_put(path: str, data: bytes, **condition) -> Optional[str]:
    bucket, key = split_bucket(path)
    try:
        response = _s3_client().put_object(Bucket=bucket, Key=key, Body=data, **condition)
    except Exception as exc:
        if _s3_error_code(exc) not in _S3_NOT_WRITTEN:
            raise
        metadata = getattr(exc, "response", {}).get("ResponseMetadata", {})
        return _own_write(path, data) if metadata.get("RetryAttempts", 0) else None
    return response["ETag"]


def _s3_error_code(exc: Exception) -> Optional[str]:
    """The S3 error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code", "")) or None


def _own_write(path: str, data: bytes) -> Optional[str]:
    """After a retried write failed its condition: the object's version if it
    holds exactly `data` (the lost first attempt took place), else None."""
    current = read(path)
    return current.version if current is not None and current.data == data else None
