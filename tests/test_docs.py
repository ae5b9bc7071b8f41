"""README.md, CHANGELOG.md and docs/*.md stay true to the code.

- every `newswatch ...` / `python -m pipeline ...` command shown names a real
  subcommand, and every `--flag` shown is one of the command line's options
  (pipeline.cli.build_parser) or one of Beam's own, which pass through;
- every `python -m benchmarks.X ...` shown names a real module and its flags;
- every `make X` shown is a target of the Makefile;
- every relative link, and every #anchor (GitHub's heading slugs), resolves;
- every project path shown in code (`transforms/fetch.py`) exists;
- the README is a front page that links every docs page, and every docs page
  opens with a table of contents of its own headings;
- the generated sections of docs/performance.md are what
  benchmarks/docs_table.py renders from benchmarks/results/latest.json.

Inline code, prose and untagged (or ```sh) fenced blocks are read as command
lines: a `--flag` outside a command of another tool (gcloud, docker, pip,
python -m benchmarks.X ...) must be an option of `newswatch`. Fenced blocks
tagged ```text, ```python, ```yaml, ```sql ... are output, code or data and
are not read as commands.
"""
from __future__ import annotations

import ast
import argparse
import functools
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CHANGELOG = ROOT / "CHANGELOG.md"
DOCS = ROOT / "docs"
PAGES = ["query-language.md", "output.md", "archive.md", "rules.md", "retag.md", "report.md", "clusters.md",
         "operations.md", "compaction.md", "performance.md",
         "development.md"]
README_MAX_LINES = 250

# Fenced blocks whose lines are commands (the rest is output, code or data).
COMMAND_FENCES = {"", "sh", "bash", "shell", "console"}
# Commands of other tools: their flags are theirs, not ours.
FOREIGN_COMMANDS = {"gcloud", "docker", "pip", "pip3", "pytest", "git", "gsutil", "curl", "duckdb",
                    "apt-get", "kubectl", "py-spy", "cd", "export", "ls", "rm", "cat", "echo"}
# Top-level folders whose paths, when shown in code, must exist.
PROJECT_FOLDERS = ("pipeline", "transforms", "benchmarks", "tests", "seeds", "docs")
# Written by `make bench`; may not exist in a fresh checkout before the first run.
GENERATED_PATHS = ("benchmarks/results/",)

FLAG_RE = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
LINK_RE = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE_RE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
INLINE_CODE_RE = re.compile(r"(`+)(.+?)\1")


# --------------------------------------------------------------------------- what exists


@dataclass
class Known:
    """What the documents may name."""

    commands: Dict[Optional[str], Set[str]]     # None: the top-level parser; else a subcommand
    beam: Set[str]
    make_targets: Set[str]
    root: Path = ROOT
    benchmark_flags: Dict[str, Optional[Set[str]]] = field(default_factory=dict)

    def flag_ok(self, flag: str, command: Optional[str]) -> bool:
        if flag in self.beam:
            return True
        if command is not None and command in self.commands:
            return flag in self.commands[command]
        return any(flag in options for options in self.commands.values())

    def benchmark(self, module: str) -> Optional[Set[str]]:
        """The flags a benchmarks module's argparse declares; None: no such module."""
        if module not in self.benchmark_flags:
            path = self.root / (module.replace(".", "/") + ".py")
            self.benchmark_flags[module] = _argparse_flags(path) if path.exists() else None
        return self.benchmark_flags[module]


def _option_strings(parser: argparse.ArgumentParser) -> Set[str]:
    return {s for s in parser._option_string_actions if s.startswith("--")}


def _command_options(parser: argparse.ArgumentParser) -> Set[str]:
    """A subcommand's options, and those of its own subcommands (`rules diff`)."""
    options = _option_strings(parser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                options |= _command_options(sub)
    return options


def cli_commands() -> Dict[Optional[str], Set[str]]:
    """The top-level options, and each subcommand with its options."""
    from pipeline.cli import build_parser

    parser = build_parser()
    commands: Dict[Optional[str], Set[str]] = {None: _option_strings(parser)}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands[name] = _command_options(sub)
    return commands


def beam_flags() -> Set[str]:
    """Beam's pipeline options, which `newswatch run` passes through: the keys
    of PipelineOptions, and every option string its option classes register
    (--experiment, --no_use_public_ips ...), as pipeline.cli checks them."""
    from apache_beam.options.pipeline_options import PipelineOptions

    flags = {"--" + key for key in PipelineOptions([]).get_all_options(retain_unknown_options=False)}
    parser = argparse.ArgumentParser(add_help=False, conflict_handler="resolve")
    pending = list(PipelineOptions.__subclasses__())
    while pending:
        options_class = pending.pop()
        pending.extend(options_class.__subclasses__())
        try:
            options_class._add_argparse_args(parser)
        except argparse.ArgumentError:
            pass
    return flags | _option_strings(parser)


def makefile_targets(makefile: Path = ROOT / "Makefile") -> Set[str]:
    targets = set()
    for line in makefile.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.][A-Za-z0-9_. -]*?)\s*::?(?!=)", line)
        if match and not line.startswith((".PHONY", "\t")):
            targets.update(match.group(1).split())
    return targets


