"""Any name a filesystem can hold works as OUT, glob characters included:
whole batch runs into `out[1]*?` on local disk (absolute and relative) and
s3:// (moto), `out[1]*` on gs:// (gcp-storage-emulator). Files are seen
through pyarrow's own filesystems, not through the project's listing.

Each run sequence proves, for its filesystem: the write probe is deleted;
a `--run-id` re-run removes the earlier attempt's files (and only those:
a sibling folder the glob would match keeps its file); a later run writes
nothing new (the state is found by listing); the stories read back with
pandas."""
import pandas as pd
import pyarrow.fs
import pytest

from tests.support.sample import ASIA, WIRE, run, serve_sample

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "out[1]*?"
SIBLING = "out1ab"   # what Beam's glob reading of NAME matches: must never be touched
# gcp-storage-emulator puts object names unquoted into its download links, so
# it cannot serve a name with `?` (it starts the query); Google's service
# quotes them.
BUCKET_NAMES = {"gs": "out[1]*", "s3": NAME}
# The retry sees other feeds: the wire story a day earlier and the Korean story
# gone, so the first attempt's date=2021-09-28 file must go.
MOVED_WIRE = WIRE.replace("<pubDate>Tue, 28 Sep 2021 01:00:00 GMT</pubDate>",
                          "<pubDate>Mon, 27 Sep 2021 01:00:00 GMT</pubDate>")
KOREAN = ASIA[ASIA.index("<entry><title>북한"):ASIA.index("<entry><title>Pyongyang")]


class Place:
    """Where OUT lives: the --output argument, and the same folder as seen by
    pyarrow (`fs`, `base`), which knows nothing of glob patterns."""

    def __init__(self, output, fs, base, beam_args=()):
        self.output, self.fs, self.base, self.beam_args = output, fs, base, list(beam_args)
        self.sibling = base.rsplit("/", 1)[0] + "/" + SIBLING

    def files(self, folder=None):
        """Every file below OUT (or `folder`), relative to it."""
        folder = folder or self.base
        selector = pyarrow.fs.FileSelector(folder, recursive=True, allow_not_found=True)
        return sorted(info.path[len(folder) + 1:] for info in self.fs.get_file_info(selector)
                      if info.type == pyarrow.fs.FileType.File)

    def stories(self):
        return pd.read_parquet(f"{self.base}/stories", filesystem=self.fs)

    def put(self, path, data):
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(path) as handle:
            handle.write(data)

    def read(self, path):
        with self.fs.open_input_stream(path) as handle:
            return handle.read()


def run_sequence(place, feed_server, tmp_path, capsys):
    feeds, topics = serve_sample(feed_server, tmp_path)
    not_ours = f"{place.sibling}/stories/date=2021-09-28/daily-000.parquet"
    place.put(not_ours, b"another folder's file")

    def newswatch(run_id):
        capsys.readouterr()
        code = run(feeds, topics, place.output, "--run-id", run_id, *place.beam_args)
        return code, capsys.readouterr()

    code, out = newswatch("daily")
    assert code == 0, out.err[-2000:]
    assert len(place.stories()) == 3
    assert "stories/date=2021-09-28/daily-000.parquet" in place.files()

    feed_server.add("/wire.xml", MOVED_WIRE)
    feed_server.add("/asia.atom", ASIA.replace(KOREAN, ""), etag='"asia-v2"')
    code, out = newswatch("daily")
    assert code == 0, out.err[-2000:]
    assert "replaced run daily" in out.out
    stories = place.stories()
    assert len(stories) == 2 and stories.story_id.is_unique and set(stories.run_id) == {"daily"}
    dated = [f for f in place.files() if f.startswith("stories/date=2021")]
    assert dated == ["stories/date=2021-09-27/daily-000.parquet"]

    code, out = newswatch("next")
    assert code == 0, out.err[-2000:]
    assert "state: 2 feeds remembered" in out.out and "WARNING" not in out.out
    assert "written 0" in out.out
    assert len(place.stories()) == 2 and set(place.stories().run_id) == {"daily"}
    assert [f for f in place.files() if f.startswith("_state/seen/")] == [
        "_state/seen/daily.parquet", "_state/seen/next.parquet"]

    leftovers = [f for f in place.files() if f.rsplit("/", 1)[-1].startswith(".newswatch-probe-")
                 or f.endswith(".inprogress")]
    assert leftovers == []                       # write probes and temporaries deleted
    assert place.read(not_ours) == b"another folder's file"
    assert place.files(place.sibling) == ["stories/date=2021-09-28/daily-000.parquet"]


def test_local_folder_with_glob_characters(feed_server, tmp_path, capsys):
    out = tmp_path / NAME
    run_sequence(Place(str(out), pyarrow.fs.LocalFileSystem(), str(out)), feed_server, tmp_path, capsys)


def test_relative_local_folder_with_glob_characters(feed_server, tmp_path, capsys, monkeypatch):
    # Beam's match lists from the parent of the first glob character: for a
    # relative `out[1]*?` that is "", which lists nothing.
    monkeypatch.chdir(tmp_path)
    place = Place(NAME, pyarrow.fs.LocalFileSystem(), str(tmp_path / NAME))
    run_sequence(place, feed_server, tmp_path, capsys)


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_bucket_folder_with_glob_characters(scheme, request, feed_server, tmp_path, capsys):
    store = request.getfixturevalue({"gs": "gcs", "s3": "s3"}[scheme])
    beam_args = store.use_from_beam()
    folder = f"names-{scheme}/{BUCKET_NAMES[scheme]}"
    place = Place(f"{scheme}://{store.bucket}/{folder}", store.arrow_fs(), f"{store.bucket}/{folder}",
                  beam_args)
    run_sequence(place, feed_server, tmp_path, capsys)
