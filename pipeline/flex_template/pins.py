"""The pins of setup.py, for the container image: what it must hold, and a check.

The image (pipeline/flex_template/Dockerfile) installs `.[gcp]` from the
setup.py it copies, so pip installs exactly what setup.py pins. This module
reads those requirements without running setup.py (it is parsed, not
imported) and, at the end of the image build, checks the installed
distributions against them, so an image whose packages drifted from setup.py
(a base image with another Beam, a later layer that upgraded something) fails
to build instead of failing on the workers:

    python pins.py check setup.py [--extra gcp]     # exit 1 and one line per problem
    python pins.py list setup.py [--extra gcp]      # the requirements, one a line

Only the standard library and `packaging` (a dependency of apache-beam).
"""
from __future__ import annotations

import argparse
import ast
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from packaging.requirements import Requirement

DEFAULT_EXTRAS = ("gcp",)


def setup_requirements(setup_py: Path, extras: Sequence[str] = DEFAULT_EXTRAS) -> List[Requirement]:
    """INSTALL_REQUIRES plus the given EXTRAS of setup.py, read as literals."""
    values = {}
    for node in ast.parse(Path(setup_py).read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and getattr(node.targets[0], "id", None) in ("INSTALL_REQUIRES", "EXTRAS"):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    if "INSTALL_REQUIRES" not in values:
        raise ValueError(f"{setup_py}: no INSTALL_REQUIRES list")
    lines = list(values["INSTALL_REQUIRES"])
    for extra in extras:
        lines += values.get("EXTRAS", {})[extra]
    return [Requirement(line) for line in lines]


def problems(requirements: Sequence[Requirement],
             version_of: Callable[[str], Optional[str]] = None,
             requires_of: Callable[[str], Sequence[str]] = None) -> List[str]:
    """One line per requirement (whose marker applies here) that the installed
    distributions do not meet; an `==` pin must be met exactly. For a
    requirement with extras (apache-beam[gcp]) the packages the extra brings
    are checked too, one level down."""
    version_of = version_of or _installed_version
    requires_of = requires_of or (lambda name: metadata.requires(name) or [])
    found = []
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate():
            continue
        installed = version_of(req.name)
        if installed is None:
            found.append(f"{req.name}: not installed, setup.py wants {req.specifier}")
            continue
        if not req.specifier.contains(installed, prereleases=True):
            found.append(f"{req.name}: {installed} installed, setup.py wants {req.specifier}")
        for extra in sorted(req.extras):
            brought = [Requirement(line) for line in requires_of(req.name)]
            brought = [dep for dep in brought if dep.marker is not None
                       and dep.marker.evaluate({"extra": extra}) and not dep.marker.evaluate({"extra": ""})]
            found += [f"{req.name}[{extra}] needs {line}"
                      for line in problems([_without_marker(dep) for dep in brought], version_of)]
    return found


def _without_marker(req: Requirement) -> Requirement:
    return Requirement(f"{req.name}{req.specifier}")


def _installed_version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("check", "list"))
    parser.add_argument("setup_py", type=Path)
    parser.add_argument("--extra", action="append", dest="extras",
                        help="extras of setup.py to include (default: gcp)")
    args = parser.parse_args(argv)
    requirements = setup_requirements(args.setup_py, args.extras or DEFAULT_EXTRAS)
    if args.command == "list":
        print("\n".join(str(r) for r in requirements))
        return 0
    found = problems(requirements)
    for line in found:
        print(f"pins: {line}", file=sys.stderr)
    if not found:
        print(f"pins: {len(requirements)} requirements of {args.setup_py} met")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
