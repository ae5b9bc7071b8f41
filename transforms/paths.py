"""Paths under OUT through Beam's FileSystems: the folder taken literally,
glob syntax only in the parts meant as patterns (`date=*`, `*.parquet`).

Any name a filesystem can hold is a valid OUT, `[`, `]`, `*` and `?`
included (local disk, gs:// and s3:// all hold them). Beam 2.77 reads some
paths as glob patterns, with its own syntax (FileSystem.translate_pattern:
fnmatch, but `*` stops at `/` and `**` does not; a quote is only possible as
a one-character set such as `[*]`):

- FileSystem.match lists from the text before the first `[`, `*` or `?`
  (on local disk: the whole tree of that text's parent folder, and nothing at
  all for a relative path such as `out[1]`), then filters with the pattern;
- delete matches its argument on local disk ("No files found" for `out[1]/x`)
  and on gs://, where `out[1]/x` deletes `out1/x` and keeps `out[1]/x`; s3://
  (and Azure, HDFS) delete the path as given;
- exists, open, create, rename and mkdirs take the path as given everywhere.

So listing and deleting go through here; everything else may use
FileSystems directly with a plain path.
"""
from __future__ import annotations

import os
import re
import warnings
from typing import Iterable, Iterator, List

from apache_beam.io.filesystem import BeamIOError, FileMetadata, FileSystem
from apache_beam.io.filesystems import FileSystems

_GLOB_CHARACTER = re.compile(r"([\[*?])")
# Schemes whose FileSystem.delete matches its argument as a pattern (local
# disk does too, but is handled without Beam: see delete_files).
_DELETES_BY_PATTERN = frozenset({"gs"})


def literal(path: str) -> str:
    """The Beam match pattern that matches exactly `path`: each glob character
    quoted as a one-character set (`[` -> `[[]`, `*` -> `[*]`, `?` -> `[?]`).
    A lone `]` is already literal."""
    return _GLOB_CHARACTER.sub(r"[\1]", path)


def file_metadata(folder: str, *glob_parts: str) -> List[FileMetadata]:
    """Metadata of the files under `folder` (taken literally) whose path below
    it matches `glob_parts` joined by `/` (Beam's glob syntax; quote literal
    text that may hold glob characters with `literal`). Sorted by path; none
    while the folder is absent.

    Lists only below `folder` and the leading glob-free folders of the
    pattern (`stories` of `stories/date=*/*.parquet`), however OUT is named."""
    return sorted(_matching(folder, *glob_parts), key=lambda meta: meta.path)


def _matching(folder: str, *glob_parts: str) -> Iterator[FileMetadata]:
    relative = "/".join(part.strip("/") for part in glob_parts)
    head = _GLOB_CHARACTER.split(relative, 1)[0]
    fixed = head.rsplit("/", 1)[0] if "/" in head else ""
    filesystem = FileSystems.get_filesystem(folder)
    root = FileSystems.join(folder, fixed) if fixed else folder
    if not filesystem.has_dirs() and not root.endswith("/"):
        root += "/"  # a key prefix: not the siblings that share the folder's name
    prefix = folder if folder.endswith("/") else folder + "/"
    wanted = re.compile(FileSystem.translate_pattern(relative))
    # _list is the listing FileSystem.match runs on its own choice of root.
    return (meta for meta in filesystem._list(root)
            if meta.path.startswith(prefix) and wanted.match(meta.path[len(prefix):]))


def has_files(folder: str, *glob_parts: str) -> bool:
    """Whether file_metadata(folder, *glob_parts) has any file; the listing
    stops at the first one."""
    return next(_matching(folder, *glob_parts), None) is not None


def list_files(folder: str, *glob_parts: str) -> List[str]:
    """The paths of `file_metadata(folder, *glob_parts)`."""
    return [meta.path for meta in file_metadata(folder, *glob_parts)]


def delete_files(paths: Iterable[str]) -> None:
    """Deletes these files, each path taken literally. Raises BeamIOError
    naming the files that could not be deleted, after trying them all (on
    local disk a missing file is one; object stores ignore it)."""
    paths = list(paths)
    if not paths:
        return
    scheme = FileSystems.get_scheme(paths[0])
    if scheme is None:
        # Beam's local delete would match each path, walking the parent folder
        # of OUT's first glob character: remove the named file itself instead.
        _delete_local(paths)
    elif scheme in _DELETES_BY_PATTERN:
        # `[[]`, the set that quotes `[`, makes Python's re warn "Possible
        # nested set" when Beam compiles the pattern; it means exactly `[`.
        # (Set here, not at import: a caller's catch_warnings may drop it.)
        warnings.filterwarnings("ignore", message="Possible nested set", category=FutureWarning,
                                module=r"apache_beam\.io\.filesystem$")
        FileSystems.delete([literal(path) for path in paths])
    else:
        FileSystems.delete(paths)


def delete_present(paths: Iterable[str]) -> List[str]:
    """Deletes these files, each taken literally, passing over those already
    gone (another run removed them first). Returns the paths it deleted;
    any other failure (permissions, the network) raises BeamIOError after
    all were tried. Object stores delete a missing object without a word, so
    there a path counts as deleted when it existed just before."""
    paths = list(paths)
    if not paths:
        return []
    if FileSystems.get_scheme(paths[0]) is None:
        deleted, failed = [], {}
        for path in paths:
            try:
                os.remove(path)
                deleted.append(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                failed[path] = exc
        if failed:
            raise BeamIOError("Delete operation failed", failed)
        return deleted
    present = [path for path in paths if FileSystems.exists(path)]
    delete_files(present)
    return present


def _delete_local(paths: List[str]) -> None:
    failed = {}
    for path in paths:
        try:
            os.remove(path)
        except OSError as exc:
            failed[path] = exc
    if failed:
        raise BeamIOError("Delete operation failed", failed)


def make_folder(folder: str) -> None:
    """Creates `folder` unless it exists; another worker or run may create it at the same time."""
    if not FileSystems.exists(folder):
        try:
            FileSystems.mkdirs(folder)
        except IOError:
            pass  # created meanwhile by another worker
