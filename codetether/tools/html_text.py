"""HTML -> markdown or plain text, with the stdlib's ``html.parser``.

A model reads a web page best as markdown: headings, paragraphs, lists, code blocks and links
(made absolute so they can be fetched next) survive; scripts, styles and page chrome (nav, footer)
are dropped because they are noise that costs context. This is deliberately rough: it aims at
readable text, not a faithful rendering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

# whose content is never shown
DROP = frozenset({"script", "style", "noscript", "template", "svg", "nav", "footer", "head",
                  "iframe", "object", "canvas", "select", "button"})
BLOCKS = frozenset({"p", "div", "section", "article", "main", "header", "aside", "figure",
                    "figcaption", "form", "fieldset", "address", "details", "summary", "dl",
                    "dt", "dd", "center", "body", "html"})
VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed",
                  "source", "track", "wbr", "param"})
_SPACES = re.compile(r"\s+")


@dataclass
class _Table:
    rows: list[list[str]] = field(default_factory=list)
    header_rows: int = 0
    cell_start: int | None = None
    row_has_th: bool = False


class HtmlConverter(HTMLParser):
    """Feed HTML, then read ``text()`` and ``title``. ``markdown=False`` gives plain text."""

    def __init__(self, base_url: str = "", *, markdown: bool = True) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.markdown = markdown
        self.title = ""
        self.out: list[str] = []
        self._drop: list[str] = []  # open dropped elements
        self._in_title = False
        self._pre = 0
        self._lists: list[list[int | str]] = []  # [kind, counter]
        self._links: list[tuple[str, int]] = []  # (href, index into out)
        self._quotes: list[int] = []
        self._tables: list[_Table] = []
        self._item_open = False  # a list marker was just written: <li><p> stays on its line

    # ---- output helpers --------------------------------------------------------------------

    def _trailing_newlines(self) -> int:
        count = 0
        for frag in reversed(self.out):
            stripped = frag.rstrip("\n")
            count += len(frag) - len(stripped)
            if stripped:
                return count
        return 99  # nothing but newlines so far: a document never starts with blank lines

    def _block(self, newlines: int = 2) -> None:
        """End the current block: make sure ``newlines`` newlines end the output."""
        if self._item_open:
            return
        if self._lists and not self._pre:
            newlines = 1  # paragraphs inside a list item keep the list tight
        if self.out:
            self.out[-1] = self.out[-1].rstrip(" ")
        have = self._trailing_newlines()
        if have < newlines:
            self.out.append("\n" * (newlines - have))

    def _emit(self, text: str) -> None:
        if not text:
            return
        at_line_start = not self.out or self.out[-1].endswith(("\n", " "))
        if at_line_start and self._pre == 0:
            text = text.lstrip(" ")
        if text:
            self.out.append(text)
            self._item_open = False

    def _mark(self, text: str) -> None:
        if self.markdown:
            self._emit(text)

    # ---- parser callbacks ------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: (v or "") for k, v in attrs}
        if tag == "body" and self._drop == ["head"]:
            self._drop.clear()  # <head> left unclosed: the body still counts
        if tag == "base" and attr.get("href"):  # lives in the (dropped) <head>
            self.base_url = urljoin(self.base_url, attr["href"])
        if self._drop:
            if tag in DROP and tag not in VOID:
                self._drop.append(tag)
            if tag == "title":
                self._in_title = True
            return
        if tag == "title":
            self._in_title = True
            return
        if tag in DROP:
            self._drop.append(tag)
            return
        handler = getattr(self, f"_start_{tag}", None)
        if handler is not None:
            handler(attr)
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._block()
            self._mark("#" * int(tag[1]) + " ")
        elif tag in BLOCKS:
            self._block()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            return
        if self._drop:
            if tag in self._drop:
                while self._drop and self._drop.pop() != tag:
                    pass
            return
        handler = getattr(self, f"_end_{tag}", None)
        if handler is not None:
            handler()
        elif tag in BLOCKS or tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._block()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = (self.title + " " + _SPACES.sub(" ", data)).strip()
            return
        if self._drop:
            return
        if self._pre:
            self.out.append(data)
            return
        self._emit(_SPACES.sub(" ", data))

    # ---- elements --------------------------------------------------------------------------

    def _start_br(self, attr: dict[str, str]) -> None:
        if self.out:
            self.out[-1] = self.out[-1].rstrip(" ")
        self.out.append("\n")

    def _start_hr(self, attr: dict[str, str]) -> None:
        self._block()
        self._mark("---")
        self._block()

    def _start_img(self, attr: dict[str, str]) -> None:
        alt = _SPACES.sub(" ", attr.get("alt", "")).strip()
        src = attr.get("src", "")
        if self.markdown and src and not src.startswith("data:"):
            self._emit(f"![{alt}]({urljoin(self.base_url, src)})")
        elif alt:
            self._emit(alt)

    def _start_a(self, attr: dict[str, str]) -> None:
        if self._links:  # an unclosed <a>: close it before opening the next one
            self._end_a()
        self._links.append((attr.get("href", ""), len(self.out)))

    def _end_a(self) -> None:
        if not self._links:
            return
        href, start = self._links.pop()
        inner = "".join(self.out[start:])
        text = inner.strip()
        del self.out[start:]
        if not text:
            return
        if inner[:1].isspace():
            self._emit(" ")
        if self.markdown and href and not href.startswith(("#", "javascript:", "mailto:")):
            self._emit(f"[{text}]({urljoin(self.base_url, href)})")
        else:
            self._emit(text)
        if inner[-1:].isspace():
            self._emit(" ")

    def _inline(self, marker: str) -> None:
        if self._pre == 0:
            self._mark(marker)

    def _start_strong(self, attr: dict[str, str]) -> None:
        self._inline("**")

    def _end_strong(self) -> None:
        self._inline("**")

    _start_b, _end_b = _start_strong, _end_strong

    def _start_em(self, attr: dict[str, str]) -> None:
        self._inline("*")

    def _end_em(self) -> None:
        self._inline("*")

    _start_i, _end_i = _start_em, _end_em

    def _start_code(self, attr: dict[str, str]) -> None:
        if self._pre and self.markdown and self.out and self.out[-1] == "```\n":
            lang = re.search(r"(?:language|lang)-([\w+#-]+)", attr.get("class", ""))
            if lang:  # <pre><code class="language-x">: the fence carries the language
                self.out[-1] = f"```{lang.group(1)}\n"
        self._inline("`")

    def _end_code(self) -> None:
        self._inline("`")

    def _start_pre(self, attr: dict[str, str]) -> None:
        self._block()
        if self.markdown and self._pre == 0:
            lang = re.search(r"(?:language|lang)-([\w+#-]+)", attr.get("class", ""))
            self.out.append("```" + (lang.group(1) if lang else "") + "\n")
        self._pre += 1

    def _end_pre(self) -> None:
        if not self._pre:
            return
        self._pre -= 1
        if self._pre == 0:
            if not "".join(self.out[-1:]).endswith("\n"):
                self.out.append("\n")
            if self.markdown:
                self.out.append("```\n")
            self._block()

    def _start_blockquote(self, attr: dict[str, str]) -> None:
        self._block()
        self._quotes.append(len(self.out))

    def _end_blockquote(self) -> None:
        if not self._quotes:
            return
        start = self._quotes.pop()
        inner = "".join(self.out[start:]).strip("\n")
        del self.out[start:]
        if inner:
            prefix = "> " if self.markdown else "  "
            self.out.append("\n".join(prefix + line if line else prefix.rstrip()
                                      for line in inner.split("\n")))
        self._block()

    def _start_ul(self, attr: dict[str, str]) -> None:
        self._block(1 if self._lists else 2)
        self._lists.append(["ul", 0])

    def _start_ol(self, attr: dict[str, str]) -> None:
        self._block(1 if self._lists else 2)
        start = attr.get("start", "1")
        self._lists.append(["ol", int(start) - 1 if start.isdigit() else 0])

    def _end_ul(self) -> None:
        if self._lists:
            self._lists.pop()
        self._block(1 if self._lists else 2)

    _end_ol = _end_ul

    def _start_li(self, attr: dict[str, str]) -> None:
        self._block(1)
        if not self._lists:
            self._lists.append(["ul", 0])
        entry = self._lists[-1]
        indent = "  " * (len(self._lists) - 1)
        if entry[0] == "ol":
            entry[1] = int(entry[1]) + 1
            self.out.append(f"{indent}{entry[1]}. ")
        else:
            self.out.append(f"{indent}- ")
        self._item_open = True

    def _end_li(self) -> None:
        self._item_open = False
        self._block(1)

    def _start_table(self, attr: dict[str, str]) -> None:
        self._block()
        self._tables.append(_Table())

    def _start_tr(self, attr: dict[str, str]) -> None:
        if self._tables:
            self._close_cell()
            table = self._tables[-1]
            table.rows.append([])
            table.row_has_th = False

    def _start_td(self, attr: dict[str, str]) -> None:
        if not self._tables:
            return
        table = self._tables[-1]
        self._close_cell()
        if not table.rows:
            table.rows.append([])
        table.cell_start = len(self.out)

    def _start_th(self, attr: dict[str, str]) -> None:
        self._start_td(attr)
        if self._tables:
            self._tables[-1].row_has_th = True
            if len(self._tables[-1].rows) == 1:
                self._tables[-1].header_rows = 1

    def _end_td(self) -> None:
        self._close_cell()

    _end_th = _end_td

    def _close_cell(self) -> None:
        if not self._tables or self._tables[-1].cell_start is None:
            return
        table = self._tables[-1]
        start, table.cell_start = table.cell_start, None
        cell = _SPACES.sub(" ", "".join(self.out[start:])).strip()
        del self.out[start:]
        table.rows[-1].append(cell.replace("|", "\\|") if self.markdown else cell)

    def _end_table(self) -> None:
        if not self._tables:
            return
        self._close_cell()
        table = self._tables.pop()
        rows = [row for row in table.rows if any(row)]
        if rows:
            self._block()
            self.out.append(self._render_table(rows))
        self._block()

    def _render_table(self, rows: list[list[str]]) -> str:
        width = max(len(row) for row in rows)
        rows = [row + [""] * (width - len(row)) for row in rows]
        if not self.markdown:
            return "\n".join(" | ".join(row) for row in rows)
        lines = ["| " + " | ".join(row) + " |" for row in rows]
        lines.insert(1, "|" + " --- |" * width)
        return "\n".join(lines)

    # ---- result ----------------------------------------------------------------------------

    def text(self) -> str:
        while self._links:
            self._end_a()
        while self._tables:
            self._end_table()
        text = "".join(self.out)
        text = re.sub(r"[ \t]+\n", "\n", text)
        return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def convert(html: str, base_url: str = "", *, markdown: bool = True) -> tuple[str, str]:
    """(title, body) of an HTML document as markdown (or plain text)."""
    parser = HtmlConverter(base_url, markdown=markdown)
    parser.feed(html)
    parser.close()
    return parser.title, parser.text()


def html_to_markdown(html: str, base_url: str = "") -> str:
    return convert(html, base_url, markdown=True)[1]


def html_to_text(html: str, base_url: str = "") -> str:
    return convert(html, base_url, markdown=False)[1]
