"""Where finished files go: ``put(key, data)`` returns once the whole file is durable under its
final name, and no reader ever sees part of a file under that name.

Local: the file is written under ``<path>/_staging/``, fsync'ed, renamed into place (same
filesystem, so atomic) and its directory fsync'ed. Readers (Hive, Spark, Athena, DuckDB globs on
``*.parquet``) skip ``_staging`` and its ``.tmp`` names; ``open`` empties it of what a crash left.

S3: the complete file, already in memory, is written in one piece: a single PUT (or, for a file
larger than a part, a multipart upload, which S3 shows only once it is completed).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Protocol
from urllib.parse import urlparse

from collector.destinations.parquet.config import S3Settings

STAGING = "_staging"


class Store(Protocol):
    def open(self) -> None: ...

    def put(self, key: str, data: bytes) -> None: ...

    def describe(self, key: str) -> str: ...


class LocalStore:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.staging = os.path.join(self.root, STAGING)

    def describe(self, key: str) -> str:
        return os.path.join(self.root, key)

    def open(self) -> None:
        _make_dirs(self.staging)
        for name in os.listdir(self.staging):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(self.staging, name))

    def put(self, key: str, data: bytes) -> None:
        final = os.path.join(self.root, key)
        temporary = os.path.join(self.staging, f"{uuid.uuid4().hex}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            _make_dirs(os.path.dirname(final))
            os.replace(temporary, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(temporary)
            raise
        _sync_dir(os.path.dirname(final))


def _make_dirs(path: str) -> None:
    """``os.makedirs``, with each new directory's entry made durable in its parent."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent != path:
        _make_dirs(parent)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path)
    _sync_dir(parent)


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Store:
    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._fs = None

    def describe(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{self._key(key)}"

    def _key(self, key: str) -> str:
        return f"{self.settings.prefix}/{key}" if self.settings.prefix else key

    def open(self) -> None:
        from pyarrow import fs

        s = self.settings
        options: dict[str, object] = {"region": s.region}
        if s.endpoint:
            url = urlparse(s.endpoint if "://" in s.endpoint else f"https://{s.endpoint}")
            options["scheme"] = url.scheme
            options["endpoint_override"] = url.netloc + url.path.rstrip("/")
        if s.access_key_id is not None:
            options.update(access_key=s.access_key_id, secret_key=s.secret_access_key,
                           session_token=s.session_token)
        self._fs = fs.S3FileSystem(**options)

    def put(self, key: str, data: bytes) -> None:
        assert self._fs is not None, "open() first"
        stream = self._fs.open_output_stream(f"{self.settings.bucket}/{self._key(key)}")
        stream.write(data)
        stream.close()  # completes the upload: only now does the object exist


def store_for(path: str | None, s3: S3Settings | None) -> Store:
    if s3 is not None:
        return S3Store(s3)
    assert path is not None
    return LocalStore(path)
