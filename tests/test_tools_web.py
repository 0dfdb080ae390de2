"""webfetch and websearch against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codetether.tools.base import Limits, ToolContext, ToolError
from codetether.tools.web import WebFetchTool, WebSearchTool, parse_ddg_results, unwrap_ddg_link

PAGE = """<!DOCTYPE html>
<html><head><title>Test  Page</title>
<style>body { color: red }</style>
<script>document.write("<p>SCRIPT TEXT</p>")</script></head>
<body>
<nav><a href="/home">NAVIGATION</a></nav>
<h1>Main Heading</h1>
<p>Intro with <a href="/docs/guide.html">the guide</a> and <a href="https://other.example/x">an
external link</a>, <strong>bold</strong> text.</p>
<h2>Steps</h2>
<ul><li>first item</li><li>second item</li></ul>
<ol><li>one</li><li>two</li></ol>
<pre><code class="language-python">def add(a, b):
    return a + b
</code></pre>
<p>Inline <code>x = 1</code> code.</p>
<table><tr><th>Name</th><th>Size</th></tr><tr><td>alpha</td><td>1</td></tr></table>
<footer>FOOTER TEXT</footer>
</body></html>
"""

DDG_RESULT = """
<div class="result results_links results_links_deep web-result ">
  <div class="links_main links_deep result__body">
    <h2 class="result__title">
      <a rel="nofollow" class="result__a" href="{href}">{title}</a>
    </h2>
    <div class="result__extras">
      <div class="result__extras__url">
        <span class="result__icon"><a rel="nofollow" href="{href}">
          <img class="result__icon__img" width="16" height="16" alt=""
               src="//external-content.duckduckgo.com/ip3/example.com.ico" name="i15" /></a>
        </span>
        <a class="result__url" href="{href}">example.com</a>
      </div>
    </div>
    <a class="result__snippet" href="{href}">{snippet}</a>
    <div class="clear"></div>
  </div>
</div>
"""

DDG_AD = """
<div class="result results_links results_links_deep result--ad result--ad--small">
  <div class="links_main links_deep result__body">
    <h2 class="result__title">
      <a rel="nofollow" class="result__a"
         href="https://duckduckgo.com/y.js?ad_domain=ads.example&amp;u3=x">Buy Now</a>
    </h2>
    <a class="result__snippet" href="https://duckduckgo.com/y.js?x">An advert.</a>
  </div>
</div>
"""


def ddg_page(results: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>q at DuckDuckGo</title></head>
<body class="body--html">
<div id="links" class="results">{results}</div>
</body></html>"""


def ddg_wrap(url: str) -> str:
    return "//duckduckgo.com/l/?uddg=" + urllib.parse.quote(url, safe="") + "&amp;rut=abc123"


