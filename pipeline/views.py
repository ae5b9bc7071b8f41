"""Named views: OUT/views/<name>/, what `newswatch retag` publishes
(pipeline/retag.py). One concern: the layout, the pointer, publishing and
cleaning up. Layout contract:

    OUT/views/<name>/_view.json                           the pointer: the one published generation
    OUT/views/<name>/<generation>/stories/date=D/*.parquet the view's stories (stories/'s layout)
    OUT/views/<name>/<generation>/_state/...              the replay's own seen and cluster state
    OUT/views/<name>/<generation>/topics.yaml             the topics file the view was made with

A generation is written whole under a new unique name, and only then does
the pointer name it: the pointer is one small object, replaced atomically
(a rename on local disk; an upload, which appears whole, on gs:// and s3://,
where a folder rename would be a copy and a delete). So a reader that goes
through the pointer sees the old generation or the new one, never a mix,
whenever the retag is killed. A generation the pointer does not name is
invisible (a retag under way, or one that was killed). The pointer is
created only if absent, and replaced only at the version its retag read at
start: two retags of one name that race cannot both publish. Only a retag
that published cleans up, after publishing (remove_superseded): the
generation it replaced stays until the next retag of the name, for readers
still in it.

Deleting a view (delete_view, `newswatch views delete`) first replaces the
pointer, at the version it read, with a tombstone (`{"deleted": true}`):
from then on readers find no such view, and a retag that read the old
pointer cannot publish. Then the generations created before the deletion
go, then the tombstone. A retag that reads a tombstone takes the view as
absent and publishes by creating the pointer, which fails until the
tombstone is gone; its generation, newer than the deletion, is kept.

Reading a pointer needs no Beam (pipeline/dataset.py reads views with
pyarrow alone); writing goes through Beam's filesystems.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Dict, List, Optional

VIEWS_DIR = "views"
POINTER = "_view.json"
TOPICS_FILE = "topics.yaml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_GENERATION = re.compile(r"^g\d{8}T\d{6}Z-[0-9a-f]{8}$")


class ViewError(Exception):
    """A view name that cannot be used, or a pointer that cannot be published."""


class NoSuchView(ViewError):
    """`views delete` of a name with no published view."""


@dataclass
class ViewPointer:
    """The body of OUT/views/<name>/_view.json."""

    name: str
    generation: str
    topics_version: str
    topics_file: str                     # the generation's copy of the topics file, below the view
    topics_text: str                     # that file's text, as given
    source_output: str
    since: Optional[str] = None
    until: Optional[str] = None
    runs: List[str] = field(default_factory=list)            # commit units replayed, in order
    skipped: Dict[str, str] = field(default_factory=dict)    # unit or run -> why it was not replayed
    created_at: str = ""
    counts: Dict[str, object] = field(default_factory=dict)  # entries, stories, by topic
    previous: Optional[str] = None       # the generation this one replaced, kept until the next retag
    warnings: List[str] = field(default_factory=list)        # where the view may differ from the live runs

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> "ViewPointer":
        body = json.loads(data.decode("utf-8"))
        known = {name: body[name] for name in cls.__dataclass_fields__ if name in body}
        return cls(**known)


DELETED = "deleted"   # the key of a tombstone: a pointer whose view is being deleted


def tombstone(name: str, deleted_at: datetime, generations: List[str]) -> bytes:
    """The pointer's body while its view is being deleted: when, and the
    generations the pointer named (its own and `previous`)."""
    return json.dumps({DELETED: True, "name": name, "deleted_at": _iso(deleted_at),
                       "generations": generations}, sort_keys=True).encode("utf-8")


def is_tombstone(body: dict) -> bool:
    return bool(body.get(DELETED))


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ViewError(f"view name {name!r}: use letters, digits, '-', '_' and '.' (not first), "
                        f"at most 100 characters")
    return name


def default_name(topics_version: str) -> str:
    return f"retag-{topics_version}"


def new_generation(now: Optional[datetime] = None) -> str:
    """A new generation id: its UTC time, then a random part."""
    now = now or datetime.now(timezone.utc)
    return f"g{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


def is_generation(name: str) -> bool:
    return bool(_GENERATION.match(name))


def view_dir(output: str, name: str) -> str:
    return f"{output.rstrip('/')}/{VIEWS_DIR}/{name}"


def pointer_path(output: str, name: str) -> str:
    return f"{view_dir(output, name)}/{POINTER}"


def generation_dir(output: str, name: str, generation: str) -> str:
    """The generation's root: laid out like an output (stories/, _state/)."""
    return f"{view_dir(output, name)}/{generation}"


def stories_dir(output: str, name: str, generation: str) -> str:
    return f"{generation_dir(output, name, generation)}/stories"


# ---------------------------------------------------------------- with Beam's filesystems

class Published(Exception):
    """The pointer changed since this retag read it: another retag published."""


def read_pointer(output: str, name: str):
    """(ViewPointer, version) of the published view, or (None, None) when
    there is none or it is being deleted (a tombstone)."""
    from transforms.state import conditional

    found = conditional.read(pointer_path(output, name))
    if found is None or is_tombstone(json.loads(found.data.decode("utf-8"))):
        return None, None
    return ViewPointer.from_json(found.data), found.version


