# ruff: noqa: INP001 - loaded by path, by mkdocstrings (mkdocs.yml) and by tests/test_docs.py
"""Render the docstrings of s3es, written in reST's inline style, as mkdocstrings' Markdown.

The docstrings are read in a terminal and by ``help()`` as much as on the site, so they keep
their reST habits, and this griffe extension (``RestRoles``, named in mkdocs.yml) converts them
as they are loaded, before mkdocstrings renders them:

- a role, ``:class:`~s3es.ConcurrencyError```, ``:meth:`sweep```, ``:func:`measure_requests```,
  becomes a code span, ``ConcurrencyError``, ``sweep()``: a cross-reference (autorefs'
  ``[`x`][identifier]``) when it names an object the API reference renders, else plain code;
- a double-backtick literal becomes a single-backtick code span;
- a paragraph ending in ``::`` followed by an indented block becomes a fenced code block;
- the ``#:`` comment lines above an attribute become its docstring.

A role is looked up as Sphinx does: in the docstring's own object, then its class and module,
then as an absolute dotted path. Only what the reference renders is linked: a public member of
a module named in the extension's ``public`` option (its ``__all__`` if it has one). Anything
else (a private helper, the orders example) is plain code, so the strict build never meets a
cross-reference it cannot resolve.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import griffe

#: The modules whose public members the API reference renders, each on some page.
PUBLIC_MODULES = (
    "s3es",
    "s3es.errors",
    "s3es.eventstore",
    "s3es.storage",
    "s3es.metering",
    "s3es.projections",
    "s3es.ops",
    "s3es.testing",
    "s3es.testing.embedded_s3",
)

#: What a role's target resolves to: the autorefs identifier to link to, or None for plain code.
Resolver = Callable[[str, str], "str | None"]

_ROLE = re.compile(
    r":(?:py:)?(?P<role>class|meth|func|data|attr|mod|exc|obj|const|type):`(?P<target>[^`]+)`"
)
_LITERAL = re.compile(r"(?<!`)``(?P<code>[^`]+)``(?!`)")
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})")
_CALLABLE_ROLES = frozenset({"meth", "func"})


def convert_roles(text: str, resolve: Resolver | None = None) -> str:
    """``text`` with its reST inline markup turned into Markdown; code blocks are left alone.

    ``resolve(role, target)`` returns the identifier to link a role to, or None: then, and when
    ``resolve`` is None, the role becomes plain code.
    """
    return "\n".join(
        line if is_code else _convert_line(line, resolve)
        for line, is_code in _code_lines(literal_blocks(text).split("\n"))
    )


def _convert_line(line: str, resolve: Resolver | None) -> str:
    def role(match: re.Match[str]) -> str:
        kind, target = match["role"], match["target"].strip()
        titled = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^<>]+)>", target)
        if titled is not None:
            title, target = titled["title"], titled["target"]
        else:
            shown = target.lstrip("~!.")
            title = shown.rsplit(".", 1)[-1] if target.startswith("~") else shown
            if kind in _CALLABLE_ROLES:
                title += "()"
        identifier = None
        if resolve is not None and not target.startswith("!"):
            identifier = resolve(kind, target.lstrip("~."))
        return f"[`{title}`][{identifier}]" if identifier else f"`{title}`"

    return _LITERAL.sub(r"`\g<code>`", _ROLE.sub(role, line))


def _code_lines(lines: Sequence[str]) -> Iterator[tuple[str, bool]]:
    """Each line with whether it is inside a fenced code block (fences included)."""
    opening: str | None = None
    for line in lines:
        if opening is None:
            fence = _FENCE.match(line)
            opening = fence["fence"] if fence is not None else None
            yield line, opening is not None
        else:
            stripped = line.strip()
            if stripped.startswith(opening) and not stripped.lstrip(opening[0]):
                opening = None  # a closing fence: the opening's character, at least as many
            yield line, True


def literal_blocks(text: str) -> str:
    """``text`` with each reST literal block (``Text::``, a blank line, an indented block) fenced.

    ``Text::`` becomes ``Text:`` (a line that is only ``::`` goes). The block's language is
    JSON if it starts with a brace or a bracket, Python if it parses as Python, else text.
    """
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.rstrip().endswith("::") or index >= len(lines) or lines[index].strip():
            out.append(line)
            continue
        base = len(line) - len(line.lstrip())
        end = index
        block: list[str] = []
        while end < len(lines) and (
            not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > base
        ):
            block.append(lines[end])
            end += 1
        while block and not block[-1].strip():
            block.pop()
        while block and not block[0].strip():
            block.pop(0)
        if not block:
            out.append(line)
            continue
        intro = line.rstrip()[:-1]
        if intro.strip():
            out.append(intro)
        body = _dedent(block)
        pad = " " * base
        out.extend(["", f"{pad}```{_language(body)}"])
        out.extend(f"{pad}{code}" if code else "" for code in body)
        out.extend([f"{pad}```", ""])
        index = end
        while index < len(lines) and not lines[index].strip():
            index += 1
    return "\n".join(out).rstrip("\n") + ("\n" if text.endswith("\n") else "")


def _dedent(block: Sequence[str]) -> list[str]:
    margin = min(len(line) - len(line.lstrip()) for line in block if line.strip())
    return [line[margin:] for line in block]


def _language(body: Sequence[str]) -> str:
    source = "\n".join(body)
    if source.lstrip().startswith(("{", "[")):
        return "json"
    try:
        ast.parse(source)
    except SyntaxError:
        return "text"
    return "python"


def comment_docstring(lines: Sequence[str], lineno: int) -> str | None:
    """The ``#:`` comment lines right above line ``lineno`` (counted from 1), joined, or None."""
    found: list[str] = []
    index = lineno - 2
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        found.append(lines[index].lstrip()[2:].strip())
        index -= 1
    return " ".join(reversed(found)) or None