class Site:
    """The routes the tests fetch; a slow route blocks until ``release`` is set."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.search_requests: list[tuple[str, dict[str, list[str]]]] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def send(self, status: int, body: bytes, ctype: str, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                site.route(self)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                site.search_requests.append((self.path, form))
                query = form.get("q", [""])[0]
                if query == "nothing here":
                    self.send(200, ddg_page('<div class="no-results">No results.</div>')
                              .encode(), "text/html; charset=utf-8")
                    return
                if query == "blocked":
                    self.send(202, b'<div class="anomaly-modal__modal">bots</div>',
                              "text/html")
                    return
                results = DDG_AD + "".join(
                    DDG_RESULT.format(href=ddg_wrap(f"https://example.com/{i}?a=1&b=2"),
                                      title=f"Result <b>{i}</b> &amp; more",
                                      snippet=f"Snippet <b>{query}</b> number {i}.")
                    for i in range(1, 11))
                results += DDG_RESULT.format(href="https://direct.example.org/page",
                                             title="Direct", snippet="Not wrapped.")
                self.send(200, ddg_page(results).encode(), "text/html; charset=utf-8")

        return Handler

    def route(self, h: BaseHTTPRequestHandler) -> None:
        path = urllib.parse.urlsplit(h.path).path
        if path == "/page":
            h.send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/latin1":
            body = "<html><body><p>café déjà vu</p></body></html>".encode("latin-1")
            h.send(200, body, "text/html; charset=ISO-8859-1")
        elif path == "/meta-charset":
            body = ('<html><head><meta charset="windows-1252"></head>'
                    '<body><p>naïve “quotes”</p></body></html>').encode("cp1252")
            h.send(200, body, "text/html")
        elif path.startswith("/chain/"):
            n = int(path.rsplit("/", 1)[1])
            if n == 0:
                h.send(200, b"<h1>End of chain</h1>", "text/html")
            else:
                h.send(302, b"", "text/plain", Location=f"/chain/{n - 1}")
        elif path == "/to-file":
            h.send(302, b"", "text/plain", Location="file:///etc/passwd")
        elif path == "/big":
            h.send(200, b"A" * 50_000, "text/plain")
        elif path == "/long-text":
            h.send(200, ("word " * 2000).encode(), "text/plain; charset=utf-8")
        elif path == "/json":
            h.send(200, b'{"name":"x","items":[1,2],"nested":{"ok":true}}', "application/json")
        elif path == "/api-error":
            h.send(400, b'{"error":"bad field"}', "application/json")
        elif path == "/binary":
            h.send(200, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png")
        elif path == "/slow":
            h.send_response(200)
            h.send_header("Content-Type", "text/plain")
            h.send_header("Content-Length", "100")
            h.end_headers()
            h.wfile.write(b"partial")
            h.wfile.flush()
            self.arrived.set()
            self.release.wait(30)
        else:
            h.send(404, b"<h1>Not Found</h1>", "text/html")


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    state = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), state.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ToolContext(workspace=ws, data_dir=tmp_path / "data",
                       limits=Limits(web_timeout=10, web_max_bytes=10_000))


def fetch(ctx: ToolContext, url: str, **args):
    return WebFetchTool().run({"url": url, **args}, ctx)


def test_html_to_markdown(site, ctx):
    _, base = site
    result = fetch(ctx, f"{base}/page")
    out = result.output
    assert result.success and result.metadata["title"] == "Test Page"
    assert out.startswith(f"URL: {base}/page\nTitle: Test Page\nContent-Type: text/html\n\n")
    assert "# Main Heading" in out and "## Steps" in out
    assert f"[the guide]({base}/docs/guide.html)" in out
    assert "[an external link](https://other.example/x)" in out
    assert "**bold**" in out
    assert "- first item\n- second item" in out and "1. one\n2. two" in out
    assert "```python\ndef add(a, b):\n    return a + b\n```" in out
    assert "`x = 1`" in out
    assert "| Name | Size |\n| --- | --- |\n| alpha | 1 |" in out
    for dropped in ("SCRIPT TEXT", "color: red", "NAVIGATION", "FOOTER TEXT"):
        assert dropped not in out


def test_text_and_html_formats(site, ctx):
    _, base = site
    text = fetch(ctx, f"{base}/page", format="text").output
    assert "Main Heading" in text and "# Main" not in text
    assert "the guide" in text and "](" not in text and "```" not in text
    assert "SCRIPT TEXT" not in text
    raw = fetch(ctx, f"{base}/page", format="html").output
    assert "<script>" in raw and "<h1>Main Heading</h1>" in raw
    with pytest.raises(ToolError, match="format"):
        fetch(ctx, f"{base}/page", format="pdf")


def test_charsets_from_header_and_meta(site, ctx):
    _, base = site
    assert "café déjà vu" in fetch(ctx, f"{base}/latin1").output
    assert "naïve “quotes”" in fetch(ctx, f"{base}/meta-charset").output


def test_redirect_chain_limit(site, ctx):
    _, base = site
    result = fetch(ctx, f"{base}/chain/5")
    assert result.success and "# End of chain" in result.output
    assert result.metadata["url"] == f"{base}/chain/0"
    assert f"(redirected from {base}/chain/5)" in result.output
    with pytest.raises(ToolError, match="too many redirects"):
        fetch(ctx, f"{base}/chain/6")
    with pytest.raises(ToolError, match="cannot follow the redirect.*file:///etc/passwd"):
        fetch(ctx, f"{base}/to-file")


def test_body_cap_and_max_chars(site, ctx):
    _, base = site
    big = fetch(ctx, f"{base}/big")
    assert big.metadata["body_truncated"] and big.metadata["bytes"] == 10_000
    assert "response body cut at 10000 bytes" in big.output
    assert big.output.count("A") == 10_000
    cut = fetch(ctx, f"{base}/long-text", max_chars=100)
    assert "[content cut at 100 of 10000 characters; raise max_chars to see more]" in cut.output
    assert cut.output.count("word") == 20


def test_http_errors_json_and_binary(site, ctx):
    _, base = site
    with pytest.raises(ToolError, match=r"HTTP 404 Not Found fetching .*/missing") as info:
        fetch(ctx, f"{base}/missing")
    assert info.value.metadata["status"] == 404
    with pytest.raises(ToolError, match=r'HTTP 400 .*: \{"error":"bad field"\}'):
        fetch(ctx, f"{base}/api-error")
    data = fetch(ctx, f"{base}/json")
    assert data.output.endswith(json.dumps(
        {"name": "x", "items": [1, 2], "nested": {"ok": True}}, indent=2))
    with pytest.raises(ToolError, match=r"binary content \(image/png"):
        fetch(ctx, f"{base}/binary")


def test_bad_urls_and_unreachable_host(ctx):
    for url in ("ftp://example.com/x", "file:///etc/passwd", "not a url", "http://"):
        with pytest.raises(ToolError, match="http:// or https://"):
            fetch(ctx, url)
    with pytest.raises(ToolError, match="could not fetch"):
        fetch(ctx, "http://127.0.0.1:9/")  # discard port: connection refused


def test_timeout(site, ctx):
    state, base = site
    with pytest.raises(ToolError, match="timed out after 0.5s"):
        fetch(ctx, f"{base}/slow", timeout=0.5)
    assert state.arrived.is_set()


def test_cancel_aborts_a_fetch_in_flight(site, ctx):
    state, base = site
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fetch(ctx, f"{base}/slow", timeout=60)
        except ToolError as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert state.arrived.wait(20)
    ctx.cancel.cancel()
    worker.join(10)
    assert not worker.is_alive()
    assert errors and "cancelled" in str(errors[0])
    assert errors[0].metadata["cancelled"]


def test_websearch_against_fake_ddg(site, ctx, monkeypatch):
    state, base = site
    monkeypatch.setenv("CODETETHER_WEBSEARCH_URL", f"{base}/html/")
    result = WebSearchTool().run({"query": "python threads", "max_results": 3}, ctx)

    assert state.search_requests[0][0] == "/html/"
    assert state.search_requests[0][1]["q"] == ["python threads"]
    assert result.output == "\n\n".join(
        f"{i}. Result {i} & more\n   https://example.com/{i}?a=1&b=2\n"
        f"   Snippet python threads number {i}." for i in (1, 2, 3))
    assert "Buy Now" not in result.output
    assert result.metadata["results"] == 3

    everything = WebSearchTool().run({"query": "all"}, ctx)
    assert everything.output.count("\n\n") == 7  # default max_results is 8


def test_websearch_url_from_config_no_results_and_bot_check(site, ctx):
    _, base = site

    class Config:
        def get(self, key, default=None):
            return f"{base}/html/" if key == "web.search_url" else default

    ctx.config = Config()
    result = WebSearchTool().run({"query": "nothing here"}, ctx)
    assert result.success and result.output == 'No results for "nothing here".'
    with pytest.raises(ToolError, match="bot check"):
        WebSearchTool().run({"query": "blocked"}, ctx)
    with pytest.raises(ToolError, match="query"):
        WebSearchTool().run({"query": "  "}, ctx)


def test_ddg_parsing_details():
    assert unwrap_ddg_link("//duckduckgo.com/l/?uddg=https%3A%2F%2Fa.example%2Fp%3Fq%3D1"
                           "&rut=x") == "https://a.example/p?q=1"
    assert unwrap_ddg_link("https://b.example/") == "https://b.example/"
    page = ddg_page(DDG_AD + DDG_RESULT.format(href="https://x.example/", title="X",
                                                snippet="s") * 2)
    hits, anomaly = parse_ddg_results(page)
    assert [(h.title, h.url, h.snippet) for h in hits] == [("X", "https://x.example/", "s")]
    assert not anomaly


def test_html_converter_rough_edges():
    from codetether.tools.html_text import convert

    html = ("<html><head><title>T</title><base href='https://b.example/root/'>"
            "<body><ul><li><p>para item</p></li><li>two<ul><li>nested</li></ul></li></ul>"
            "<blockquote><p>quoted</p><p>again</p></blockquote>"
            "<p>a&nbsp;b &lt;tag&gt; <a href='rel/x'>rel</a> <a href='#top'>anchor</a>"
            "<br>next</p><img src='i.png' alt='pic'></body></html>")
    title, md = convert(html, "https://ignored.example/")
    assert title == "T"
    assert md.startswith("- para item\n- two\n  - nested\n\n> quoted\n>\n> again\n\n")
    assert "a b <tag> [rel](https://b.example/root/rel/x) anchor\nnext" in md
    assert md.endswith("![pic](https://b.example/root/i.png)")
    _, text = convert(html, markdown=False)
    assert "rel anchor" in text and "pic" in text and "[" not in text
