"""transforms/rules_archive.py: the names under OUT/_rules/, and storing a
topics file once per version, on local disk (gs:// is in
tests/pipeline/test_rules_archive.py)."""
import pytest

from pipeline.config import load_topics, load_topics_file
from transforms import rules_archive
from transforms.topics import Topic, compile_rules, topics_version
from tests.support.sample import TOPICS


def version(topics):
    return topics_version(compile_rules(topics))


def test_names_of_stored_versions():
    assert rules_archive.version_of("0123456789abcdef.yaml") == "0123456789abcdef"
    for name in (".0123456789abcdef.yaml.5f3a.inprogress", "0123456789ABCDEF.yaml", "0123456789abcde.yaml",
                 "0123456789abcdef.yml", "notes.txt"):
        assert rules_archive.version_of(name) is None, name
    assert rules_archive.rules_path("gs://b/out/", "0123456789abcdef") == "gs://b/out/_rules/0123456789abcdef.yaml"
    with pytest.raises(ValueError, match="not a topics version"):
        rules_archive.rules_path("out", "../../etc/passwd")


def test_a_topics_file_is_stored_as_given_once(tmp_path):
    # A byte order mark, comments and CRLF line ends: read past, stored as they are.
    data = b"\xef\xbb\xbf# our rules\r\n" + TOPICS.replace("\n", "\r\n").encode("utf-8")
    (tmp_path / "topics.yaml").write_bytes(data)
    given = load_topics_file(str(tmp_path / "topics.yaml"))
    assert given.data == data and given.topics == tuple(load_topics(str(tmp_path / "topics.yaml")))
    out = str(tmp_path / "out")
    path = rules_archive.store_rules(out, given.topics, given.data)
    assert path == f"{out}/_rules/{version(given.topics)}.yaml"
    assert (tmp_path / "out" / "_rules" / f"{version(given.topics)}.yaml").read_bytes() == data
    # same rules, other comments: the first file of a version stays
    assert rules_archive.store_rules(out, given.topics, b"# other comments\n" + TOPICS.encode()) is None
    assert rules_archive.read_rules_file(out, version(given.topics)) == data
    assert [p.name for p in (tmp_path / "out" / "_rules").iterdir()] == [f"{version(given.topics)}.yaml"]


def test_topics_given_in_code_are_stored_as_a_file_that_loads_back_to_the_same_rules(tmp_path):
    topics = [Topic("dprk", '"North Korea" OR 북한'), Topic("corée", "Corée NEAR/3 nord", fold_accents=True)]
    path = rules_archive.store_rules(str(tmp_path), topics)
    assert [t for t in load_topics(path)] == topics
    assert path.endswith(f"/_rules/{version(topics)}.yaml")


def test_reading_a_version_that_is_not_stored(tmp_path):
    with pytest.raises(FileNotFoundError, match="no rules file"):
        rules_archive.read_rules_file(str(tmp_path), "0123456789abcdef")


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path):
    import os

    folder = tmp_path / "out" / "_rules"
    folder.mkdir(parents=True)
    names = [f".0123456789abcdef.yaml.{c * 32}.inprogress" for c in "abc"]
    for name in names:
        (folder / name).write_bytes(b"half")
    (folder / ".notes.inprogress").write_bytes(b"someone else's")
    now = (folder / names[0]).stat().st_mtime
    os.utime(folder / names[0], (now - 3600, now - 3600))                 # a killed run's
    os.utime(folder / names[1], (now - rules_archive.STALE_AFTER_S - 5,) * 2)
    assert [rules_archive.is_temporary(n) for n in names] == [True] * 3
    assert not rules_archive.is_temporary("0123456789abcdef.yaml") and not rules_archive.is_temporary(".x.inprogress")
    removed = rules_archive.remove_stale_temporaries(str(tmp_path / "out"), now=now)
    assert sorted(p.rsplit("/", 1)[-1] for p in removed) == sorted(names[:2])
    assert sorted(p.name for p in folder.iterdir()) == sorted([names[2], ".notes.inprogress"])
    # storing rules cleans up too
    os.utime(folder / names[2], (now - 3600, now - 3600))
    topics = (Topic("a", "alpha"),)
    rules_archive.store_rules(str(tmp_path / "out"), topics)
    assert sorted(p.name for p in folder.iterdir()) == sorted([".notes.inprogress", f"{version(topics)}.yaml"])


def test_a_stale_temporary_that_cannot_be_deleted_raises_and_is_not_reported(tmp_path):
    # Root may delete any file but an immutable one (chattr +i): a failure
    # other than "already gone" must surface, not pass as removed.
    import os
    import subprocess

    from apache_beam.io.filesystem import BeamIOError

    folder = tmp_path / "out" / "_rules"
    folder.mkdir(parents=True)
    stuck = folder / f".0123456789abcdef.yaml.{'d' * 32}.inprogress"
    stuck.write_bytes(b"half")
    old = stuck.stat().st_mtime - 3600
    os.utime(stuck, (old, old))
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(stuck)], capture_output=True).returncode:
            pytest.skip("chattr +i is not available here")
    else:
        folder.chmod(0o500)
    try:
        with pytest.raises(BeamIOError, match="Delete operation failed"):
            rules_archive.remove_stale_temporaries(str(tmp_path / "out"))
        assert stuck.exists()
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(stuck)], check=True)
        else:
            folder.chmod(0o700)
