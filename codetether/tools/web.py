"""Web tools: ``webfetch`` (a URL as markdown, text or HTML) and ``websearch`` (DuckDuckGo).

Both run the HTTP exchange on a worker thread so that the tool thread can give up at once on
cancel or when the overall timeout passes (a socket timeout alone bounds each read, not a server
that drips a byte a second). Bodies are read in chunks up to a byte cap, so a huge download
costs bounded memory.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from html.parser import HTMLParser
from typing import Any

from codetether.tools.base import Tool, ToolContext, ToolError, ToolResult, require
from codetether.tools.html_text import convert

USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0 Safari/537.36")
MAX_REDIRECTS = 5
DEFAULT_SEARCH_URL = "https://html.duckduckgo.com/html/"
SEARCH_URL_KEY = "web.search_url"
SEARCH_URL_ENV = "CODETETHER_WEBSEARCH_URL"
CHUNK = 64 * 1024


class _Redirects(urllib.request.HTTPRedirectHandler):
    """At most ``MAX_REDIRECTS`` hops, and only to http(s) (never file: or ftp:)."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect to a {scheme}: URL refused",
                                         headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@dataclass
class Fetched:
    url: str
    status: int
    headers: Message
    body: bytes
    truncated: bool
    redirected: bool = False

    @property
    def content_type(self) -> str:
        return self.headers.get_content_type() if self.headers.get("Content-Type") else ""


@dataclass
class _Exchange:
    """What the worker thread hands back."""

    done: threading.Event = field(default_factory=threading.Event)
    result: Fetched | None = None
    error: BaseException | None = None
    response: Any = None


def http_get(ctx: ToolContext, url: str, *, timeout: float, data: bytes | None = None,
             headers: dict[str, str] | None = None) -> Fetched:
    """Fetch ``url`` (POST when ``data`` is given) with redirects, a body cap, the overall
    ``timeout`` and cancellation. HTTP and network failures become ``ToolError``s."""
    request = urllib.request.Request(url, data=data, headers={
        "User-Agent": USER_AGENT,
        "Accept": "text/html,application/xhtml+xml,application/json;q=0.9,text/plain;q=0.8,"
                  "*/*;q=0.5",
        "Accept-Language": "en-US,en;q=0.8",
        **(headers or {})})
    exchange = _Exchange()
    worker = threading.Thread(target=_exchange, args=(request, timeout, ctx.limits.web_max_bytes,
                                                      exchange), name="webfetch", daemon=True)
    unregister = ctx.cancel.on_cancel(lambda: _abort(exchange))
    try:
        worker.start()
        finished = exchange.done.wait(timeout)
    finally:
        unregister()
    if ctx.cancel.cancelled:
        _abort(exchange)
        raise ToolError(f"fetching {url} was cancelled", cancelled=True)
    error = exchange.error
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, TimeoutError):
        error = error.reason
    if not finished or isinstance(error, TimeoutError):  # overall deadline or socket timeout
        _abort(exchange)
        raise ToolError(f"fetching {url} timed out after {timeout:g}s; try again, or raise timeout")
    if error is not None:
        raise _as_tool_error(url, error)
    assert exchange.result is not None
    return exchange.result