def _argparse_flags(path: Path) -> Set[str]:
    """Every "--x" string passed to an add_argument call in a module."""
    flags = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            flags.update(a.value for a in node.args
                         if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("--"))
    return flags | {"--help"}


@functools.lru_cache(maxsize=1)
def known() -> Known:
    return Known(commands=cli_commands(), beam=beam_flags(), make_targets=makefile_targets())


# --------------------------------------------------------------------------- reading markdown


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: rendered text, lower case, punctuation
    dropped (letters, digits, '_', '-' and spaces kept), spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@dataclass
class Parsed:
    headings: List[tuple] = field(default_factory=list)      # (level, text, line number)
    commands: List[tuple] = field(default_factory=list)      # (text, line, in a fenced block)
    prose: List[tuple] = field(default_factory=list)         # (text without code spans, line)

    @property
    def anchors(self) -> Set[str]:
        seen: Dict[str, int] = {}
        anchors = set()
        for _, text, _ in self.headings:
            base = slug(text)
            n = seen.get(base, 0)
            anchors.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
        return anchors


def parse_markdown(text: str) -> Parsed:
    parsed = Parsed()
    fence, fence_lang, pending = None, "", ""
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE_RE.match(line)
        if fence is None and opening:
            fence, fence_lang = opening.group(1), opening.group(2).lower()
            continue
        if fence is not None:
            if line.strip().startswith(fence[0] * 3) and line.strip().strip(fence[0]) == "":
                fence = None
                continue
            if fence_lang in COMMAND_FENCES:
                pending += line
                if line.endswith("\\"):
                    pending = pending[:-1] + " "
                    continue
                parsed.commands.append((pending, number, True))
            pending = ""
            continue
        heading = HEADING_RE.match(line)
        if heading:
            parsed.headings.append((len(heading.group(1)), heading.group(2), number))
        for span in INLINE_CODE_RE.finditer(line):
            parsed.commands.append((span.group(2).strip(), number, False))
        parsed.prose.append((INLINE_CODE_RE.sub(" ", line), number))
    return parsed


def _segments(command: str, fenced: bool) -> List[List[str]]:
    """A command line cut into simple commands (at |, &&, ;), as tokens."""
    if fenced:
        command = re.sub(r"(^|\s)#.*$", "", command)   # a comment
    segments = []
    for part in re.split(r"\|\||&&|;|\|", command):
        try:
            tokens = shlex.split(part)
        except ValueError:
            tokens = part.split()
        while tokens and (re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]) or tokens[0] == "$"):
            tokens = tokens[1:]       # VAR=value before a command, a prompt
        if tokens:
            segments.append(tokens)
    return segments


def _program(tokens: List[str]) -> tuple:
    """(kind, name, arguments): kind is newswatch, benchmarks, make, foreign or other."""
    first = tokens[0].rsplit("/", 1)[-1]
    if first == "newswatch":
        return "newswatch", None, tokens[1:]
    if re.fullmatch(r"python[0-9.]*", first) and len(tokens) > 2 and tokens[1] == "-m":
        module = tokens[2]
        if module == "pipeline":
            return "newswatch", None, tokens[3:]
        if module.split(".")[0] == "benchmarks":
            return "benchmarks", module, tokens[3:]
        return "foreign", module, tokens[3:]      # pytest, pip ...
    if first == "make":
        return "make", None, tokens[1:]
    if first in FOREIGN_COMMANDS or first.startswith("python"):
        return "foreign", first, tokens[1:]
    return "other", None, tokens


def _flag(token: str) -> Optional[str]:
    match = FLAG_RE.match(token)
    return match.group(0) if match and match.group(0) == token.split("=", 1)[0] else None


