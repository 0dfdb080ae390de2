"""Markdown to urwid text markup: headings, lists, quotes, inline code/bold, fenced code.

Only what models actually write, parsed line by line so a half-streamed answer renders as well
as a finished one (an unclosed fence is a code block up to the end). Code is coloured with
pygments when it is installed, else shown plain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Markup = list[Any]  # urwid text markup: str or (attr, str)

_FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+#.-]*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^(\s*)([-*+])\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d+[.)])\s+(.*)$")
_INLINE = re.compile(r"(`[^`\n]+`|\*\*[^*\n]+\*\*|__[^_\n]+__)")

_TOKEN_ROLES = (  # pygments token type prefix -> palette role, most specific first
    ("Token.Comment", "code.com"), ("Token.Literal.String", "code.str"),
    ("Token.Literal.Number", "code.num"), ("Token.Keyword", "code.kw"),
    ("Token.Name.Function", "code.fn"), ("Token.Name.Class", "code.fn"),
    ("Token.Name.Builtin", "code.kw"), ("Token.Operator.Word", "code.kw"),
)


@dataclass
class Block:
    kind: str  # para | item | heading | code | quote | rule
    markup: Markup = field(default_factory=list)
    language: str = ""


def inline(text: str, base: str | None = None) -> Markup:
    """`code` and **bold** inside a line; the rest in ``base``."""
    out: Markup = []
    for piece in _INLINE.split(text):
        if not piece:
            continue
        if piece.startswith("`") and piece.endswith("`") and len(piece) > 2:
            out.append(("inline.code", piece[1:-1]))
        elif piece[:2] in ("**", "__") and piece[-2:] == piece[:2] and len(piece) > 4:
            out.append(("bold", piece[2:-2]))
        else:
            out.append((base, piece) if base else piece)
    return out


def highlight(code: str, language: str) -> Markup:
    """Pygments-coloured markup for ``code``; plain ``code`` attr when pygments is missing."""
    try:
        from pygments.lexers import get_lexer_by_name
        from pygments.util import ClassNotFound
    except ImportError:
        return [("code", code)]
    try:
        lexer = get_lexer_by_name(language or "text", stripnl=False, ensurenl=False)
    except ClassNotFound:
        return [("code", code)]
    out: Markup = []
    for token, value in lexer.get_tokens(code):
        name = str(token)
        role = next((r for prefix, r in _TOKEN_ROLES if name.startswith(prefix)), "code")
        if out and out[-1][0] == role:
            out[-1] = (role, out[-1][1] + value)
        else:
            out.append((role, value))
    return out or [("code", "")]


def parse(text: str) -> list[Block]:
    blocks: list[Block] = []
    para: list[str] = []
    code: list[str] | None = None
    language = ""

    def flush_para() -> None:
        if para:
            markup: Markup = []
            for number, line in enumerate(para):
                markup += (["\n"] if number else []) + inline(line)
            blocks.append(Block("para", markup))
            para.clear()

    for line in text.split("\n"):
        fence = _FENCE.match(line)
        if code is not None:
            if fence and not fence.group(2):
                blocks.append(Block("code", highlight("\n".join(code), language), language))
                code = None
            else:
                code.append(line)
            continue
        if fence:
            flush_para()
            code, language = [], fence.group(2)
            continue
        if not line.strip():
            flush_para()
            continue
        heading = _HEADING.match(line)
        if heading:
            flush_para()
            blocks.append(Block("heading", inline(heading.group(2), "heading")))
            continue
        if line.strip() in ("---", "***", "___"):
            flush_para()
            blocks.append(Block("rule"))
            continue
        if line.startswith(">"):
            flush_para()
            blocks.append(Block("quote", inline(line.lstrip("> "), "dim")))
            continue
        bullet = _BULLET.match(line) or _NUMBERED.match(line)
        if bullet:
            flush_para()
            indent, mark, rest = bullet.groups()
            mark = "•" if mark in "-*+" else mark
            blocks.append(Block("item", [indent + "  ", ("accent", mark), " ", *inline(rest)]))
            continue
        para.append(line)
    flush_para()
    if code is not None:  # still streaming: show what arrived
        blocks.append(Block("code", highlight("\n".join(code), language), language))
    return blocks
