"""One install story: s3es installs from a clone of its repository, never from an index by name."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: ``pip install s3es``, ``pip install 's3es[web]'``...: s3es is not on an index.
_BY_NAME = re.compile(r"""pip install\s+(?:--\S+\s+)*['"]?s3es\b""")


def _texts() -> list[Path]:
    return [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("**/*.md")),
        *sorted((ROOT / "src").glob("**/*.py")),
    ]


class TestInstallStory:
    def test_nothing_installs_s3es_by_name(self) -> None:
        """No page, and no error message of s3es's, tells to install s3es from a package index
        by name: they say to install the extra from the clone, as the README does."""
        found = [
            f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            for path in _texts()
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if _BY_NAME.search(line)
        ]
        assert found == []

    def test_the_readme_says_where_the_command_is(self) -> None:
        """The README says that make demo leaves the s3es command in .venv/bin."""
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        assert "`.venv/bin/s3es --help`" in readme
        assert "`source .venv/bin/activate`" in readme
