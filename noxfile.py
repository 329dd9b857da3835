"""The CPythons beside the .venv's: ``make test`` runs ``nox`` after the full suite on 3.11.

- ``wheel``: builds the wheel and the sdist once, checks LICENSE and py.typed, and runs the
  README's sample on the installed wheel in a fresh virtual environment of 3.11, 3.12 and 3.13
  (tools/wheel_smoke.py).
- ``fast-3.12``, ``fast-3.13``: the fast tests, every test module that starts no S3 endpoint
  and needs no docs or bench extra, on that CPython.

Interpreters are looked up on PATH and under pyenv's versions folder. A missing one fails the
run, it is not skipped: the machines of this project (and CI, which runs on them) have them.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tests import layers

OTHER_PYTHONS = ("3.12", "3.13")
ROOT = Path(__file__).resolve().parent

nox.options.sessions = ["wheel", "fast"]
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
nox.options.default_venv_backend = "venv"


def _put_pyenv_on_path() -> None:
    """Put each installed pyenv CPython of OTHER_PYTHONS (its newest patch) first on PATH.

    pyenv's shims answer ``python3.12`` only for the versions selected in pyenv: the versions'
    own bin folders answer whatever is selected.
    """
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = []
    for version in OTHER_PYTHONS:
        installed = sorted(
            versions.glob(f"{version}.*/bin/python{version}"),
            key=lambda path: [int(n) for n in re.findall(r"\d+", path.parent.parent.name)],
        )
        found += [str(installed[-1].parent)] if installed else []
    os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_put_pyenv_on_path()


def _test_tools() -> list[str]:
    """pytest, its timeout plugin and hypothesis, as the dev extra pins them."""
    dev = nox.project.load_toml(ROOT / "pyproject.toml")["project"]["optional-dependencies"]["dev"]
    wanted = {"pytest", "pytest-timeout", "hypothesis"}
    return [spec for spec in dev if re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0] in wanted]


def fast_modules() -> list[str]:
    """The test modules that start no service and need only the testing extra (tests/layers.py)."""
    return [
        path.relative_to(ROOT).as_posix()
        for path in layers.test_modules(ROOT)
        if layers.needs_only_testing_extra(path.read_text(encoding="utf-8"))
    ]


@nox.session(python=False)
def wheel(session: nox.Session) -> None:
    """The wheel and the sdist, built once and tried on every CPython (see tools/wheel_smoke.py)."""
    interpreters = [sys.executable]
    for version in OTHER_PYTHONS:
        found = shutil.which(f"python{version}")
        if found is None:
            session.error(f"no python{version} on PATH or under pyenv: the wheel is untried there")
        interpreters.append(found)
    session.run(
        sys.executable,
        "tools/wheel_smoke.py",
        *[arg for interpreter in interpreters for arg in ("--python", interpreter)],
        external=True,
    )


@nox.session(python=OTHER_PYTHONS)
def fast(session: nox.Session) -> None:
    """The fast tests on this CPython, s3es installed with its testing extra (conftest needs it)."""
    session.install(".[testing]", *_test_tools())
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *fast_modules())
