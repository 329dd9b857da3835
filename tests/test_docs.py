"""The documentation's code samples, executed: a sample that no longer works fails the suite.

Every fenced block of the README and of ``docs/**/*.md`` whose info string starts with
``python`` (or ``py``, ``python3``) is run, in the order of the file, in one namespace per file:
a block can use the names an earlier block of the same file defined, as a reader who follows the
page would.

Convention: a block whose info string is ``python skip`` (the word ``skip`` anywhere after the
language) is shown but not run. Use it only for a sample that needs real AWS. GitHub and MkDocs
(with ``pymdownx.superfences``) both highlight it as Python and ignore the ``skip``. Blocks of any
other language (``bash``, ``json``, ``text``...) are never run.

A failing block is reported with its file and the line of the fence, and its traceback points at
the lines of the Markdown file. Samples check what they claim with ``assert``.

The relative links of every page are checked too: each must reach an existing file and, with a
``#fragment``, a heading of that page.

The site itself (``make docs``, mkdocs.yml) is built by ``make test``, not here. What is tested
here without building: that the API reference has a page entry for every public name, and
``docs/hooks.py``, which turns the docstrings' reST roles into Markdown for mkdocstrings.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import textwrap
import traceback
import types
from collections.abc import Iterator
from pathlib import Path

import attrs
import griffe
import pytest
from docs import hooks

import s3es
import s3es.aio
import s3es.errors
import s3es.eventstore
import s3es.metering
import s3es.ops
import s3es.projections
import s3es.reactors
import s3es.readmodels
import s3es.storage
import s3es.testing

#: The root and its themed modules: the public surface the API reference documents.
PUBLIC_MODULES = (
    s3es,
    s3es.errors,
    s3es.eventstore,
    s3es.storage,
    s3es.metering,
    s3es.projections,
    s3es.readmodels,
    s3es.reactors,
    s3es.ops,
    s3es.testing,
    s3es.aio,
)

ROOT = Path(__file__).resolve().parent.parent

#: Pages that must have at least one runnable block: a page that lost them all is a mistake.
REQUIRED = (
    "README.md",
    "docs/getting-started.md",
    "docs/concepts.md",
    "docs/design.md",
    "docs/chunk-format.md",
    "docs/testing.md",
    "docs/examples.md",
)

_PYTHON = frozenset({"python", "py", "python3"})
_OPENING = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


@attrs.frozen
class CodeBlock:
    """One fenced block: its language, whether it is marked skip, and where it is."""

    path: Path
    #: Line numbers (from 1) of the opening and the closing fence.
    line: int
    end: int
    language: str
    skip: bool
    source: str

    @property
    def runnable(self) -> bool:
        """Whether the block is Python that is not marked skip."""
        return self.language in _PYTHON and not self.skip


def code_blocks(path: Path) -> list[CodeBlock]:
    """Every fenced block of the Markdown file ``path``, in order.

    A fence may be indented (inside an admonition or a list item): its content loses that
    indentation. Raises ValueError, naming the file and line, for a fence that is never closed.
    """
    blocks: list[CodeBlock] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _OPENING.match(lines[index])
        index += 1
        if opening is None:
            continue
        fence, indent = opening["fence"], opening["indent"]
        words = opening["info"].split()
        start = index  # the opening fence's line number, counted from 1
        body: list[str] = []
        while True:
            if index == len(lines):
                raise ValueError(f"{path}: the code block opened at line {start} is never closed")
            text = lines[index]
            index += 1
            stripped = text.strip()
            if stripped.startswith(fence) and not stripped.lstrip(fence[0]):
                break
            body.append(text.removeprefix(indent))
        blocks.append(
            CodeBlock(
                path=path,
                line=start,
                end=index,
                language=words[0].lower() if words else "",
                skip="skip" in words[1:],
                source=textwrap.dedent("\n".join(body)) + "\n",
            )
        )
    return blocks


def run_blocks(path: Path, blocks: list[CodeBlock]) -> dict[str, object]:
    """Run the runnable ``blocks`` of ``path`` in order in one namespace; return the namespace.

    The namespace is a module registered in ``sys.modules`` while the blocks run, so classes
    defined in a sample behave as they do in a real module (attrs, cattrs and typing look their
    module up). A failure is reported with the file and the line of the failing block.
    """
    name = "docs_sample_" + re.sub(r"\W", "_", path.stem)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        for block in blocks:
            if not block.runnable:
                continue
            # Blank lines in front keep the line numbers of the Markdown file in tracebacks.
            # dont_inherit: a sample runs as a reader's file would, without this module's
            # `from __future__ import annotations`.
            source = "\n" * block.line + block.source
            code = compile(source, str(path), "exec", dont_inherit=True)
            failure = _run(code, module, f"{path}: the python block at line {block.line} failed")
            if failure is not None:
                pytest.fail(failure, pytrace=False)
    finally:
        del sys.modules[name]
    return dict(module.__dict__)


def _run(code: types.CodeType, module: types.ModuleType, where: str) -> str | None:
    """Run ``code`` in ``module``; None if it succeeds, else a report starting with ``where``."""
    try:
        exec(code, module.__dict__)  # noqa: S102 - running the docs is the point
    except Exception as error:
        # The traceback without this function's frame: the sample's lines, then s3es's.
        frames = error.__traceback__.tb_next if error.__traceback__ is not None else None
        trace = "".join(traceback.format_exception(type(error), error, frames))
        return f"{where}: {type(error).__name__}: {error}\n\n{trace}"
    return None


def _documents() -> list[str]:
    found = {"README.md"} | {
        path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").glob("**/*.md")
    }
    return sorted(found | set(REQUIRED))


_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")


def heading_anchor(title: str) -> str:
    """The anchor of a heading, as GitHub and MkDocs (Python-Markdown's toc) both make it."""
    text = re.sub(r"[^\w\s-]", "", title).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def prose_lines(path: Path) -> list[str]:
    """The lines of ``path`` outside fenced code blocks (blanks where the blocks were)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for block in code_blocks(path):
        lines[block.line - 1 : block.end] = [""] * (block.end - block.line + 1)
    return lines


def _anchors(path: Path) -> set[str]:
    headings = (_HEADING.match(line) for line in prose_lines(path))
    return {heading_anchor(heading["title"]) for heading in headings if heading is not None}


def broken_links(path: Path) -> list[str]:
    """Relative links of ``path``, outside code, whose file or heading does not exist."""
    broken = []
    for match in _LINK.finditer("\n".join(prose_lines(path))):
        target = match["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:...
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.is_file():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading with anchor #{anchor} in {linked.name}")
    return broken


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """Put back the root logger's handlers and level, and the ``s3es`` logger's level, that a
    sample changed (the tutorial's Logs section configures logging)."""
    root, s3es_logger = logging.getLogger(), logging.getLogger("s3es")
    handlers, levels = list(root.handlers), (root.level, s3es_logger.level)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(levels[0])
        s3es_logger.setLevel(levels[1])


@contextlib.contextmanager
def _tracer_provider_restored() -> Iterator[None]:
    """Put back OpenTelemetry's global tracer provider as it was before a sample set one.

    The operations page sets a provider (as an application does, once) and shuts it down at
    its end: left in place, every later test's s3es spans would go to a shut-down provider,
    whose warnings reach the CLI tests' stderr. OpenTelemetry lets a provider be set once per
    process, so its own test helpers reset these two globals the same way; s3es's tracer, bound
    to the provider it first found, is made again.
    """
    from opentelemetry import trace  # noqa: PLC0415 - the otel extra
    from opentelemetry.util._once import Once  # noqa: PLC0415

    from s3es._base import tracing  # noqa: PLC0415

    provider, active = trace._TRACER_PROVIDER, tracing._ACTIVE
    try:
        yield
    finally:
        trace._TRACER_PROVIDER = provider
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER_SET_ONCE._done = provider is not None
        if tracing._ACTIVE is not active:
            tracing._TRACER = tracing._tracer()
            tracing._ACTIVE = None


class TestDocs:
    @pytest.mark.parametrize("document", _documents())
    def test_samples_run(self, document: str) -> None:
        """Every python block of the document runs without error, in order, in one namespace."""
        path = ROOT / document
        assert path.is_file(), f"{document} is missing"
        blocks = code_blocks(path)
        if document in REQUIRED:
            assert any(block.runnable for block in blocks), f"{document} has no runnable block"
        with _logging_restored(), _tracer_provider_restored():
            run_blocks(path, blocks)

    @pytest.mark.parametrize("document", _documents())
    def test_links(self, document: str) -> None:
        """Every relative link of the document points at an existing page and heading."""
        assert broken_links(ROOT / document) == []


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


class TestCodeBlocks:
    def test_languages_and_skip(self, tmp_path: Path) -> None:
        """Python blocks are runnable unless marked skip; other languages never are."""
        path = _write(
            tmp_path,
            """\
            Text.

            ```python
            x = 1
            ```

            ```python skip
            connect_to_aws()
            ```

            ```bash
            make test
            ```

            ```
            plain
            ```
            """,
        )
        blocks = code_blocks(path)
        assert [(b.line, b.end, b.language, b.skip, b.runnable) for b in blocks] == [
            (3, 5, "python", False, True),
            (7, 9, "python", True, False),
            (11, 13, "bash", False, False),
            (15, 17, "", False, False),
        ]
        assert blocks[0].source == "x = 1\n"

    def test_indented_fence(self, tmp_path: Path) -> None:
        """A fence indented inside an admonition yields its content without the indentation."""
        path = _write(
            tmp_path,
            """\
            !!! note
                ```python
                if True:
                    y = 2
                ```
            """,
        )
        (block,) = code_blocks(path)
        assert block.source == "if True:\n    y = 2\n"

    def test_longer_fence_holds_a_shorter_one(self, tmp_path: Path) -> None:
        """A block opened with four backticks ends only at four: three inside are content."""
        path = _write(
            tmp_path,
            """\
            ````markdown
            ```python
            z = 3
            ```
            ````
            """,
        )
        (block,) = code_blocks(path)
        assert block.language == "markdown"
        assert "```python" in block.source

    def test_unclosed_fence(self, tmp_path: Path) -> None:
        """A fence that is never closed is an error naming the file and the line it opened at."""
        path = _write(tmp_path, "Text.\n\n```python\nx = 1\n")
        with pytest.raises(ValueError, match=r"page\.md: the code block opened at line 3"):
            code_blocks(path)


class TestRunBlocks:
    def test_shared_namespace(self, tmp_path: Path) -> None:
        """A later block sees the names an earlier block of the same file defined."""
        path = _write(
            tmp_path,
            """\
            ```python
            import attrs

            @attrs.frozen
            class Point:
                x: int
            ```

            ```python skip
            raise RuntimeError("skipped blocks do not run")
            ```

            ```python
            point = Point(3)
            ```
            """,
        )
        namespace = run_blocks(path, code_blocks(path))
        assert repr(namespace["point"]) == "Point(x=3)"

    def test_failure_names_file_and_line(self, tmp_path: Path) -> None:
        """A failing block fails the test with the file, the block's line and the error."""
        path = _write(
            tmp_path,
            """\
            ```python
            a = 1
            ```

            ```python
            assert a == 2, "a is not 2"
            ```
            """,
        )
        with pytest.raises(pytest.fail.Exception) as failed:
            run_blocks(path, code_blocks(path))
        assert f"{path}: the python block at line 5 failed: AssertionError: a is not 2" in str(
            failed.value
        )

    def test_traceback_points_at_markdown_line(self, tmp_path: Path) -> None:
        """The report's traceback shows the failing line of the Markdown file, with its text."""
        path = _write(
            tmp_path,
            """\
            Some text.

            ```python
            b = 1
            c = b / 0
            ```
            """,
        )
        with pytest.raises(pytest.fail.Exception) as failed:
            run_blocks(path, code_blocks(path))
        message = str(failed.value)
        assert f'File "{path}", line 5, in <module>\n    c = b / 0' in message
        assert "ZeroDivisionError" in message

    def test_no_future_import_leaks(self, tmp_path: Path) -> None:
        """Samples run without this module's ``from __future__ import annotations``."""
        path = _write(
            tmp_path,
            """\
            ```python
            def f(x: int) -> None: ...
            annotation = f.__annotations__["x"]
            ```
            """,
        )
        assert run_blocks(path, code_blocks(path))["annotation"] is int


class TestLinks:
    def test_anchor(self) -> None:
        """A heading's anchor is lower case, without punctuation, with hyphens for spaces."""
        assert heading_anchor("moto is not atomic, and how the tests make it so") == (
            "moto-is-not-atomic-and-how-the-tests-make-it-so"
        )
        assert heading_anchor("`SNAPSHOT_SCHEMA` and the replay fallback") == (
            "snapshot_schema-and-the-replay-fallback"
        )

    def test_broken_links(self, tmp_path: Path) -> None:
        """A link to a missing file or heading is reported; web links and code are not checked."""
        (tmp_path / "other.md").write_text("# Other page\n\n## A section\n", encoding="utf-8")
        path = _write(
            tmp_path,
            """\
            # Page

            [fine](other.md#a-section), [self](#page), [web](https://example.com/x.md),
            [no file](missing.md), [no heading](other.md#nowhere).

            ```python
            links = "[in code](missing-too.md)"
            ```
            """,
        )
        assert broken_links(path) == [
            f"missing.md: no file {tmp_path / 'missing.md'}",
            "other.md#nowhere: no heading with anchor #nowhere in other.md",
        ]


def reference_identifiers() -> list[str]:
    """The identifiers of the ``::: identifier`` blocks of the API reference pages, in order."""
    found: list[str] = []
    for page in sorted((ROOT / "docs" / "reference").glob("*.md")):
        found += re.findall(r"^::: (\S+)", "\n".join(prose_lines(page)), re.MULTILINE)
    return found


class TestReference:
    def test_every_public_name_has_an_entry(self) -> None:
        """Each public name is on a reference page: as ``s3es.X`` if the root exports it, else
        under its themed module."""
        public = [
            f"s3es.{name}" if name in s3es.__all__ else f"{module.__name__}.{name}"
            for module in PUBLIC_MODULES
            for name in module.__all__
        ]
        missing = sorted(set(public) - set(reference_identifiers()))
        assert missing == [], f"add them to a page of docs/reference/: {missing}"

    def test_entries_name_public_objects_once(self) -> None:
        """An entry names a public object (no private module) and appears on one page only."""
        identifiers = reference_identifiers()
        assert [name for name in identifiers if re.search(r"\._(?!_)", name)] == []
        assert sorted({name for name in identifiers if identifiers.count(name) > 1}) == []


def _link(identifier: str) -> hooks.Resolver:
    return lambda _role, target: identifier if target == identifier.rsplit(".", 1)[-1] else None


class TestRoles:
    def test_roles_become_code(self) -> None:
        """Unresolved roles are code spans: ``~`` keeps the last name; functions get ``()``."""
        text = (
            ":class:`~s3es.ConcurrencyError`, :class:`s3es.eventstore.Chunk`, :meth:`sweep`, "
            ":func:`measure_requests`, :data:`Progress`, :mod:`examples.orders.demo`, "
            ":class:`the store <s3es.storage.ObjectStore>`, ``If-None-Match: *``"
        )
        assert hooks.convert_roles(text) == (
            "`ConcurrencyError`, `s3es.eventstore.Chunk`, `sweep()`, `measure_requests()`, "
            "`Progress`, "
            "`examples.orders.demo`, `the store`, `If-None-Match: *`"
        )

    def test_resolved_roles_become_links(self) -> None:
        """A role the resolver knows becomes an autorefs link; it is asked without the ``~``."""
        asked: list[tuple[str, str]] = []

        def resolve(role: str, target: str) -> str | None:
            asked.append((role, target))
            return "s3es.EventStore.sweep" if target == "sweep" else None

        converted = hooks.convert_roles("Raises :class:`~s3es.X`; :meth:`sweep` deletes.", resolve)
        assert converted == "Raises `X`; [`sweep()`][s3es.EventStore.sweep] deletes."
        assert asked == [("class", "s3es.X"), ("meth", "sweep")]

    def test_code_blocks_are_left_alone(self) -> None:
        """Roles and double backticks inside a fenced block are code, not markup."""
        text = "See :class:`A`.\n\n```python\nx = ``y``  # :class:`A`\n```\n"
        assert hooks.convert_roles(text, _link("s3es.A")) == (
            "See [`A`][s3es.A].\n\n```python\nx = ``y``  # :class:`A`\n```\n"
        )

    def test_literal_blocks_are_fenced(self) -> None:
        """``Text::`` and an indented block become ``Text:`` and a fenced block of its language."""
        text = textwrap.dedent(
            """\
            Write three methods::

                class Order(Aggregate):
                    def decide(self, command, state): ...

            A chunk::

                {"format": 1, "events": [...]}

            Not code::

                one :class:`A`, two
            """
        )
        assert hooks.convert_roles(text) == textwrap.dedent(
            """\
            Write three methods:

            ```python
            class Order(Aggregate):
                def decide(self, command, state): ...
            ```

            A chunk:

            ```json
            {"format": 1, "events": [...]}
            ```

            Not code:

            ```text
            one :class:`A`, two
            ```
            """
        )

    def test_comment_docstring(self) -> None:
        """The ``#:`` lines right above an attribute, joined; None without them."""
        lines = ["x = 1", "#: How many", "#: at most.", "LIMIT = 3", "# plain", "OTHER = 4"]
        assert hooks.comment_docstring(lines, 4) == "How many at most."
        assert hooks.comment_docstring(lines, 6) is None


def _load(tmp_path: Path, files: dict[str, str]) -> griffe.Module:
    folder = tmp_path / "pkg"
    folder.mkdir()
    for name, source in files.items():
        (folder / name).write_text(textwrap.dedent(source), encoding="utf-8")
    extensions = griffe.load_extensions(hooks.RestRoles(public=["pkg"]))
    loader = griffe.GriffeLoader(search_paths=[tmp_path], extensions=extensions)
    package = loader.load("pkg")
    assert isinstance(package, griffe.Module)
    return package


def _docstring(package: griffe.Module, path: str) -> str:
    obj: griffe.Object | griffe.Alias = package[path]
    assert obj.docstring is not None, f"{path} has no docstring"
    value: str = obj.docstring.value
    return value


class TestRestRoles:
    def test_links_only_what_the_reference_renders(self, tmp_path: Path) -> None:
        """Roles link to the public path of exported, documented objects; others are code."""
        pkg = _load(
            tmp_path,
            {
                "__init__.py": """\
                    from pkg._impl import Store, measure
                    __all__ = ["Store", "measure"]
                """,
                "_impl.py": """\
                    class Store:
                        '''Store; :meth:`sweep` cleans; :meth:`_hidden`, :class:`Helper` not.'''

                        def sweep(self) -> None:
                            '''Delete; see :func:`measure` and :class:`~pkg.Store`.'''

                        def _hidden(self) -> None:
                            '''Private.'''

                    class Helper:
                        '''Not exported: see :class:`Store`.'''

                    def measure() -> None:
                        '''Count :data:`LIMIT` and :class:`Missing`.'''

                    #: At most this many.
                    LIMIT = 3
                """,
            },
        )
        assert _docstring(pkg, "_impl.Store") == (
            "Store; [`sweep()`][pkg.Store.sweep] cleans; `_hidden()`, `Helper` not."
        )
        assert _docstring(pkg, "_impl.Store.sweep") == (
            "Delete; see [`measure()`][pkg.measure] and [`Store`][pkg.Store]."
        )
        assert _docstring(pkg, "_impl.Helper") == "Not exported: see [`Store`][pkg.Store]."
        assert _docstring(pkg, "_impl.measure") == "Count `LIMIT` and `Missing`."
        assert _docstring(pkg, "_impl.LIMIT") == "At most this many."

    def test_every_role_of_s3es_is_converted(self) -> None:
        """Loaded with the extension, no docstring of s3es keeps a reST role or a ``::`` block."""
        extensions = griffe.load_extensions(hooks.RestRoles())
        loader = griffe.GriffeLoader(search_paths=[ROOT / "src"], extensions=extensions)
        package = loader.load("s3es")
        assert isinstance(package, griffe.Module)
        left = [
            f"{obj.path}: {match[0]}"
            for obj in hooks.iter_objects(package)
            if obj.docstring is not None
            for match in re.finditer(r":[a-z]+:`[^`]*`|::$", obj.docstring.value, re.MULTILINE)
        ]
        assert left == []
        memory = _docstring(package, "_storage.memory.InMemoryObjectStore")
        assert "[`ObjectStore`][s3es.storage.ObjectStore]" in memory
