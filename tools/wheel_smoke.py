"""Build s3es's wheel and sdist and try the wheel as a user would get it.

``python tools/wheel_smoke.py [--python INTERPRETER]...`` (``make test`` runs it through nox):

1. builds the sdist, and the wheel from the sdist (``python -m build``), so a file the sdist
   lacks fails the build;
2. checks that the wheel ships ``LICENSE`` and ``py.typed``, and the sdist ``LICENSE``;
3. for each interpreter (default: the one running this script), installs the wheel into a fresh
   virtual environment and runs the README's first Python sample there, from an empty folder
   outside the source tree, so it imports the installed wheel; the sample must succeed and
   print nothing (s3es is quiet unless the application configures logging).

Exits 1 with a line saying what failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
_FENCE = re.compile(r"^```python[^\n]*\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


class SmokeError(Exception):
    """A check of the wheel or the sdist failed; the message says which."""


def readme_sample() -> str:
    """The README's first Python sample."""
    found = _FENCE.search(README.read_text(encoding="utf-8"))
    if found is None:
        raise SmokeError(f"{README} has no python block")
    return found["body"]


def _run(command: Sequence[str], *, cwd: Path, what: str) -> str:
    """Run ``command`` in ``cwd`` without the caller's PYTHONPATH; its stdout, or SmokeError."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SmokeError(f"{what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def build(outdir: Path) -> tuple[Path, Path]:
    """The sdist and the wheel built from it, in ``outdir``."""
    _run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(outdir), str(ROOT)],
        cwd=ROOT,
        what="python -m build",
    )
    (sdist,), (wheel,) = sorted(outdir.glob("*.tar.gz")), sorted(outdir.glob("*.whl"))
    return sdist, wheel


def check_contents(sdist: Path, wheel: Path) -> None:
    """The wheel ships LICENSE and py.typed; the sdist ships LICENSE."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    if "s3es/py.typed" not in names:
        raise SmokeError(f"{wheel.name} lacks s3es/py.typed")
    if not any(re.fullmatch(r"s3es-[^/]+\.dist-info/licenses/LICENSE", n) for n in names):
        raise SmokeError(f"{wheel.name} lacks LICENSE in its .dist-info/licenses")
    with tarfile.open(sdist) as archive:
        if not any(re.fullmatch(r"s3es-[^/]+/LICENSE", n) for n in archive.getnames()):
            raise SmokeError(f"{sdist.name} lacks LICENSE")


def try_wheel(interpreter: str, wheel: Path, workdir: Path) -> str:
    """Install ``wheel`` into a fresh venv of ``interpreter`` and run the README's sample there.

    Returns the venv's Python version. The sample runs in an empty folder and must print nothing.
    """
    venv, folder = workdir / "venv", workdir / "user"
    folder.mkdir()
    _run([interpreter, "-m", "venv", str(venv)], cwd=workdir, what=f"{interpreter} -m venv")
    python = str(venv / "bin" / "python")
    _run(
        [python, "-m", "pip", "install", "--quiet", str(wheel)],
        cwd=workdir,
        what=f"installing {wheel.name}",
    )
    where = _run(
        [python, "-c", "import s3es, sys; print(s3es.__file__); print(sys.version.split()[0])"],
        cwd=folder,
        what="import s3es",
    ).split()
    if not Path(where[0]).is_relative_to(venv):
        raise SmokeError(f"s3es was imported from {where[0]}, not from the installed wheel")
    script = folder / "readme_sample.py"
    script.write_text(readme_sample(), encoding="utf-8")
    done = subprocess.run(
        [python, str(script)], cwd=folder, capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or done.stdout or done.stderr:
        raise SmokeError(
            f"the README's sample on Python {where[1]} exited {done.returncode} and printed:\n"
            f"{done.stdout}{done.stderr}"
        )
    return where[1]


def main(argv: Sequence[str] | None = None) -> int:
    """Build, check and try the wheel; 0 if every check passed, else 1."""
    parser = argparse.ArgumentParser(prog="python tools/wheel_smoke.py", description=__doc__)
    parser.add_argument(
        "--python",
        action="append",
        dest="interpreters",
        metavar="INTERPRETER",
        help="an interpreter to try the wheel on (repeatable; default: this one)",
    )
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="s3es-wheel-") as temporary:
            sdist, wheel = build(Path(temporary) / "dist")
            check_contents(sdist, wheel)
            print(f"built {sdist.name} and {wheel.name}: LICENSE and py.typed in place")
            for number, interpreter in enumerate(args.interpreters or [sys.executable]):
                workdir = Path(temporary) / f"try-{number}"
                workdir.mkdir()
                version = try_wheel(interpreter, wheel, workdir)
                print(f"Python {version}: the README's sample ran quietly on the installed wheel")
    except SmokeError as error:
        print(f"wheel smoke test: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
