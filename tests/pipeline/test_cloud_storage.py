"""The whole pipeline on object stores: feed list, topics, a feed file and OUT
on gs:// (gcp-storage-emulator) and s3:// (moto server), twice, with the
state between the runs kept there too; read back with pandas over pyarrow."""
import pandas as pd
import pytest
from apache_beam.io.filesystems import FileSystems

from pipeline.cli import main
from tests.support.sample import ASIA, TOPICS, WIRE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def put(path, text):
    with FileSystems.create(path) as handle:
        handle.write(text.encode("utf-8"))


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_feeds_topics_and_output_on_object_storage(scheme, request, feed_server, capsys):
    store = request.getfixturevalue({"gs": "gcs", "s3": "s3"}[scheme])
    beam_args = store.use_from_beam()
    FileSystems.set_options(__import__("apache_beam").options.pipeline_options.PipelineOptions(beam_args))
    root = f"{scheme}://{store.bucket}/{request.node.name.replace('[', '-').rstrip(']')}"
    feed_server.add("/asia.atom", ASIA, etag='"a1"', headers={"Content-Type": "application/atom+xml"})
    put(f"{root}/config/wire.xml", WIRE)     # a feed stored next to the list, by relative path
    put(f"{root}/config/feeds.txt", f"wire.xml\n{feed_server.url('/asia.atom')}\n")
    put(f"{root}/config/topics.yaml", TOPICS)
    args = ["run", "--feeds", f"{root}/config/feeds.txt", "--topics", f"{root}/config/topics.yaml",
            "--output", f"{root}/out", "--runner", "DirectRunner", "--allow-private-addresses",
            *beam_args]

    assert main(args + ["--run-id", "first"]) == 0
    assert "-> ok" in capsys.readouterr().out
    assert main(args + ["--run-id", "second"]) == 0
    summary = capsys.readouterr().out
    assert "state: 2 feeds remembered" in summary and "WARNING" not in summary

    fs, base = store.arrow_fs(), f"{store.bucket}/{root.split('/', 3)[3]}/out"
    stories = pd.read_parquet(f"{base}/stories", filesystem=fs)
    assert len(stories) == 3 and set(stories.run_id) == {"first"}
    assert str(stories["published_at"].dtype) == "datetime64[us, UTC]"
    assert sorted(stories["date"].astype(str).unique())[0] == "2021-09-28"
    fetches = pd.read_parquet(f"{base}/fetches", filesystem=fs)
    second = fetches[fetches.run_id == "second"].set_index("feed_url")
    assert second.loc[feed_server.url("/asia.atom"), "status"] == 304
    assert second.loc[f"{root}/config/wire.xml", "status"] == 200
    state = [m.path.rsplit("/", 2)[-2:] for m in FileSystems.match([f"{root}/out/_state/*/*"])[0].metadata_list]
    assert sorted(state) == [["clusters", "first.parquet"], ["clusters", "second.parquet"],
                             ["feeds", "first.parquet"], ["feeds", "second.parquet"],
                             ["seen", "first.parquet"], ["seen", "second.parquet"]]