def publish(output: str, pointer: ViewPointer, version: Optional[str]) -> None:
    """Makes `pointer.generation` the view: creates the pointer when
    `version` is None, else replaces it if still at `version`. Raises
    Published when another retag got there first."""
    from transforms.state import conditional

    path = pointer_path(output, pointer.name)
    if version is None:
        done = conditional.create(path, pointer.to_json())
    else:
        done = conditional.replace(path, pointer.to_json(), version)
    if done is None:
        raise Published(f"view {pointer.name} was published by another retag, or is being deleted, "
                        "meanwhile")


def generations(output: str, name: str) -> List[str]:
    """The generation folders under OUT/views/<name>/, oldest first."""
    from transforms.paths import list_files

    found = set()
    for path in list_files(view_dir(output, name), "*", "**"):
        first = path[len(view_dir(output, name)) + 1:].split("/", 1)[0]
        if is_generation(first):
            found.add(first)
    return sorted(found)


def remove_generation(output: str, name: str, generation: str) -> int:
    """Deletes every file of one generation (and, on local disk, its folders).
    Returns the number of files deleted."""
    import os
    import shutil

    from apache_beam.io.filesystems import FileSystems

    from transforms.paths import delete_files, list_files

    root = generation_dir(output, name, generation)
    if FileSystems.get_scheme(root) in (None, "file"):
        local = root[len("file://"):] if root.startswith("file://") else root
        count = sum(len(files) for _, _, files in os.walk(local))
        shutil.rmtree(local, ignore_errors=True)
        return count
    paths = list_files(root, "**")
    delete_files(paths)
    return len(paths)


def generation_time(generation: str) -> str:
    """The UTC time part of a generation id (`YYYYmmddTHHMMSSZ`), which sorts as time."""
    return generation[1:17]


def remove_superseded(output: str, name: str, mine: str) -> List[str]:
    """After `mine` was published: removes the generations of the view that
    were created before `mine` and that the pointer, as read now, neither
    names nor names as `previous`. So a reader still in the generation
    just replaced finishes there (it goes only at the next retag of the
    name), and generations a later retag is writing stay. A retag whose
    generation is older than `mine` read the pointer before `mine` was
    published, so its publication fails anyway. Returns the generations
    removed."""
    current, _ = read_pointer(output, name)
    keep = {mine}
    if current is not None:
        keep |= {current.generation, current.previous}
    removed = []
    for generation in generations(output, name):
        if generation not in keep and generation_time(generation) < generation_time(mine):
            remove_generation(output, name, generation)
            removed.append(generation)
    return removed


@dataclass
class Deleted:
    """What delete_view did."""

    name: str
    generation: Optional[str]          # the generation the pointer named (None: resumed a deletion)
    removed: List[str]                 # generation folders removed
    kept: List[str]                    # generations newer than the deletion (a retag started since)


def delete_view(output: str, name: str, now: Optional[datetime] = None) -> Deleted:
    """Deletes the view `name`: its pointer first (replaced by a tombstone,
    at the version read, so that readers see no view and a retag that read
    the old pointer cannot publish), then the generations created before the
    deletion, then the tombstone. A deletion killed midway leaves the
    tombstone: the view reads as absent, and deleting it again finishes.
    Raises NoSuchView (no pointer), Published (a retag published between
    the read and the tombstone: nothing was deleted)."""
    from transforms.state import conditional

    path = pointer_path(output, check_name(name))
    found = conditional.read(path)
    if found is None:
        unpublished = generations(output, name)
        raise NoSuchView(f"no view {name} in {output}" + (
            f" ({VIEWS_DIR}/{name}/ holds {len(unpublished)} unpublished generation"
            f"{'s' if len(unpublished) != 1 else ''}: a retag under way or killed; the next retag of the "
            f"name that publishes removes them)" if unpublished else ""))
    body = json.loads(found.data.decode("utf-8"))
    if is_tombstone(body):
        marker, generation = found.data, None
        named = set(body.get("generations") or [])
        stamp = body.get("deleted_at", "")
        since = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else (
            now or datetime.now(timezone.utc))
    else:
        generation = body.get("generation")
        named = {g for g in (generation, body.get("previous")) if g}
        since = now or datetime.now(timezone.utc)
        marker = tombstone(name, since, sorted(named))
        if conditional.replace(path, marker, found.version) is None:
            raise Published(f"view {name} was published by a retag meanwhile: nothing deleted")
    # Generation ids carry their creation time to the second: one made in
    # the deletion's second, and not named by the pointer, may be a retag's
    # that read the tombstone; it stays.
    cutoff = since.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    removed, kept = [], []
    for each in generations(output, name):
        if each in named or generation_time(each) < cutoff:
            remove_generation(output, name, each)
            removed.append(each)
        else:
            kept.append(each)
    # On local disk the folder keeps the pointer's hidden lock file, which
    # is never deleted (transforms/state/conditional.py).
    _remove_tombstone(path, marker)
    return Deleted(name, generation, removed, kept)


def _remove_tombstone(path: str, tombstone_body: bytes) -> None:
    """Removes the pointer if it still holds this deletion's tombstone (only
    a retag's create can follow a tombstone, and only once it is gone)."""
    from transforms.paths import delete_files
    from transforms.state import conditional

    current = conditional.read(path)
    if current is not None and current.data == tombstone_body:
        delete_files([path])


def exists(path: str) -> bool:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.exists(path)


def write_text(path: str, text: str) -> None:
    """A small file written whole (temporary name, then rename)."""
    from transforms.state.store import write_atomically

    write_atomically(path, text.encode("utf-8"))