def _exchange(request: urllib.request.Request, timeout: float, cap: int,
              exchange: _Exchange) -> None:
    try:
        opener = urllib.request.build_opener(_Redirects())
        with opener.open(request, timeout=timeout) as response:
            exchange.response = response
            chunks, size = [], 0
            while size <= cap:
                chunk = response.read(min(CHUNK, cap + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            body = b"".join(chunks)
            exchange.result = Fetched(response.geturl(), response.status, response.headers,
                                      body[:cap], len(body) > cap,
                                      response.geturl() != request.full_url)
    except BaseException as exc:  # handed to the tool thread, which decides what it means
        exchange.error = exc
    finally:
        exchange.done.set()


def _abort(exchange: _Exchange) -> None:
    """Unblock the worker's read: shut the socket under the response down."""
    exchange.done.set()
    response = exchange.response
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _as_tool_error(url: str, exc: BaseException) -> ToolError:
    if isinstance(exc, urllib.error.HTTPError):
        if 300 <= exc.code < 400 and "infinite loop" in str(exc.reason):
            return ToolError(f"too many redirects fetching {url} (more than {MAX_REDIRECTS})",
                             status=exc.code)
        if 300 <= exc.code < 400:
            return ToolError(f"cannot follow the redirect from {url}: {exc.reason}",
                             status=exc.code)
        detail = ""
        try:
            ctype = exc.headers.get_content_type() if exc.headers else ""
            if ctype in ("application/json", "text/plain"):
                detail = ": " + exc.read(500).decode("utf-8", "replace").strip()
        except OSError:
            pass
        return ToolError(f"HTTP {exc.code} {exc.reason} fetching {url}{detail}", status=exc.code)
    if isinstance(exc, urllib.error.URLError):
        return ToolError(f"could not fetch {url}: {exc.reason}; check the URL and that the "
                         "host is reachable")
    if isinstance(exc, OSError | ValueError):
        return ToolError(f"could not fetch {url}: {exc}")
    return ToolError(f"could not fetch {url}: {type(exc).__name__}: {exc}")


# ---- decoding ------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)


def decode_body(fetched: Fetched, html: bool) -> str:
    """Text by the charset of Content-Type, else an HTML <meta> charset, else UTF-8."""
    charset = fetched.headers.get_content_charset()
    if not charset and html:
        match = _META_CHARSET.search(fetched.body[:4096])
        charset = match.group(1).decode("ascii", "ignore") if match else None
    try:
        codecs.lookup(charset or "utf-8")
    except LookupError:
        charset = None
    return fetched.body.decode(charset or "utf-8", "replace")


def _is_html(fetched: Fetched) -> bool:
    ctype = fetched.content_type
    if ctype in ("text/html", "application/xhtml+xml"):
        return True
    if ctype and ctype != "text/plain" and ctype != "application/octet-stream":
        return False
    head = fetched.body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _is_text(fetched: Fetched) -> bool:
    ctype = fetched.content_type
    textual = (ctype.startswith("text/") or ctype.endswith(("+json", "+xml", "/json", "/xml"))
               or ctype in ("application/javascript", "application/x-javascript",
                            "application/ecmascript", "application/x-yaml", "application/yaml",
                            "application/toml", "application/x-sh", "application/sql",
                            "application/graphql", "application/x-ndjson"))
    if textual:
        return True
    if ctype and ctype != "application/octet-stream":
        return False
    return b"\0" not in fetched.body[:8192]


def _number(args: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = args.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise ToolError(f"argument '{key}' must be a number >= {low:g}, got {value!r}")
    return min(float(value), high)


# ---- webfetch ------------------------------------------------------------------------------

class WebFetchTool(Tool):
    name = "webfetch"
    description = (
        "Fetch a web page or document over http(s) and return it as markdown (default), plain "
        "text or raw HTML. Links in markdown are absolute. JSON is pretty-printed. Binary "
        "content (images, PDFs, archives) is refused.")
    parameters = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "http:// or https:// URL"},
            "format": {"type": "string", "enum": ["markdown", "text", "html"],
                       "description": "how to return an HTML page (default markdown)"},
            "max_chars": {"type": "integer",
                          "description": "cut the returned content after this many characters "
                                         "(default 50000)"},
            "timeout": {"type": "number", "description": "seconds (default 30)"},
        },
        "required": ["url"],
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        url = require(args, "url", str).strip()
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ToolError(f"webfetch needs an http:// or https:// URL, got {url!r}")
        fmt = args.get("format") or "markdown"
        if fmt not in ("markdown", "text", "html"):
            raise ToolError(f"argument 'format' must be markdown, text or html, got {fmt!r}")
        max_chars = int(_number(args, "max_chars", 50_000, 1, 10_000_000))
        timeout = _number(args, "timeout", ctx.limits.web_timeout, 0.1, 300)

        fetched = http_get(ctx, url, timeout=timeout)
        title, content = self._content(fetched, fmt)
        total = len(content)
        header = [f"URL: {fetched.url}"]
        if fetched.redirected:
            header.append(f"(redirected from {url})")
        if title:
            header.append(f"Title: {title}")
        header.append(f"Content-Type: {fetched.content_type or 'unknown'}")
        notes = []
        if total > max_chars:
            content = content[:max_chars]
            notes.append(f"[content cut at {max_chars} of {total} characters; raise max_chars "
                         "to see more]")
        if fetched.truncated:
            notes.append(f"[response body cut at {ctx.limits.web_max_bytes} bytes "
                         "(the download size limit); the rest was not downloaded]")
        text = "\n".join(header) + "\n\n" + (content or "(empty page)")
        if notes:
            text += "\n\n" + "\n".join(notes)
        meta = {"url": fetched.url, "status": fetched.status, "content_type": fetched.content_type,
                "bytes": len(fetched.body), "body_truncated": fetched.truncated,
                "chars": total, "title": title}
        return ToolResult(text, True, meta)

    @staticmethod
    def _content(fetched: Fetched, fmt: str) -> tuple[str, str]:
        if _is_html(fetched):
            html = decode_body(fetched, True)
            if fmt == "html":
                return convert(html, fetched.url)[0], html
            return convert(html, fetched.url, markdown=fmt == "markdown")
        if not _is_text(fetched):
            raise ToolError(f"{fetched.url} returned binary content "
                            f"({fetched.content_type or 'unknown type'}, {len(fetched.body)} "
                            "bytes); webfetch reads HTML, text and JSON only")
        text = decode_body(fetched, False)
        ctype = fetched.content_type
        if (ctype.endswith(("/json", "+json")) and not fetched.truncated):
            try:
                text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            except ValueError:
                pass
        return "", text


# ---- websearch -----------------------------------------------------------------------------

@dataclass
class SearchHit:
    title: str
    url: str
    snippet: str = ""


def unwrap_ddg_link(href: str) -> str:
    """DDG wraps result links as ``//duckduckgo.com/l/?uddg=<encoded target>&rut=...``."""
    href = href.strip()
    if href.startswith("//"):
        href = "https:" + href
    parts = urllib.parse.urlsplit(href)
    if parts.netloc.endswith("duckduckgo.com") and parts.path.startswith("/l/"):
        target = urllib.parse.parse_qs(parts.query).get("uddg", [""])[0]
        return target
    return href


class DdgResultsParser(HTMLParser):
    """Reads DuckDuckGo's HTML results page: ``a.result__a`` (title + link) followed by
    ``.result__snippet``; results inside a ``.result--ad`` block are skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hits: list[SearchHit] = []
        self._divs: list[bool] = []  # per open <div>: is it an ad block?
        self._capture: str | None = None  # "title" | "snippet"
        self._capture_tag = ""
        self._depth = 0
        self._text: list[str] = []
        self._current: SearchHit | None = None
        self.anomaly = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: (v or "") for k, v in attrs}
        classes = attr.get("class", "").split()
        if tag == "div":
            self._divs.append("result--ad" in classes)
            if "anomaly-modal__modal" in classes or "anomaly-modal" in classes:
                self.anomaly = True
        if self._capture is not None:
            if tag == self._capture_tag:
                self._depth += 1
            return
        in_ad = any(self._divs)
        if "result__a" in classes and tag == "a" and not in_ad:
            url = unwrap_ddg_link(attr.get("href", ""))
            self._current = SearchHit("", url) if url.startswith(("http://", "https://")) else None
            self._start_capture("title", tag)
        elif "result__snippet" in classes and self._current is not None:
            self._start_capture("snippet", tag)

    def _start_capture(self, what: str, tag: str) -> None:
        self._capture, self._capture_tag, self._depth, self._text = what, tag, 1, []

    def handle_endtag(self, tag: str) -> None:
        if self._capture is not None and tag == self._capture_tag:
            self._depth -= 1
            if self._depth == 0:
                self._finish_capture()
        if tag == "div" and self._divs:
            self._divs.pop()

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._text.append(data)

    def _finish_capture(self) -> None:
        text = " ".join("".join(self._text).split())
        what, self._capture = self._capture, None
        if self._current is None:
            return
        if what == "title":
            self._current.title = text
            self.hits.append(self._current)
        elif not self._current.snippet:
            self._current.snippet = text


def parse_ddg_results(html: str) -> tuple[list[SearchHit], bool]:
    """(results without ads or duplicates, whether DDG answered with its bot check)."""
    parser = DdgResultsParser()
    parser.feed(html)
    parser.close()
    seen: set[str] = set()
    hits = []
    for hit in parser.hits:
        if hit.url not in seen and hit.title:
            seen.add(hit.url)
            hits.append(hit)
    return hits, parser.anomaly


def search_url(ctx: ToolContext) -> str:
    """Where to search: env ``CODETETHER_WEBSEARCH_URL``, then config ``web.search_url``, then
    DuckDuckGo's HTML endpoint (tests and air-gapped sites point it elsewhere)."""
    env = os.environ.get(SEARCH_URL_ENV, "").strip()
    if env:
        return env
    if ctx.config is not None:
        value = ctx.config.get(SEARCH_URL_KEY)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return DEFAULT_SEARCH_URL


class WebSearchTool(Tool):
    name = "websearch"
    description = (
        "Search the web (DuckDuckGo) and return the top results as numbered title, URL and "
        "snippet. Follow up with webfetch on a result URL to read it.")
    parameters = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "what to search for"},
            "max_results": {"type": "integer", "description": "results to return (default 8)"},
        },
        "required": ["query"],
    }
    read_only = True

    def subject(self, args: dict[str, Any]) -> str | None:
        query = args.get("query")
        return query if isinstance(query, str) else None

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        query = require(args, "query", str).strip()
        if not query:
            raise ToolError("argument 'query' is empty")
        max_results = int(_number(args, "max_results", 8, 1, 30))
        base = search_url(ctx)
        form = urllib.parse.urlencode({"q": query, "b": ""}).encode()
        fetched = http_get(ctx, base, timeout=ctx.limits.web_timeout, data=form,
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "Referer": base})
        hits, anomaly = parse_ddg_results(decode_body(fetched, True))
        meta = {"query": query, "results": min(len(hits), max_results), "search_url": base}
        if not hits:
            if anomaly or fetched.status == 202:
                raise ToolError("the search engine refused the query with a bot check; wait a "
                                "minute and retry, or point web.search_url elsewhere")
            return ToolResult(f'No results for "{query}".', True, meta)
        lines = []
        for n, hit in enumerate(hits[:max_results], 1):
            lines.append(f"{n}. {hit.title}\n   {hit.url}")
            if hit.snippet:
                lines[-1] += f"\n   {hit.snippet}"
        return ToolResult("\n\n".join(lines), True, meta)