def check_command(text: str, fenced: bool, where: str, k: Known) -> List[str]:
    problems = []
    for tokens in _segments(text, fenced):
        kind, name, args = _program(tokens)
        if kind == "newswatch":
            sub = args[0] if args and not args[0].startswith("-") else None
            if sub is not None and sub not in k.commands:
                if tokens[0].endswith("newswatch") and not re.fullmatch(r"[a-z][a-z-]*", sub):
                    continue          # "newswatch: error: ..." and other output, not a command
                problems.append(f"{where}: `{text}`: newswatch has no command {sub!r} "
                                f"(commands: {', '.join(sorted(c for c in k.commands if c))})")
                continue
            for token in args:
                flag = _flag(token)
                if flag and not k.flag_ok(flag, sub):
                    problems.append(f"{where}: `{text}`: newswatch {sub or ''} has no option {flag}")
        elif kind == "benchmarks":
            flags = k.benchmark(name)
            if flags is None:
                problems.append(f"{where}: `{text}`: no module {name}")
                continue
            for token in args:
                flag = _flag(token)
                if flag and flag not in flags:
                    problems.append(f"{where}: `{text}`: {name} has no option {flag}")
        elif kind == "make":
            for token in args:
                if "=" in token or token.startswith("-"):
                    continue
                if token not in k.make_targets:
                    problems.append(f"{where}: `{text}`: the Makefile has no target {token!r}")
        elif kind == "other":
            for flag in FLAG_RE.findall(" ".join(tokens)):
                if not k.flag_ok(flag, None):
                    problems.append(f"{where}: `{text}`: newswatch has no option {flag}")
        problems += _check_paths(tokens, where, k)
    return problems


def _check_paths(tokens: List[str], where: str, k: Known) -> List[str]:
    problems = []
    for token in tokens:
        for path in re.findall(r"(?<![\w./-])((?:%s)/[\w./*<>-]*)" % "|".join(PROJECT_FOLDERS), token):
            path = path.rstrip(".")
            if path.startswith(GENERATED_PATHS) or "..." in path or "<" in path:
                continue      # generated by make bench; a pattern such as test_<stage>.py
            exists = any(k.root.glob(path)) if "*" in path else (k.root / path).exists()
            if not exists:
                problems.append(f"{where}: {path} does not exist")
    return problems


def check_links(text: str, path: Path, k: Known, parsed: Optional[Parsed] = None) -> List[str]:
    parsed = parsed or parse_markdown(text)
    problems = []
    for prose, number in parsed.prose:
        for link in LINK_RE.finditer(prose):
            target = link.group("target")
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue      # http:, https:, mailto: ... not checked offline
            file_part, _, anchor = target.partition("#")
            where = f"{path.name}:{number}"
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                problems.append(f"{where}: link to {target}: {file_part} does not exist")
                continue
            if anchor:
                if linked.suffix != ".md":
                    problems.append(f"{where}: link to {target}: anchors only into markdown")
                    continue
                anchors = parsed.anchors if linked == path else parse_markdown(linked.read_text()).anchors
                if anchor not in anchors:
                    problems.append(f"{where}: link to {target}: no heading with anchor #{anchor}")
    return problems


def check_document(text: str, path: Path, k: Known) -> List[str]:
    parsed = parse_markdown(text)
    problems = check_links(text, path, k, parsed)
    for command, number, fenced in parsed.commands:
        problems += check_command(command, fenced, f"{path.name}:{number}", k)
    for prose, number in parsed.prose:
        for flag in FLAG_RE.findall(LINK_RE.sub(r"\g<text>", prose)):   # not in link targets
            if not k.flag_ok(flag, None):
                problems.append(f"{path.name}:{number}: newswatch has no option {flag}")
    return problems


def documents() -> List[Path]:
    return [README, CHANGELOG] + sorted(DOCS.glob("*.md"))


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_commands_flags_targets_links_and_paths_exist(path):
    problems = check_document(path.read_text(), path, known())
    assert not problems, "\n".join(problems)


def test_every_docs_page_exists_and_the_readme_links_it():
    readme = README.read_text()
    for page in PAGES:
        assert (DOCS / page).exists(), page
        assert f"](docs/{page}" in readme, f"README.md does not link docs/{page}"
    assert "](CHANGELOG.md" in readme
    unexpected = {p.name for p in DOCS.glob("*.md")} - set(PAGES)
    assert not unexpected, f"docs pages the README does not list: {unexpected}"


def test_readme_is_a_front_page_that_starts_with_the_two_setup_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    first_block = "\n".join(lines[:8])
    assert re.search(r"^make run\b", first_block, re.M) and re.search(r"^make test\b", first_block, re.M)


