"""Beam's FileSystems seen through pyarrow's filesystem interface, read-only.

pipeline.dataset reads gs:// and s3:// outputs with pyarrow.dataset (for
partition pruning and predicate pushdown); through this handler it reaches
them with the same clients and options as the pipeline that wrote them
(`FileSystems.set_options`: --s3_endpoint_url, credentials ...).

pyarrow sees paths without the scheme (`bucket/out/stories`), as with its own
object-store filesystems; the handler puts the scheme back.
"""
from __future__ import annotations

from typing import List

import pyarrow as pa
import pyarrow.fs as pafs
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.paths import file_metadata, literal


def beam_filesystem(scheme: str) -> pafs.PyFileSystem:
    """A pyarrow filesystem that reads `scheme`:// paths through Beam."""
    return pafs.PyFileSystem(BeamFileSystemHandler(scheme))


class BeamFileSystemHandler(pafs.FileSystemHandler):
    """Listing, file info and reading; every write raises."""

    def __init__(self, scheme: str):
        self.scheme = scheme

    def _uri(self, path: str) -> str:
        return f"{self.scheme}://{path.strip('/')}"

    def _path(self, uri: str) -> str:
        return uri[len(self.scheme) + 3:]

    def get_type_name(self) -> str:
        return f"beam-{self.scheme}"

    def equals(self, other) -> bool:
        return isinstance(other, BeamFileSystemHandler) and other.scheme == self.scheme

    def normalize_path(self, path: str) -> str:
        return path

    def get_file_info(self, paths: List[str]) -> List[pafs.FileInfo]:
        infos = []
        for path in paths:
            uri = self._uri(path)
            found = [m for m in FileSystems.match([literal(uri)])[0].metadata_list if m.path == uri]
            if found:
                infos.append(self._file_info(found[0]))
            elif self._files_below(uri, first_only=True):
                infos.append(pafs.FileInfo(path, pafs.FileType.Directory))
            else:
                infos.append(pafs.FileInfo(path, pafs.FileType.NotFound))
        return infos

    def get_file_info_selector(self, selector: pafs.FileSelector) -> List[pafs.FileInfo]:
        base = selector.base_dir.strip("/")
        files = self._files_below(self._uri(base))
        if not files:
            if selector.allow_not_found:
                return []
            raise FileNotFoundError(self._uri(base))
        infos, folders = [], set()
        for meta in files:
            relative = self._path(meta.path)[len(base) + 1:]
            parts = relative.split("/")
            # Object stores have no folders: the ones a file's key implies are listed too.
            for depth in range(1, len(parts) if selector.recursive else min(len(parts), 2)):
                folders.add("/".join(parts[:depth]))
            if selector.recursive or len(parts) == 1:
                infos.append(self._file_info(meta))
        infos += [pafs.FileInfo(f"{base}/{folder}", pafs.FileType.Directory) for folder in sorted(folders)]
        return infos

    def _files_below(self, uri: str, first_only: bool = False):
        try:
            if first_only:
                return next(iter(FileSystems.get_filesystem(uri)._list(uri + "/")), None) is not None
            return file_metadata(uri, "**")
        except Exception:
            return [] if not first_only else False

    def _file_info(self, meta) -> pafs.FileInfo:
        return pafs.FileInfo(self._path(meta.path), pafs.FileType.File, size=meta.size_in_bytes,
                             mtime=meta.last_updated_in_seconds or None)

    def open_input_file(self, path: str):
        handle = FileSystems.open(self._uri(path), compression_type=CompressionTypes.UNCOMPRESSED)
        return pa.PythonFile(handle, mode="r")

    def open_input_stream(self, path: str):
        return self.open_input_file(path)

    def _read_only(self, *args, **kwargs):
        raise OSError(f"{self.get_type_name()}: this filesystem only reads")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only
