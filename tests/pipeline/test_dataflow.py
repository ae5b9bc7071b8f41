"""Dataflow readiness without Google: the Flex Template's metadata agrees with
the command line; the job builds offline from the template's entry point
(DataflowRunner with --template_location to a local file, local staging,
--dataflow_endpoint on localhost, --no_auth, OUT on gcp-storage-emulator) and
names the project's container image for its workers; that image installs
exactly what setup.py pins; options the workers could not live with are
refused before any work."""
import ast
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_runner_api_pb2
from packaging.requirements import Requirement

from pipeline.cli import LOCAL_ONLY_OPTIONS, build_parser, main
from tests.support.paths import ROOT

TEMPLATE = ROOT / "pipeline" / "flex_template"
IMAGE = "europe-west1-docker.pkg.dev/newswatch-test/newswatch/newswatch:v1"


def load(name):
    """A module of pipeline/flex_template (a folder of files, not a package)."""
    spec = importlib.util.spec_from_file_location(f"flex_template_{name}", TEMPLATE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    # a template launch is one cycle (schedule it), its launcher prints no
    # progress, and compaction is a command of its own: schedule it too
    assert LOCAL_ONLY_OPTIONS == ("--every", "--quiet", "--compact")


# Beam's credentials lookup retries for ~30 s before it connects anonymously;
# the emulator wants anonymous: start from that outcome, then run main.py.
RUN_MAIN_ANONYMOUSLY = (
    "import runpy, sys\n"
    "from apache_beam.internal.gcp import auth\n"
    "auth._Credentials._credentials, auth._Credentials._credentials_init = None, True\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n")


@pytest.mark.slow
def test_the_flex_template_entry_point_builds_the_dataflow_job_offline(tmp_path, gcs):
    for folder in ("staging", "temp"):
        (tmp_path / folder).mkdir()
    job = tmp_path / "job.json"
    output = f"gs://{gcs.bucket}/flex-template/out"
    env = dict(os.environ, PYTHONPATH=str(ROOT), STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{gcs.port}",
               NO_GCE_CHECK="true")
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    env.pop(load("main").IMAGE_VARIABLE, None)
    proc = subprocess.run(
        [sys.executable, "-c", RUN_MAIN_ANONYMOUSLY, str(TEMPLATE / "main.py"),
         "--feeds=seeds/feeds.opml", "--topics=seeds/topics.yaml", f"--output={output}",
         "--lookback_days=7", "--runner=DataflowRunner", "--project=newswatch-test",
         "--region=europe-west1", f"--temp_location={tmp_path / 'temp'}",
         f"--staging_location={tmp_path / 'staging'}", f"--template_location={job}",
         "--dataflow_endpoint=http://localhost:1", "--no_auth", f"--sdk_container_image={IMAGE}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "submitted to DataflowRunner" in proc.stdout

    description = json.loads(job.read_text())
    assert description["type"] == "JOB_TYPE_BATCH"
    options = {d["key"]: d["value"] for d in description["environment"]["sdkPipelineOptions"]["display_data"]}
    assert options["project"] == "newswatch-test" and options["region"] == "europe-west1"
    # The workers run the project's image, and nothing is staged for them to install.
    assert options["sdk_container_image"] == IMAGE and "setup_file" not in options
    pools = description["environment"]["workerPools"]
    assert [pool["workerHarnessContainerImage"] for pool in pools] == [IMAGE]
    assert [image["containerImage"] for pool in pools for image in pool["sdkHarnessContainerImages"]] == [IMAGE]
    staged = {p["name"] for pool in pools for p in pool.get("packages", [])}
    assert "workflow.tar.gz" not in staged and not (tmp_path / "staging" / "workflow.tar.gz").exists()

    pipeline = beam_runner_api_pb2.Pipeline()
    pipeline.ParseFromString((tmp_path / "staging" / "pipeline.pb").read_bytes())
    images = {beam_runner_api_pb2.DockerPayload.FromString(env.payload).container_image
              for env in pipeline.components.environments.values()}
    assert images == {IMAGE}
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
    # building a template runs nothing, so no run is left open in the state,
    # and nothing but the launcher's probe (deleted again) touched OUT
    gcs.use_from_beam()
    FileSystems.set_options(PipelineOptions([]))
    assert FileSystems.match([f"{output}/**"])[0].metadata_list == []


def test_a_launch_without_sdk_container_image_gets_the_image_s_own_name():
    with_default_image = load("main").with_default_image
    variable = load("main").IMAGE_VARIABLE
    assert with_default_image(["--feeds=f"], {variable: IMAGE}) == ["--feeds=f", f"--sdk_container_image={IMAGE}"]
    # a launch parameter wins, in either spelling; an image built without the name adds nothing
    assert with_default_image(["--sdk_container_image=other"], {variable: IMAGE}) == ["--sdk_container_image=other"]
    assert with_default_image(["--sdk_container_image", "other"], {variable: IMAGE}) == \
        ["--sdk_container_image", "other"]
    assert with_default_image(["--feeds=f"], {variable: ""}) == ["--feeds=f"]
    assert with_default_image(["--feeds=f"], {}) == ["--feeds=f"]


# --------------------------------------------------------------------------- the image


def setup_py_requirements():
    """setup.py's INSTALL_REQUIRES and its gcp extra, read here on their own
    (not through pins.py, which the image uses)."""
    literals = {}
    for node in ast.parse((ROOT / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in ("INSTALL_REQUIRES", "EXTRAS"):
            literals[node.targets[0].id] = ast.literal_eval(node.value)
    return [Requirement(r) for r in literals["INSTALL_REQUIRES"] + literals["EXTRAS"]["gcp"]]


def dockerfile_instructions():
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in (TEMPLATE / "Dockerfile").read_text().splitlines()
                                         if not line.lstrip().startswith("#")))
    return [tuple(line.strip().split(None, 1)) for line in text.splitlines() if line.strip()]


def test_the_image_is_beam_s_sdk_image_of_the_pinned_version_with_the_launcher_for_the_same_python():
    pins = {r.name: r for r in setup_py_requirements()}
    beam = {str(s) for s in pins["apache-beam"].specifier}
    assert len(beam) == 1 and next(iter(beam)).startswith("==")
    beam_version = next(iter(beam))[2:]
    instructions = dockerfile_instructions()
    froms = [args for op, args in instructions if op == "FROM"]
    assert froms == [f"apache/beam_python3.11_sdk:{beam_version}"]
    copies = [args for op, args in instructions if op == "COPY" and args.startswith("--from=")]
    assert copies == ["--from=gcr.io/dataflow-templates-base/python311-template-launcher-base "
                      "/opt/google/dataflow/python_template_launcher /opt/google/dataflow/python_template_launcher"]
    # workers start through Beam's boot; the launcher runs main.py
    assert ("ENTRYPOINT", '["/opt/apache/beam/boot"]') in instructions
    envs = dict(args.split("=", 1) for op, args in instructions if op == "ENV")
    assert envs["FLEX_TEMPLATE_PYTHON_PY_FILE"] == "/template/pipeline/flex_template/main.py"
    # no setup or requirements file for the launcher to hand on to the workers
    assert not {"FLEX_TEMPLATE_PYTHON_SETUP_FILE", "FLEX_TEMPLATE_PYTHON_REQUIREMENTS_FILE"} & set(envs)
    assert envs["NEWSWATCH_SDK_CONTAINER_IMAGE"] == "${SDK_CONTAINER_IMAGE}"
    assert load("main").IMAGE_VARIABLE == "NEWSWATCH_SDK_CONTAINER_IMAGE"


def test_the_image_installs_exactly_what_setup_py_pins_and_checks_it():
    instructions = dockerfile_instructions()
    assert ("COPY", "setup.py README.md ./") in instructions
    runs = [args for op, args in instructions if op == "RUN"]
    commands = [c.strip() for run in runs for c in run.split("&&")]
    # the only install is the project with its gcp extra, from the setup.py copied in:
    # no package is named (or pinned) a second time in the Dockerfile
    installs = [c for c in commands if re.match(r"(python -m )?pip3? install", c)]
    assert installs == ['pip install --no-cache-dir ".[gcp]"']
    # then the installed versions are checked against setup.py, pins and ranges alike
    assert commands.index("python pipeline/flex_template/pins.py check setup.py") == \
        commands.index(installs[0]) + 1
    assert "pip check" in commands
    # ... and pins.py reads setup.py as this test does
    pins = load("pins")
    assert [str(r) for r in pins.setup_requirements(ROOT / "setup.py")] == [str(r) for r in setup_py_requirements()]
    exact = {r.name: str(r.specifier) for r in setup_py_requirements() if str(r.specifier).startswith("==")}
    assert exact == {"apache-beam": "==2.77.0", "feedparser": "==6.0.14", "langdetect": "==1.0.9"}


def test_the_pin_check_passes_here_and_names_every_drift():
    pins = load("pins")
    requirements = pins.setup_requirements(ROOT / "setup.py")
    assert pins.problems(requirements) == []  # this venv is installed from setup.py
    installed = {"apache-beam": "2.77.0", "feedparser": "6.0.15", "langdetect": "1.0.9", "lxml": "6.2.0",
                 "pyarrow": "26.0.0", "PyYAML": "6.0.2", "hyperscan": "0.9.1"}
    beam_requires = ['google-cloud-storage<4,>=2.18.2; extra == "gcp"', 'boto3>=1; extra == "aws"',
                     "numpy<2.5,>=1.14.3"]
    found = pins.problems(requirements, version_of=installed.get, requires_of=lambda name: beam_requires)
    assert "feedparser: 6.0.15 installed, setup.py wants ==6.0.14" in found
    assert "pyarrow: 26.0.0 installed, setup.py wants <26,>=20" in found
    assert "apache-beam[gcp] needs google-cloud-storage: not installed, setup.py wants <4,>=2.18.2" in found
    assert len(found) == 3  # boto3 belongs to another extra; numpy to Beam itself


# --------------------------------------------------------------------------- refused before any work


@pytest.mark.parametrize("runner", ["DataflowRunner", "Dataflow"])
def test_a_local_output_on_dataflow_is_refused_in_one_line_before_any_work(runner, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "--feeds", "seeds/feeds.opml", "--topics", "seeds/topics.yaml", "--output", str(out),
                 "--runner", runner, f"--sdk_container_image={IMAGE}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [f"newswatch: error: --output {out} is a local path: Dataflow workers cannot "
                                "write to this machine's disk; give a gs:// folder"]
    assert not out.exists()


def test_dataflow_without_an_image_or_setup_file_is_refused(capsys):
    code = main(["run", "--feeds", "seeds/feeds.opml", "--topics", "seeds/topics.yaml",
                 "--output", "gs://bucket/news", "--runner", "DataflowRunner"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert "give --sdk_container_image" in err and "--setup_file" in err


def test_every_on_dataflow_is_refused(capsys):
    code = main(["run", "--feeds", "seeds/feeds.opml", "--topics", "seeds/topics.yaml",
                 "--output", "gs://bucket/news", "--runner", "DataflowRunner",
                 f"--sdk_container_image={IMAGE}", "--every", "900"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "--every repeats local runs" in err
