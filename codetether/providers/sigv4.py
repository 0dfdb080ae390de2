"""AWS Signature Version 4 for one HTTP request, with the stdlib only.

Bedrock with IAM credentials needs every request signed; botocore would do it but costs a large
dependency and import time. This follows botocore's ``SigV4Auth`` step for step (it is the
reference the tests compare against), including two quirks a hand-rolled signer easily misses:

* the canonical URI is the request path URI-encoded *once more* (``%3A`` in a model id path is
  signed as ``%253A``), as AWS requires for every service but S3;
* the canonical query string is the URL's own ``key=value`` pairs sorted, not re-encoded.

The payload is always hashed into the signature (no ``x-amz-content-sha256`` header: only S3
wants that).
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from datetime import UTC, datetime

ALGORITHM = "AWS4-HMAC-SHA256"
# Headers a proxy or the HTTP client may change in flight; never signed (botocore's list).
UNSIGNED_HEADERS = frozenset({
    "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
    # replaced by what we compute
    "authorization", "x-amz-date", "x-amz-security-token",
})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def sign_request(method: str, url: str, headers: dict[str, str], body: bytes, *,
                 access_key: str, secret_key: str, session_token: str | None = None,
                 region: str, service: str = "bedrock", now: datetime | None = None
                 ) -> dict[str, str]:
    """The headers to add to the request so AWS accepts it: ``Authorization``, ``X-Amz-Date``
    and, with temporary credentials, ``X-Amz-Security-Token``.

    Every header in ``headers`` is signed (except the hop-by-hop ones above), plus ``host``
    derived from ``url`` when ``headers`` has none, so send exactly these headers.
    """
    amz_date = _utc(now).strftime("%Y%m%dT%H%M%SZ")
    added = {"X-Amz-Date": amz_date}
    if session_token:
        added["X-Amz-Security-Token"] = session_token
    signed = _headers_to_sign(url, headers)
    signed.update({name.lower(): value for name, value in added.items()})
    names = ";".join(sorted(signed))
    canonical = "\n".join([
        method.upper(),
        canonical_uri(url),
        canonical_query(url),
        "".join(f"{name}:{signed[name]}\n" for name in sorted(signed)),
        names,
        hashlib.sha256(body or b"").hexdigest(),
    ])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = signing_key(secret_key, amz_date[:8], region, service)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    added["Authorization"] = (f"{ALGORITHM} Credential={access_key}/{scope}, "
                              f"SignedHeaders={names}, Signature={signature}")
    return added


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The derived key: HMAC chain over date, region, service and ``aws4_request``."""
    key = ("AWS4" + secret_key).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def canonical_uri(url: str) -> str:
    """The path with dot segments and empty segments removed, then URI-encoded once more."""
    return urllib.parse.quote(_remove_dot_segments(urllib.parse.urlsplit(url).path), safe="/~")


def canonical_query(url: str) -> str:
    """The URL's query pairs sorted by key, then value (they are sent already encoded)."""
    query = urllib.parse.urlsplit(url).query
    if not query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return "&".join(f"{key}={value}" for key, value in pairs)


def host_from_url(url: str) -> str:
    """What an HTTP client sends as ``Host``: lower-case, with the port unless the default."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _headers_to_sign(url: str, headers: dict[str, str]) -> dict[str, str]:
    signed: dict[str, str] = {}
    for name, value in headers.items():
        lname = name.lower().strip()
        if lname in UNSIGNED_HEADERS:
            continue
        signed[lname] = " ".join(str(value).split())  # trim and squeeze spaces
    signed.setdefault("host", host_from_url(url))
    return signed


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, plus AWS's removal of empty segments (``//``)."""
    if not path:
        return "/"
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        return now  # naive: taken as UTC, as botocore does
    return now.astimezone(UTC)