class RestRoles(griffe.Extension):
    """Converts every docstring of a package as it is loaded; see the module's docstring."""

    def __init__(self, public: Sequence[str] = PUBLIC_MODULES) -> None:
        super().__init__()
        self.public_modules = tuple(public)

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **_: Any) -> None:
        """Convert the docstrings of ``pkg`` once the whole package is loaded."""
        for obj in iter_objects(pkg):
            if obj.docstring is None and obj.is_attribute and obj.lineno is not None:
                comment = comment_docstring(obj.module.lines, obj.lineno)
                if comment is not None:
                    obj.docstring = griffe.Docstring(
                        comment,
                        lineno=obj.lineno,
                        parent=obj,
                        parser=loader.docstring_parser,
                        parser_options=loader.docstring_options,
                    )
            if obj.docstring is not None:
                obj.docstring.value = convert_roles(
                    obj.docstring.value, functools.partial(self.resolve, obj, loader=loader)
                )

    def resolve(
        self, obj: griffe.Object, _role: str, target: str, *, loader: griffe.GriffeLoader
    ) -> str | None:
        """The identifier the reference renders ``target`` under, seen from ``obj``, or None."""
        found = _lookup(obj, target, loader)
        if found is None:
            return None
        return self._rendered_path(found, loader)

    def _rendered_path(self, found: griffe.Object, loader: griffe.GriffeLoader) -> str | None:
        path = found.path
        # The closest rendered ancestor: the object itself, else its class, else its module.
        containing = [
            (public, canonical)
            for public, canonical in self._public_objects(loader)
            if path == canonical or path.startswith(canonical + ".")
        ]
        if not containing:
            return None
        public, canonical = max(containing, key=lambda pair: len(pair[1]))
        if path == canonical:
            return public
        rest = path.removeprefix(canonical + ".").split(".")
        if any(name.startswith("_") for name in rest) or not _rendered(found):
            return None
        return ".".join([public, *rest])

    def _public_objects(self, loader: griffe.GriffeLoader) -> Iterator[tuple[str, str]]:
        """(public path, canonical path) of each module and member the reference renders."""
        for name in self.public_modules:
            package = name.split(".", 1)[0]
            if package not in loader.modules_collection:
                loader.load(package)  # a page that renders another package came first
            module = loader.modules_collection.get_member(name)
            if not isinstance(module, griffe.Module):
                continue
            yield name, module.path
            exported = module.exports
            names = (
                list(exported)
                if exported is not None
                else [member for member in module.members if not member.startswith("_")]
            )
            for member_name in names:
                member = module.members.get(str(member_name))
                if member is None:
                    continue
                target = _final(member)
                if target is None:
                    continue
                if exported is None and (member.is_alias or not _rendered(target)):
                    continue  # without __all__: imports are not members; undocumented are hidden
                yield f"{name}.{member_name}", target.path


def iter_objects(root: griffe.Object) -> Iterator[griffe.Object]:
    """``root`` and everything defined in it, recursively; imported names (aliases) excluded."""
    yield root
    for member in root.members.values():
        if not member.is_alias and isinstance(member, griffe.Object):
            yield from iter_objects(member)


def _final(obj: griffe.Object | griffe.Alias) -> griffe.Object | None:
    """The object an alias finally points at (``obj`` if it is not one), or None if unknown."""
    if not isinstance(obj, griffe.Alias):
        return obj
    try:
        return obj.final_target
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _lookup(obj: griffe.Object, target: str, loader: griffe.GriffeLoader) -> griffe.Object | None:
    """The object ``target`` names in ``obj``'s scopes (itself, its parents), else absolutely."""
    first, *rest = target.split(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        if first in scope.members:
            return _walk(scope.members[first], rest)
        scope = scope.parent
    if rest and first not in loader.modules_collection:
        try:
            loader.load(first)  # a dotted path into a package not loaded yet
        except ImportError:
            return None  # no such package: the role is shown as plain code
    try:
        found = loader.modules_collection.get_member(target)
    except KeyError:
        return None
    return _final(found)


def _walk(start: griffe.Object | griffe.Alias, names: Sequence[str]) -> griffe.Object | None:
    current = _final(start)
    for name in names:
        if current is None or name not in current.members:
            return None
        current = _final(current.members[name])
    return current


def _rendered(obj: griffe.Object) -> bool:
    """Whether mkdocstrings renders ``obj`` as a member (it hides undocumented ones)."""
    return obj.docstring is not None or any(
        _rendered(member) for member in obj.members.values() if isinstance(member, griffe.Object)
    )


def on_page_content(html: str, **_: Any) -> str:
    """MkDocs hook: show the sources that a page pulls in (the examples page) unfolded."""
    return html.replace(
        '<details class="mkdocstrings-source">', '<details class="mkdocstrings-source" open>'
    )
