"""Dataflow readiness without Google: the Flex Template's metadata agrees with
the command line, and the job builds offline from the template's entry point
(DataflowRunner with --template_location to a local file, local staging,
--dataflow_endpoint on localhost, --no_auth, --setup_file from the repo root)."""
import json
import os
import subprocess
import sys
import tarfile

import pytest
from apache_beam.portability.api import beam_runner_api_pb2

from pipeline.cli import LOCAL_ONLY_OPTIONS, build_parser
from tests.support.paths import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TEMPLATE = ROOT / "pipeline" / "flex_template"


def run_options():
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    return [a for a in run._actions if a.option_strings and a.option_strings[0] != "-h"]


def test_metadata_lists_every_parameter_of_the_command_line_with_its_help():
    params = {p["name"]: p for p in json.loads((TEMPLATE / "metadata.json").read_text())["parameters"]}
    options = {a.option_strings[0]: a for a in run_options()
               if a.option_strings[0] not in LOCAL_ONLY_OPTIONS}
    assert sorted(params) == sorted(name[2:].replace("-", "_") for name in options)
    for name, action in options.items():
        param = params[name[2:].replace("-", "_")]
        # the launcher passes --<name>=value: the parser must accept that spelling
        assert "--" + param["name"] in action.option_strings
        assert param["helpText"] == action.help and param["label"]
        assert param["isOptional"] is (not action.required)
    assert LOCAL_ONLY_OPTIONS == ("--every",)  # a template launch is one cycle; schedule it


def test_the_flex_template_entry_point_builds_the_dataflow_job_offline(tmp_path):
    for folder in ("staging", "temp"):
        (tmp_path / folder).mkdir()
    job = tmp_path / "job.json"
    proc = subprocess.run(
        [sys.executable, str(TEMPLATE / "main.py"),
         "--feeds=seeds/feeds.opml", "--topics=seeds/topics.yaml", f"--output={tmp_path / 'out'}",
         "--lookback_days=7", "--runner=DataflowRunner", "--project=newswatch-test",
         "--region=europe-west1", f"--temp_location={tmp_path / 'temp'}",
         f"--staging_location={tmp_path / 'staging'}", f"--template_location={job}",
         "--dataflow_endpoint=http://localhost:1", "--no_auth", "--setup_file=./setup.py"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "submitted to DataflowRunner" in proc.stdout

    description = json.loads(job.read_text())
    assert description["type"] == "JOB_TYPE_BATCH"
    options = {d["key"]: d["value"] for d in description["environment"]["sdkPipelineOptions"]["display_data"]}
    assert options["project"] == "newswatch-test" and options["region"] == "europe-west1"
    assert options["setup_file"] == "./setup.py"
    staged = {p["name"] for pool in description["environment"]["workerPools"] for p in pool["packages"]}
    assert "workflow.tar.gz" in staged
    # the staged package is this project, built from setup.py
    with tarfile.open(tmp_path / "staging" / "workflow.tar.gz") as tar:
        names = {n.split("/", 1)[-1] for n in tar.getnames()}
    assert {"setup.py", "pipeline/cli.py", "transforms/state/store.py", "transforms/feedstate.py"} <= names

    pipeline = beam_runner_api_pb2.Pipeline()
    pipeline.ParseFromString((tmp_path / "staging" / "pipeline.pb").read_bytes())
    stages = {t.unique_name for t in pipeline.components.transforms.values()}
    for stage in ("Fetch", "Parse", "TagTopics", "Dedup", "SeenBefore", "KeepMatched", "DetectLanguage",
                  "WriteStories", "WriteFetches", "WriteErrors", "CommitState"):
        assert stage in stages, stage
    # The state commit waits for every write: their outputs are its side inputs.
    commit = next(t for t in pipeline.components.transforms.values()
                  if t.unique_name == "CommitState/Commit")
    producers = {out: t.unique_name for t in pipeline.components.transforms.values()
                 for out in t.outputs.values() if not t.subtransforms}
    fed_by = {producers[pc].split("/")[0] for pc in commit.inputs.values()}
    assert {"WriteStories", "WriteFetches", "WriteErrors"} <= fed_by
    # building a template runs nothing, so no run is left open in the state
    assert not (tmp_path / "out" / "_state" / "runs").exists()