@pytest.mark.parametrize("page", PAGES)
def test_every_docs_page_opens_with_a_table_of_contents_of_its_sections(page):
    text = (DOCS / page).read_text()
    parsed = parse_markdown(text)
    sections = [h for h in parsed.headings if h[0] == 2]
    assert sections, f"{page} has no ## sections"
    before_first = "\n".join(text.splitlines()[:sections[0][2] - 1])
    listed = {m.group("target") for m in LINK_RE.finditer(before_first)}
    missing = [title for _, title, _ in sections if f"#{slug(title)}" not in listed]
    assert not missing, f"{page}: sections missing from the table of contents at the top: {missing}"


def test_the_checker_reports_bad_flags_commands_targets_links_and_paths(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## Real heading\n")
    bad = tmp_path / "bad.md"
    sample = "\n".join([
        "# Sample",
        "",
        "## Good heading",
        "",
        "```",
        "newswatch run --feeds f.opml --no-such-flag 3 \\",
        "    --runner DirectRunner --direct_num_workers=2",
        "newswatch frobnicate --feeds x",
        "make run",
        "make no-such-target",
        "python -m benchmarks.run --sizes 100 --no-such-bench-flag",
        "python -m benchmarks.no_such_module",
        "gcloud dataflow jobs list --region r   # a foreign tool's flags are not ours",
        "```",
        "",
        "Set `--fetch-timeout`, not `--fetch-timout`; see `transforms/no_such_module.py`.",
        "Links: [ok](#good-heading), [bad anchor](#no-such-heading), [missing](missing.md),",
        "[ok](other.md#real-heading), [bad](other.md#nope), [web](https://example.com/x).",
        "",
        "```text",
        "newswatch: error: output of the command --is-not-checked",
        "```",
    ])
    bad.write_text(sample)
    k = Known(commands={None: {"--help"}, "run": {"--help", "--feeds", "--fetch-timeout"}},
              beam={"--runner", "--direct_num_workers"}, make_targets={"run", "test"}, root=ROOT)
    problems = check_document(sample, bad, k)
    text = "\n".join(problems)
    expected = ["--no-such-flag", "no command 'frobnicate'", "no target 'no-such-target'",
                "--no-such-bench-flag", "no module benchmarks.no_such_module", "--fetch-timout",
                "transforms/no_such_module.py does not exist", "#no-such-heading",
                "missing.md does not exist", "other.md#nope"]
    for needle in expected:
        assert needle in text, f"not reported: {needle}\n{text}"
    assert len(problems) == len(expected), text


def test_github_slugs():
    assert slug("Repeated runs: state, re-runs, `--every`") == "repeated-runs-state-re-runs---every"
    assert slug("The run summary & counters") == "the-run-summary--counters"
    assert slug("Quality of the bundled `dprk` rule") == "quality-of-the-bundled-dprk-rule"
    assert slug("Where is X?") == "where-is-x"


def test_makefile_targets_are_read():
    targets = makefile_targets()
    assert {"run", "test", "bench", "docs"} <= targets


def test_docs_table_rewrites_only_between_the_markers():
    from benchmarks import docs_table

    data = {"context": {"date": "2000-01-01 00:00 UTC", "command": "python -m benchmarks.run --sizes 2000",
                        "machine": "a test machine", "load_before": "0.0 0.0 0.0",
                        "load_after": "0.0 0.0 0.0", "corpus": "none", "repeat": 1, "other": "",
                        "elapsed_s": 60.0},
            "results": [], "fetch": None, "seed": None, "components": {}}
    page = "\n".join(["# Page", "before", "<!-- bench-table:begin -->", "old table",
                      "<!-- bench-table:end -->", "between", "<!-- bench-targets:begin -->",
                      "<!-- bench-targets:end -->", "after", ""])
    updated = docs_table.rewrite(page, data)
    assert "old table" not in updated
    assert updated.startswith("# Page\nbefore\n") and updated.endswith("after\n") and "\nbetween\n" in updated
    sections = docs_table.current_sections(updated)
    assert sections["bench-table"] == docs_table.render_section("bench-table", data)
    assert "a test machine" in sections["bench-table"] and "2000-01-01" in sections["bench-table"]
    assert docs_table.rewrite(updated, data) == updated
    with pytest.raises(ValueError):
        docs_table.rewrite("no markers here", data)


def test_the_large_section_shows_bench_large_s_table_and_the_targets_at_its_size(tmp_path, monkeypatch):
    import json
    from dataclasses import asdict

    from benchmarks import docs_table
    from benchmarks.run import Result

    def result(name, cpu, wall, rss_mb):
        return asdict(Result(size=1_000_000, contestant=name, entries=1_000_000, rows=35_000, wall_s=wall,
                             cpu_s=cpu, peak_rss=rss_mb * 2**20))

    path = tmp_path / "latest.json"
    path.write_text(json.dumps({
        "context": {"date": "2000-01-01 00:00 UTC", "command": "python -m benchmarks.run --scale large --sizes 1000000",
                    "machine": "a test machine", "load_before": "0.0 0.0 0.0", "load_after": "0.0 0.0 0.0",
                    "corpus": "generated", "repeat": 1, "other": "", "elapsed_s": 3600.0},
        "results": [result("baseline", 1000.0, 1000.0, 900), result("baseline-fast", 600.0, 600.0, 900),
                    result("pipeline", 750.0, 750.0, 2000), result("pipeline-mp", 840.0, 470.0, 2600)],
        "fetch": None, "seed": None, "huge": None,
        "components": {"seen": {"stories": 10_000_000, "story_us": 14.0, "load_s": 2.5, "load_peak_mb": 900.0}}}))
    monkeypatch.setitem(docs_table.OPTIONAL_SECTIONS, "bench-large",
                        (lambda data: docs_table.render_large(data, path), path))
    required = ("<!-- bench-table:begin -->\n<!-- bench-table:end -->\n"
                "<!-- bench-targets:begin -->\n<!-- bench-targets:end -->\n")
    page = docs_table.rewrite(required + "<!-- bench-large:begin -->\nOLD\n<!-- bench-large:end -->\n", {
        "context": {"date": "1999-01-01 00:00 UTC", "command": "python -m benchmarks.run", "machine": "m",
                    "load_before": "0", "load_after": "0", "corpus": "c", "repeat": 1, "other": "",
                    "elapsed_s": 1.0}, "results": [], "components": {}})
    large = page.split("<!-- bench-large:begin -->")[1]
    assert "OLD" not in large and "`make bench-large` (`python -m benchmarks.run --scale large" in large
    assert "2000-01-01" in large and "1999-01-01" not in large        # its own run, not make bench's
    assert "At 1,000,000 entries, in the run of 2000-01-01 00:00 UTC:" in large
    assert "| pipeline CPU per entry / plain loop with feedparser | 0.75x | <= 0.6x | NOT MET |" in large
    assert "| pipeline CPU per entry / plain loop with the fast parser | 1.25x | <= 1.3x | met |" in large
    assert "| seen index of 10,000,000 stories: load time | 2.5 s | < 15 s | met |" in large
    assert "| peak RSS, pipeline, in-process | 2,000 MB |" in large


def test_every_generated_section_of_the_performance_page_is_what_its_results_file_gives():
    from benchmarks import docs_table

    page = (DOCS / "performance.md").read_text()
    assert len(docs_table.section_pattern("bench-large").findall(page)) == 1
    if not docs_table.RESULTS.exists():
        pytest.skip("benchmarks/results/latest.json is not committed yet: run `make bench`")
    for name, (_, source) in docs_table.OPTIONAL_SECTIONS.items():
        if docs_table.section_pattern(name).findall(page):
            assert source.exists(), f"{source} is not committed: performance.md shows it"
    assert docs_table.rewrite(page, docs_table.load()) == page, "run `make docs`"


def test_a_section_from_a_results_folder_names_its_file(monkeypatch):
    from benchmarks import docs_table

    monkeypatch.setitem(docs_table.OPTIONAL_SECTIONS, "bench-large",
                        (lambda data: "the table", docs_table.LARGE_RESULTS))
    assert docs_table.render_section("bench-large", {}) == docs_table.GENERATED_BY.replace(
        "benchmarks/results/latest.json", "benchmarks/results/large/latest.json") + "\nthe table\n"


def test_performance_page_shows_the_committed_benchmark_result():
    from benchmarks import docs_table

    page = (DOCS / "performance.md").read_text()
    sections = docs_table.current_sections(page)
    for name, body in sections.items():
        assert body is not None, f"docs/performance.md: one pair of {name} markers expected"
    if not docs_table.RESULTS.exists():
        pytest.skip("benchmarks/results/latest.json is not committed yet: run `make bench` "
                    "(it regenerates docs/performance.md) and commit both")
    data = docs_table.load()
    for name, body in sections.items():
        assert body == docs_table.render_section(name, data), (
            f"docs/performance.md section {name} is not what benchmarks/results/latest.json "
            "gives: run `make docs`")
