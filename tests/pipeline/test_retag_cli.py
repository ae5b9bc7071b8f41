"""retag's command line: a runner that does not exist, or a dry run sent to
Dataflow, stops before anything is written; a bad Beam option value is one
line, as for `run`."""
from __future__ import annotations

import pytest

from pipeline.cli import main
from tests.support.paths import ROOT

SEEDS = ROOT / "seeds"


@pytest.fixture(scope="module")
def archived(tmp_path_factory):
    out = tmp_path_factory.mktemp("retag-cli") / "out"
    code = main(["run", "--feeds", str(SEEDS / "feeds.opml"), "--topics", str(SEEDS / "topics.yaml"),
                 "--output", str(out), "--run-id", "r1", "--runner", "DirectRunner", "--quiet"])
    assert code == 0 and any((out / "entries").rglob("*.parquet"))
    return out


def retag(out, *extra):
    return main(["retag", "--topics", str(SEEDS / "topics.yaml"), "--output", str(out),
                 "--name", "v", "--quiet", *extra])


def test_an_unknown_runner_stops_before_anything_is_written(archived, capsys):
    capsys.readouterr()
    assert retag(archived, "--runner", "NoSuchRunner") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NoSuchRunner" in err
    assert not (archived / "views").exists()


def test_a_dry_run_on_dataflow_is_refused(archived, capsys):
    capsys.readouterr()
    assert retag(archived, "--dry-run", "--runner", "DataflowRunner") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dry-run" in err
    assert not (archived / "views").exists()


@pytest.mark.parametrize("command", ["run", "retag"])
def test_a_bad_beam_option_value_is_one_line(archived, capsys, command):
    capsys.readouterr()
    if command == "run":
        code = main(["run", "--feeds", str(SEEDS / "feeds.opml"), "--topics", str(SEEDS / "topics.yaml"),
                     "--output", str(archived), "--runner", "DirectRunner", "--direct_num_workers=abc"])
    else:
        code = retag(archived, "--runner", "DirectRunner", "--direct_num_workers=abc")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "direct_num_workers" in err
