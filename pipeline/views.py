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

Deleting a view (delete_view, `newswatch views delete`) lists the
generations, then replaces the pointer, at the version it read, with a
tombstone (`{"deleted": true, "remove": [...]}`) that stores that list: from
then on readers find no such view, and a retag that read the old pointer
cannot publish. Then exactly the listed generations go, then the tombstone
(deleted at its version only). A retag that reads a tombstone takes the view
as absent and publishes by creating the pointer, which fails until the
tombstone is gone; its generation, not in the list, is kept.

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
# gYYYYmmddTHHMMSS[ffffff]Z-<random>: an id without the microseconds names
# a generation too (generation_time counts it from the start of its second).
_GENERATION = re.compile(r"^g(\d{8}T\d{6}(?:\d{6})?)Z-[0-9a-f]{8}$")


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
REMOVE = "remove"     # a tombstone's generations to remove


def tombstone(name: str, deleted_at: datetime, remove: List[str]) -> bytes:
    """The pointer's body while its view is being deleted: when, and the
    generations the deletion removes (listed before the tombstone was
    written, with those the pointer named)."""
    return json.dumps({DELETED: True, "name": name, "deleted_at": _iso(deleted_at),
                       REMOVE: sorted(remove)}, sort_keys=True).encode("utf-8")


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
    """A new generation id: its UTC time to the microsecond (two retags of a
    name often start within one second), then a random part."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"g{now.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}"


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
        # Say what stands in the way now (it may have changed again since).
        now = conditional.read(path)
        if now is None:
            raise Published(f"view {pointer.name} was deleted meanwhile (`newswatch views delete`)")
        if is_tombstone(json.loads(now.data.decode("utf-8"))):
            raise Published(f"view {pointer.name} is being deleted (`newswatch views delete`)")
        raise Published(f"view {pointer.name} was published by another retag meanwhile")


def generations(output: str, name: str) -> List[str]:
    """The generation folders under OUT/views/<name>/, oldest first."""
    from transforms.paths import list_files

    found = set()
    for path in list_files(view_dir(output, name), "*", "**"):
        first = path[len(view_dir(output, name)) + 1:].split("/", 1)[0]
        if is_generation(first):
            found.add(first)
    return sorted(found, key=lambda generation: (generation_time(generation), generation))


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
    """The UTC time part of a generation id (`YYYYmmddTHHMMSSffffff`),
    which sorts as time; an id without microseconds counts from the start
    of its second."""
    return _GENERATION.match(generation).group(1).ljust(21, "0")


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
    generation: Optional[str]          # the generation the pointer named (None: finished an earlier deletion)
    removed: List[str]                 # generation folders removed
    kept: List[str]                    # generations not listed in the tombstone (retags begun since)


# Points where a test can stop a deletion (transforms/phases.py).
DELETE_POINTER_READ = "views-delete-pointer-read"   # the pointer is read, nothing written
DELETE_TOMBSTONED = "views-delete-tombstoned"       # the tombstone is in place, nothing removed


def delete_view(output: str, name: str, now: Optional[datetime] = None) -> Deleted:
    """Deletes the view `name`: lists its generations, replaces the pointer
    at the version read by a tombstone that stores that list (from then on
    readers see no view, and a retag that read the old pointer cannot
    publish), removes exactly the listed generations, then the tombstone at
    the version this deletion wrote or read. No clocks are compared: a
    generation made after the listing (a retag that read the tombstone, or
    one that will fail to publish) is kept. A deletion killed midway leaves
    the tombstone: the view reads as absent, and deleting it again finishes
    from the tombstone's list. Raises NoSuchView (no pointer, or another
    deletion finished meanwhile), Published (a retag published between the
    read and the tombstone: nothing was deleted), ViewError (a tombstone
    without its list)."""
    from transforms import phases
    from transforms.state import conditional

    path = pointer_path(output, check_name(name))
    found = conditional.read(path)
    if found is None:
        unpublished = generations(output, name)
        raise NoSuchView(f"no view {name} in {output}" + (
            f" ({VIEWS_DIR}/{name}/ holds {len(unpublished)} unpublished generation"
            f"{'s' if len(unpublished) != 1 else ''}: a retag under way or killed; the next retag of the "
            f"name that publishes removes them)" if unpublished else ""))
    phases.reached(DELETE_POINTER_READ)
    body = json.loads(found.data.decode("utf-8"))
    generation = None
    if not is_tombstone(body):
        named = {g for g in (body.get("generation"), body.get("previous")) if g}
        marker = tombstone(name, now or datetime.now(timezone.utc), sorted(named | set(generations(output, name))))
        version = conditional.replace(path, marker, found.version)
        if version is None:
            found, body = _after_a_lost_race(output, name, path)
        else:
            generation = body.get("generation")
            found, body = conditional.Versioned(marker, version), json.loads(marker.decode("utf-8"))
    remove = _listed(body, name)
    phases.reached(DELETE_TOMBSTONED)
    removed, kept = [], []
    for each in generations(output, name):
        if each in remove:
            remove_generation(output, name, each)
            removed.append(each)
        else:
            kept.append(each)
    # At the version written or read: if another deletion removed it and a
    # retag has since created the pointer, that pointer stays. On local
    # disk the folder keeps the pointer's hidden lock file, which is never
    # deleted (transforms/state/conditional.py).
    conditional.delete(path, found.version)
    return Deleted(name, generation, removed, kept)


def _after_a_lost_race(output: str, name: str, path: str):
    """The pointer changed between the read and the tombstone: (found, body)
    of another deletion's tombstone, to finish that deletion; else NoSuchView
    (that deletion has finished) or Published (a retag published)."""
    from transforms.state import conditional

    found = conditional.read(path)
    if found is None:
        raise NoSuchView(f"no view {name} in {output} (another `views delete` removed it meanwhile)")
    body = json.loads(found.data.decode("utf-8"))
    if not is_tombstone(body):
        raise Published(f"view {name} was published by a retag meanwhile: nothing deleted")
    return found, body


def _listed(body: dict, name: str) -> set:
    """The generations a tombstone says to remove."""
    if not isinstance(body.get(REMOVE), list):
        raise ViewError(f"view {name} is being deleted, but its tombstone ({VIEWS_DIR}/{name}/{POINTER}) lists "
                        f"no generations to remove: remove {VIEWS_DIR}/{name}/ by hand once no retag of it runs")
    return set(body[REMOVE])


def exists(path: str) -> bool:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.exists(path)


def write_text(path: str, text: str) -> None:
    """A small file written whole (temporary name, then rename)."""
    from transforms.state.store import write_atomically

    write_atomically(path, text.encode("utf-8"))
