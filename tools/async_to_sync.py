"""Generate the sync modules of s3es from their async source, or check that they are current.

The event store, the repository and the command handler are written once, for asyncio, in the
``_async`` folders; their sync modules (the API most applications call) are generated from that
source, as psycopg 3 generates its sync code from its async code. So the retry, catch-up and
recovery logic is written, reviewed and fixed in one place, and ``make lint`` fails (``--check``)
if a generated module is not what its source generates.

The rewrite works on tokens, as unasync does, so that comments, ``noqa`` markers and layout
survive (an ``ast`` rewrite would lose the comments):

- ``async`` before ``def``, ``for`` and ``with`` goes, and so does ``await``;
- ``Awaitable[X]`` becomes ``X``;
- the names of :data:`NAMES` become their sync twins (in code, and in docstrings and comments as
  whole words): ``AsyncEventStore`` becomes ``EventStore``, ``AsyncWorkers`` (tasks)
  ``Workers`` (threads)...;
- a module path's ``._async`` segment goes (``s3es._eventstore._async.store`` is
  ``s3es._eventstore.store``).

Then ruff sorts the imports, turns what only async code must spell out into what the sync code
is written as (``for x in y: yield x`` into ``yield from y``, ``[x for x in y]`` into
``list(y)``), and formats the module. Each generated module starts with a comment naming its
source. Usage: ``python tools/async_to_sync.py`` writes every generated module;
``--check`` writes nothing and fails, naming them, if any is stale. Either way the tool fails
on a module under ``src/`` that carries the generated header but is not one of :data:`MODULES`
(a leftover of a source that moved, or a hand-made copy): nothing would keep it current.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = Path("src/s3es")

#: Each async source and the sync module generated from it.
MODULES = (
    (SRC / "_storage/_async/port.py", SRC / "_storage/port.py"),
    (SRC / "_storage/_async/latency.py", SRC / "_storage/latency.py"),
    (SRC / "_eventstore/_async/chain.py", SRC / "_eventstore/chain.py"),
    (SRC / "_eventstore/_async/store.py", SRC / "_eventstore/store.py"),
    (SRC / "_domain/_async/group.py", SRC / "_domain/group.py"),
    (SRC / "_domain/_async/repository.py", SRC / "_domain/repository.py"),
    (SRC / "_domain/_async/commands.py", SRC / "_domain/commands.py"),
    (SRC / "_readmodels/_async/s3.py", SRC / "_readmodels/s3.py"),
    (SRC / "_projections/_async/lease.py", SRC / "_projections/lease.py"),
    (SRC / "_projections/_async/consumer.py", SRC / "_projections/consumer.py"),
    (SRC / "_projections/_async/document_projector.py", SRC / "_projections/document_projector.py"),
    (SRC / "_projections/_async/reactor.py", SRC / "_projections/reactor.py"),
    (SRC / "_projections/_async/projector.py", SRC / "_projections/projector.py"),
)

#: The names of the async source and their sync twins.
NAMES = {
    # s3es's own classes
    "AsyncObjectStore": "ObjectStore",
    "AsyncForwardingObjectStore": "ForwardingObjectStore",
    "AsyncLatencyObjectStore": "LatencyObjectStore",
    "AsyncEventStore": "EventStore",
    "AsyncRepository": "Repository",
    "AsyncCommandHandler": "CommandHandler",
    "AsyncInlineView": "InlineView",
    "AsyncLanes": "Lanes",
    "AsyncReadModelStore": "ReadModelStore",
    "AsyncS3ReadModelStore": "S3ReadModelStore",
    "AsyncChangeNotifications": "ChangeNotifications",
    "AsyncLeaseKeeper": "LeaseKeeper",
    "AsyncConsumer": "Consumer",
    "AsyncDocumentProjector": "DocumentProjector",
    "AsyncDocumentReader": "DocumentReader",
    "AsyncReactorRunner": "ReactorRunner",
    "AsyncProjector": "Projector",
    "AsyncModelStore": "ModelStore",
    # s3es._base.concurrency: tasks and their thread twins
    "AsyncWorkers": "Workers",
    "AsyncFuture": "Future",
    "AsyncSignal": "Signal",
    "async_outcome": "outcome",
    "async_pause": "pause",
    "async_shielded": "shielded",
    "async_wait": "wait",
    # the language's
    "AsyncIterator": "Iterator",
    "AsyncIterable": "Iterable",
    "AsyncGenerator": "Generator",
    "StopAsyncIteration": "StopIteration",
    "asynccontextmanager": "contextmanager",
    "aclosing": "closing",
    "aclose": "close",
}
_WORDS = re.compile(r"\b(" + "|".join(map(re.escape, NAMES)) + r")\b")
_PATHS = re.compile(r"\._async\b")

HEADER = "# Generated from {source} by tools/async_to_sync.py: do not edit.\n"
#: The header, on one line or split over two as :func:`generate` writes a long one.
_GENERATED = re.compile(r"# Generated from \S+\s+(?:# )?by tools/async_to_sync\.py")

#: What ruff fixes in a generated module: imports out of order once renamed; loops and
#: comprehensions that async code must write out and sync code writes shorter.
FIXES = "I001,F401,UP028,C416,RUF022"


def _tokens(source: str) -> Iterator[tuple[str, int, str]]:
    """Each token of ``source`` as (the space before it, its type, its text)."""
    last_end = (1, 0)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        space = ""
        if token.start > last_end:
            if token.start[0] == last_end[0]:
                space = token.line[last_end[1] : token.start[1]]
            else:
                space = token.line[: token.start[1]]
        last_end = token.end
        yield space, token.type, token.string


def _drops(kind: int, text: str, following: str) -> bool:
    """Whether a token goes: ``async`` before ``def``, ``for`` or ``with``, and ``await``."""
    if kind != tokenize.NAME:
        return False
    return text == "await" or (text == "async" and following in {"def", "for", "with"})


def _renamed(kind: int, text: str) -> str:
    """A name's sync twin; in a string or a comment, every name's and module path's."""
    if kind == tokenize.NAME:
        return NAMES.get(text, text)
    if kind in {tokenize.STRING, tokenize.COMMENT, getattr(tokenize, "FSTRING_MIDDLE", -1)}:
        return _PATHS.sub("", _WORDS.sub(lambda match: NAMES[match.group(1)], text))
    return text


