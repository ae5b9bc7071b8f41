"""The conventions of docs/development.md that code can break without a test
failing elsewhere: DoFn names, one metrics namespace, module docstrings."""
import ast

from tests.support.paths import ROOT

PACKAGES = ("pipeline", "transforms")


def production_modules():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def dofn_classes(tree: ast.AST):
    """Names of the classes that subclass beam.DoFn (or DoFn) directly."""
    for node in sorted((n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)),
                       key=lambda n: n.lineno):
        for base in node.bases:
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
            if name == "DoFn":
                yield node.name


def naming_problems(source: str, where: str):
    tree = ast.parse(source)
    # One suffix for every DoFn: ...Fn (not ...DoFn, not none).
    problems = [f"{where}: DoFn {name} is not named ...Fn"
                for name in dofn_classes(tree) if not name.endswith("Fn") or name.endswith("DoFn")]
    for node in ast.walk(tree):
        # Metrics.counter("newswatch", ...): the namespace belongs to transforms/metrics.py.
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and getattr(node.func.value, "id", "") == "Metrics":
            problems.append(f"{where}:{node.lineno}: Metrics.{node.func.attr} outside transforms/metrics.py")
    return problems


def test_the_checks_catch_what_they_look_for():
    bad = ("import apache_beam as beam\nfrom apache_beam import DoFn\n"
           "class _ParseFeedDoFn(beam.DoFn): pass\nclass EmitWinner(DoFn): pass\n"
           "class GoodFn(beam.DoFn): pass\nclass NotAFn(object): pass\n"
           "x = Metrics.counter('newswatch', 'n')\n")
    assert naming_problems(bad, "sample") == [
        "sample: DoFn _ParseFeedDoFn is not named ...Fn",
        "sample: DoFn EmitWinner is not named ...Fn",
        "sample:7: Metrics.counter outside transforms/metrics.py",
    ]


def test_every_dofn_is_named_fn_and_counters_use_the_one_namespace():
    problems = []
    for path in production_modules():
        if path == ROOT / "transforms" / "metrics.py":
            continue
        problems += naming_problems(path.read_text(), str(path.relative_to(ROOT)))
    assert problems == []


def test_every_module_says_what_it_is():
    missing = [str(p.relative_to(ROOT)) for p in production_modules()
               if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == []
