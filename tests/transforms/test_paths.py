"""transforms/paths.py: a folder named with glob characters is listed and its
files deleted literally, on local disk (absolute and relative), gs:// and
s3://, while a sibling that Beam's glob reading of the name matches
(`a1bc` for `a[1]*?`) is never listed or touched."""
import pytest
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from transforms.paths import delete_files, delete_present, file_metadata, list_files, literal

NAME, SIBLING = "a[1]*?", "a1bc"
FILES = ["_state/seen/r1.parquet", "_state/seen/.r2.parquet.0f.inprogress", "_state/runs/r2.json",
         "stories/date=2021-09-28/r1-000.parquet", "stories/date=2021-09-29/r2-000.parquet"]


def put(path, data):
    with FileSystems.create(path) as handle:  # creates local folders too
        handle.write(data)


def populate(root):
    """NAME and its SIBLING under `root`, with the same files."""
    for folder in (NAME, SIBLING):
        for name in FILES:
            put(f"{root}/{folder}/{name}", folder.encode())
    return f"{root}/{NAME}"


def check_listing_and_deleting(out):
    below = lambda paths: [p[len(out) + 1:] for p in paths]  # noqa: E731
    assert below(list_files(out, "_state/seen", "*.parquet")) == ["_state/seen/r1.parquet"]
    assert below(list_files(out, "stories", "date=*", "*.parquet")) == FILES[3:]
    assert below(list_files(out, "stories", "date=*", "r2-*.parquet")) == FILES[4:]
    assert below(list_files(out, "_state", "*", "*")) == sorted(FILES[:3])
    assert list_files(out, "fetches", "date=*", "*.parquet") == []          # absent folder
    metas = file_metadata(out, "_state/runs", "*.json")
    assert [m.size_in_bytes for m in metas] == [len(NAME)]

    delete_files([f"{out}/{FILES[0]}", f"{out}/{FILES[3]}"])
    assert below(list_files(out, "**")) == sorted(FILES[1:3] + FILES[4:])
    sibling = out[: -len(NAME)] + SIBLING
    assert len(list_files(sibling, "**")) == len(FILES)                     # untouched


@pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")  # Beam compiling `[[]`
def test_literal_quotes_each_glob_character_and_matches_only_that_path(tmp_path):
    assert literal("gs://b/out[1]*?/x]") == "gs://b/out[[]1][*][?]/x]"
    out = populate(str(tmp_path))
    found = FileSystems.match([literal(f"{out}/{FILES[0]}")])[0].metadata_list
    assert [m.path for m in found] == [f"{out}/{FILES[0]}"]


def test_local_folder_named_with_glob_characters(tmp_path):
    check_listing_and_deleting(populate(str(tmp_path)))


def test_relative_local_folder_named_with_glob_characters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    populate(".")
    check_listing_and_deleting(NAME)
    assert sorted(p.name for p in tmp_path.iterdir()) == [SIBLING, NAME]


def test_deleting_a_missing_local_file_is_an_error_naming_it(tmp_path):
    missing = f"{tmp_path}/{NAME}/gone.parquet"
    with pytest.raises(BeamIOError, match="gone.parquet"):
        delete_files([missing])


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_bucket_folder_named_with_glob_characters(scheme, request):
    store = request.getfixturevalue({"gs": "gcs", "s3": "s3"}[scheme])
    FileSystems.set_options(PipelineOptions(store.use_from_beam()))
    check_listing_and_deleting(populate(f"{scheme}://{store.bucket}/paths-{scheme}"))


@pytest.mark.parametrize("scheme", ["local", "gs", "s3"])
def test_delete_present_reports_only_what_it_deleted(scheme, request, tmp_path):
    # What another run removed first is passed over, not reported.
    if scheme == "local":
        root = str(tmp_path)
    else:
        store = request.getfixturevalue({"gs": "gcs", "s3": "s3"}[scheme])
        FileSystems.set_options(PipelineOptions(store.use_from_beam()))
        root = f"{scheme}://{store.bucket}/present-{scheme}"
    out = populate(root)
    here, gone = f"{out}/{FILES[0]}", f"{out}/{FILES[2]}"
    delete_files([gone])
    assert delete_present([here, gone]) == [here]
    assert delete_present([here, gone]) == []
    assert not FileSystems.exists(here)
    assert delete_present([]) == []


def test_delete_present_raises_for_what_is_not_a_missing_file(tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(BeamIOError, match="a-folder"):
        delete_present([str(folder)])
