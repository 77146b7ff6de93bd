"""Check that requirements.lock matches pyproject.toml and, unless --lock-only, that the environment is the lock's.

    python scripts/check_install.py                    # make setup runs this after installing the lock
    python scripts/check_install.py --lock-only [LOCK] # only the lock against pyproject.toml

Every runtime and dev dependency of pyproject.toml must be pinned in the lock (`name==version` with hashes) at a
version its specifier allows; installed, each pinned distribution must have the pinned version, and the modules of
each declared one must import. Exit status 1 with one line per problem, naming the fix (`make lock`, `make setup`).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def read_pins(lock: Path) -> dict[str, str]:
    """{canonical name: version} of every `name==version` line of a pip-compile lock; hashes are required."""
    text = lock.read_text(encoding="utf-8")
    pins = {}
    for line in text.splitlines():
        match = PIN.match(line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    if pins and "--hash=sha256:" not in text:
        raise SystemExit(f"check_install: {lock} has no hashes; regenerate it with `make lock`")
    return pins


def declared_requirements(pyproject: Path) -> list[Requirement]:
    """pyproject.toml's runtime dependencies and its dev extra (the set `make setup` installs)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [Requirement(spec) for spec in project["dependencies"] + project["optional-dependencies"]["dev"]]


def lock_problems(lock: Path, pyproject: Path) -> list[str]:
    pins = read_pins(lock)
    problems = []
    for requirement in declared_requirements(pyproject):
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{lock.name} does not pin {requirement.name} (from pyproject.toml): run `make lock`")
        elif not requirement.specifier.contains(Version(pins[name]), prereleases=True):
            problems.append(
                f"{lock.name} pins {requirement.name}=={pins[name]}, outside pyproject.toml's "
                f"{requirement.specifier}: run `make lock`"
            )
    return problems


def install_problems(lock: Path, pyproject: Path) -> list[str]:
    declared = {canonicalize_name(requirement.name) for requirement in declared_requirements(pyproject)}
    problems = []
    for name, version in sorted(read_pins(lock).items()):
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name}=={version} is not installed: run `make setup`")
            continue
        if Version(distribution.version) != Version(version):
            problems.append(f"{name} is {distribution.version}, the lock pins {version}: run `make setup`")
            continue
        for module in top_level_modules(distribution) if name in declared else ():
            try:
                importlib.import_module(module)
            except Exception as error:  # noqa: BLE001 - any import failure is the finding
                problems.append(f"{name}=={version}: `import {module}` fails: {type(error).__name__}: {error}")
    return problems


def top_level_modules(distribution: importlib.metadata.Distribution) -> list[str]:
    """The importable packages and modules a distribution installs (from its file list), private ones excluded."""
    names = set()
    for file in distribution.files or ():
        parts = file.parts
        if len(parts) == 2 and parts[1] == "__init__.py" or len(parts) == 1 and file.suffix == ".py":
            names.add(parts[0].removesuffix(".py"))
    return sorted(n for n in names if n.isidentifier() and not n.startswith("_") and n not in SKIP_IMPORT)


# Modules that only run as scripts or plugins (importing them does work, or exits).
SKIP_IMPORT = {"setup", "conftest", "pip", "setuptools", "pkg_resources", "distutils", "wheel", "__editable__"}


def main() -> int:
    logging.basicConfig(level=logging.ERROR)  # packages' import-time notices (Beam's on apitools) are not findings
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", nargs="?", default=str(ROOT / "requirements.lock"))
    parser.add_argument("--pyproject", default=str(ROOT / "pyproject.toml"))
    parser.add_argument("--lock-only", action="store_true", help="Check the lock against pyproject.toml only.")
    args = parser.parse_args()
    lock = Path(args.lock)
    problems = lock_problems(lock, Path(args.pyproject))
    if not args.lock_only and not problems:
        problems = install_problems(lock, Path(args.pyproject))
    for problem in problems:
        print(f"check_install: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_install: {lock.name} matches pyproject.toml" + ("" if args.lock_only else " and the environment"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
