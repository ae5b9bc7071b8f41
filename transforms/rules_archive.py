"""The rules archive: the topics file each run used, kept under OUT once per
version of the rules, so that the `topics_version` on a story row can always
be turned back into the rules that tagged it.

    OUT/_rules/<topics_version>.yaml   the topics file as the run was given it, byte for byte

A run stores its file before its pipeline starts (after the command line has
validated it), only when no file of that version is there yet: the first
file seen with a version is the one kept. Two files with the same version
compile to the same rules (transforms/topics/rules.py topics_version), so
they differ at most in comments, quoting and layout. The file is written
under a hidden name and renamed (transforms/state/store.py
write_atomically), through Beam's FileSystems: local disk, gs:// and s3://.
A run killed between the two leaves the hidden temporary
(`.<version>.yaml.<32 hex>.inprogress`): the listing never takes it for a
version, and the next run that stores rules removes it once it is older
than STALE_AFTER_S (remove_stale_temporaries). Writing one takes
milliseconds, and every run stores its rules inside the output's lease, so
a temporary that old is no running writer's: the age also spares a run that
lost its lease while frozen and is writing its own now.

Nothing reads `_rules/` to write or read stories: deleting it loses the
history of the rules, not data. `newswatch rules` (pipeline/rules_command.py)
and `pipeline.dataset.read_rules` list it beside the runs/ table.

The names are pure and import no Beam (pipeline/dataset.py uses them);
storing and reading go through Beam's FileSystems, imported when called.
"""
from __future__ import annotations

import re
from typing import Iterable, List, Optional

import yaml

RULES_FOLDER = "_rules"
SUFFIX = ".yaml"
# topics_version: 16 lower-case hex digits.
_VERSION = re.compile(r"[0-9a-f]{16}")
# write_atomically's temporary for a rules file.
_TEMPORARY = re.compile(r"\.[0-9a-f]{16}\.yaml\.[0-9a-f]{32}\.inprogress")
# A temporary older than this is a killed run's (seconds).
STALE_AFTER_S = 600.0


# --------------------------------------------------------------------------- names (pure)


def is_version(text: str) -> bool:
    """Whether `text` has the shape of a topics_version."""
    return bool(_VERSION.fullmatch(text))


def file_name(version: str) -> str:
    if not is_version(version):
        raise ValueError(f"not a topics version: {version!r} (16 hex digits)")
    return version + SUFFIX


def version_of(name: str) -> Optional[str]:
    """The version a file name under _rules/ stores, or None (a temporary
    `.<name>.<random>.inprogress` file, anything else put there)."""
    if not name.endswith(SUFFIX):
        return None
    version = name[: -len(SUFFIX)]
    return version if is_version(version) else None


def is_temporary(name: str) -> bool:
    """Whether a file name under _rules/ is a rules file being written (or
    left by a run killed while writing it)."""
    return bool(_TEMPORARY.fullmatch(name))


def rules_path(output: str, version: str) -> str:
    """OUT/_rules/<version>.yaml."""
    return f"{output.rstrip('/')}/{RULES_FOLDER}/{file_name(version)}"


def topics_yaml(topics: Iterable) -> bytes:
    """A topics file for topics given in code (transforms.topics.Topic), when
    a run has no file of its own: it loads back to the same rules."""
    entries = []
    for topic in topics:
        entry = {"name": topic.name, "query": topic.query}
        if topic.fold_accents:
            entry["fold_accents"] = True
        entries.append(entry)
    return yaml.safe_dump({"topics": entries}, allow_unicode=True, sort_keys=False).encode("utf-8")


# --------------------------------------------------------------------------- storing and reading


def store_rules(output: str, topics, data: bytes = b"") -> Optional[str]:
    """Stores the topics file `data` (the bytes `topics` were read from;
    empty: written from `topics`) as OUT/_rules/<version>.yaml unless that
    file exists. Returns the path written, or None when it was there."""
    from apache_beam.io.filesystems import FileSystems

    from transforms.state.store import write_atomically
    from transforms.topics import compile_rules, topics_version

    path = rules_path(output, topics_version(compile_rules(topics)))
    remove_stale_temporaries(output)
    if FileSystems.exists(path):
        return None
    write_atomically(path, data or topics_yaml(topics))
    return path


def remove_stale_temporaries(output: str, now: Optional[float] = None,
                             older_than_s: float = STALE_AFTER_S) -> List[str]:
    """Deletes the rules temporaries under OUT/_rules/ last written more
    than `older_than_s` before `now` (seconds since the epoch): what runs
    killed while storing their rules left. Returns the paths deleted (not
    those another run removed first); storage trouble raises."""
    import time

    from transforms.paths import delete_present, file_metadata

    now = time.time() if now is None else now
    stale = [meta.path for meta in file_metadata(f"{output.rstrip('/')}/{RULES_FOLDER}", "*")
             if is_temporary(meta.path.rsplit("/", 1)[-1])
             and meta.last_updated_in_seconds and now - meta.last_updated_in_seconds > older_than_s]
    return delete_present(stale)   # one another run removed first is passed over; other failures raise


def read_rules_file(output: str, version: str) -> bytes:
    """The stored topics file of `version`; FileNotFoundError if there is none."""
    from apache_beam.io.filesystems import FileSystems

    path = rules_path(output, version)
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"no rules file {path}")
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        return handle.read()