def _rewrite(source: str) -> str:
    """``source`` with every async construct and name turned into its sync twin."""
    tokens = list(_tokens(source))
    out: list[str] = []
    carry: str | None = None  # the space of a dropped token, for the token after it
    brackets: list[bool] = []  # for each open "[": whether its "]" is to be dropped too
    index = 0
    while index < len(tokens):
        space, kind, text = tokens[index]
        following = tokens[index + 1][2] if index + 1 < len(tokens) else ""
        index += 1
        if kind == tokenize.OP and text == "." and following == "_async":
            index += 1  # "._async" goes from a module path
            continue
        drop = _drops(kind, text, following)
        if kind == tokenize.NAME and text == "Awaitable" and following == "[":
            drop = True
            index += 1  # its "[" goes too, and the matching "]"
            brackets.append(True)
        elif kind == tokenize.OP and text == "[":
            brackets.append(False)
        elif kind == tokenize.OP and text == "]":
            drop = brackets.pop()
        if drop:
            carry = space if carry is None else carry
            continue
        if carry is not None:
            space, carry = carry, None
        out.append(f"{space}{_renamed(kind, text)}")
    return "".join(out)


def _ruff(arguments: list[str], source: str, target: Path) -> str:
    """``source`` as ruff with ``arguments`` leaves it (read from stdin, as ``target``)."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *arguments, "--stdin-filename", str(target), "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"ruff {' '.join(arguments)} failed on {target}:\n{done.stderr}")
    return done.stdout


def generate(source: Path) -> str:
    """The sync module that the async module at ``source`` (relative to the root) generates."""
    text = (ROOT / source).read_text(encoding="utf-8")
    target = dict(MODULES)[source]
    header = HEADER.format(source=source.as_posix())
    if len(header) > 101:  # noqa: PLR2004 - the line length, and its newline
        header = header.replace(" by ", "\n# by ", 1)
    rewritten = header + _rewrite(text)
    fixes = ["check", "--fix-only", "--unsafe-fixes", "--select", FIXES, "--quiet"]
    fixed = _ruff(fixes, rewritten, target)
    return _ruff(["format", "--quiet"], fixed, target)


def strays() -> list[Path]:
    """The modules under ``src/`` (relative to the root) with the generated header not in MODULES.

    Returns:
        Their paths, sorted: each is a leftover of a source that moved or a hand-made copy.
    """
    produced = {target for _, target in MODULES}
    found = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        with path.open(encoding="utf-8") as file:
            head = file.readline() + file.readline()
        if _GENERATED.match(head) and path.relative_to(ROOT) not in produced:
            found.append(path.relative_to(ROOT))
    return found


def main(argv: list[str] | None = None) -> int:
    """Write the generated modules, or with ``--check`` fail if any of them is stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; fail if a module is stale"
    )
    options = parser.parse_args(argv)
    stale = []
    for source, target in MODULES:
        generated = generate(source)
        path = ROOT / target
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if generated == current:
            continue
        stale.append(target)
        if not options.check:
            path.write_text(generated, encoding="utf-8")
            print(f"generated {target} from {source}")
    failed = False
    if options.check and stale:
        names = ", ".join(map(str, stale))
        print(f"stale (run python tools/async_to_sync.py): {names}", file=sys.stderr)
        failed = True
    if found := strays():
        names = ", ".join(map(str, found))
        print(
            f"generated header but not in tools/async_to_sync.py MODULES "
            f"(delete it, or list its source): {names}",
            file=sys.stderr,
        )
        failed = True
    if failed:
        return 1
    if options.check:
        print(f"{len(MODULES)} generated modules are current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
