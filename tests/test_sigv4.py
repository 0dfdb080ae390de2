"""SigV4: AWS's published vectors, and the very Authorization header botocore computes for the
same request at the same instant (botocore is the independent peer; product code never
imports it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from codetether.providers.sigv4 import canonical_uri, sign_request

# AWS Signature Version 4 test suite credentials and instant (get-vanilla et al.).
SUITE_KEY = "AKIDEXAMPLE"
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_TIME = datetime(2015, 8, 30, 12, 36, 0)

ACCESS = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+session=="
NOW = datetime(2025, 3, 14, 9, 26, 53)


@pytest.mark.parametrize("url, signature", [
    ("https://example.amazonaws.com/",  # get-vanilla
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    # get-vanilla-query-order-key-case
    ("https://example.amazonaws.com/?Param2=value2&Param1=value1",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
])
def test_aws_published_test_suite_vectors(url, signature):
    added = sign_request("GET", url, {}, b"", access_key=SUITE_KEY, secret_key=SUITE_SECRET,
                         region="us-east-1", service="service", now=SUITE_TIME)
    assert added == {
        "X-Amz-Date": "20150830T123600Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                         f"aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}",
    }


def _botocore(monkeypatch, method, url, headers, body, *, token=None, region="us-east-1",
              service="bedrock", now=NOW) -> dict[str, str]:
    """What botocore's SigV4Auth adds to the same request with its clock frozen at ``now``."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: now)
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    botocore.auth.SigV4Auth(Credentials(ACCESS, SECRET, token), service, region).add_auth(request)
    return {name: request.headers[name] for name in
            ("Authorization", "X-Amz-Date", "X-Amz-Security-Token") if name in request.headers}


def _ours(method, url, headers, body, *, token=None, region="us-east-1", service="bedrock",
          now=NOW) -> dict[str, str]:
    return sign_request(method, url, headers, body, access_key=ACCESS, secret_key=SECRET,
                        session_token=token, region=region, service=service, now=now)


CONVERSE_URL = ("https://bedrock-runtime.us-west-2.amazonaws.com/model/"
                "amazon.nova-lite-v1%3A0/converse-stream")
BODY = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
HEADERS = {"Content-Type": "application/json", "Accept": "application/vnd.amazon.eventstream"}


@pytest.mark.parametrize("token", [None, TOKEN])
def test_converse_request_matches_botocore(monkeypatch, token):
    ours = _ours("POST", CONVERSE_URL, HEADERS, BODY, token=token, region="us-west-2")
    theirs = _botocore(monkeypatch, "POST", CONVERSE_URL, HEADERS, BODY, token=token,
                       region="us-west-2")
    assert ours == theirs
    assert "SignedHeaders=accept;content-type;host;x-amz-date" in ours["Authorization"]
    assert ("x-amz-security-token" in ours["Authorization"]) == (token is not None)
    assert ours["X-Amz-Date"] == "20250314T092653Z"
    assert "/20250314/us-west-2/bedrock/aws4_request" in ours["Authorization"]
    assert "x-amz-content-sha256" not in {k.lower() for k in ours}  # not S3


def test_the_colon_in_a_model_id_is_signed_double_encoded(monkeypatch):
    assert canonical_uri(CONVERSE_URL) == "/model/amazon.nova-lite-v1%253A0/converse-stream"
    raw_colon = CONVERSE_URL.replace("%3A", ":")
    assert canonical_uri(raw_colon) == "/model/amazon.nova-lite-v1%3A0/converse-stream"
    assert _ours("POST", raw_colon, HEADERS, BODY) == _botocore(
        monkeypatch, "POST", raw_colon, HEADERS, BODY)
    # signing the encoded path and the raw path must differ: the double encoding is real
    assert _ours("POST", raw_colon, HEADERS, BODY) != _ours("POST", CONVERSE_URL, HEADERS, BODY)


@pytest.mark.parametrize("url", [
    "https://bedrock.eu-central-1.amazonaws.com/foundation-models?byProvider=anthropic"
    "&byOutputModality=TEXT",
    "https://bedrock.eu-central-1.amazonaws.com/foundation-models?b=2&a=1&a=0&empty=",
    "http://127.0.0.1:8123/foundation-models",  # non-default port is part of the signed host
    "https://bedrock-runtime.us-east-1.amazonaws.com:443/model/x/./y/../converse-stream",
    "https://bedrock-runtime.us-east-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aus-east-1"
    "%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4/converse-stream",
    "http://[::1]:9000/foundation-models",
])
def test_get_requests_with_queries_ports_and_odd_paths_match_botocore(monkeypatch, url):
    headers = {"Accept": "application/json"}
    assert _ours("GET", url, headers, b"") == _botocore(monkeypatch, "GET", url, headers, b"")


def test_header_rules_match_botocore(monkeypatch):
    """Values are trimmed and squeezed, names lower-cased, hop-by-hop headers and User-Agent
    left unsigned, an explicit Host header signed as given."""
    headers = {"Content-Type": "  application/json;   charset=utf-8 ", "User-Agent": "ct/1.0",
               "X-Custom-Thing": "a  b", "Host": "proxy.internal:8443",
               "Transfer-Encoding": "chunked", "Expect": "100-continue"}
    ours = _ours("POST", CONVERSE_URL, headers, BODY, token=TOKEN)
    assert ours == _botocore(monkeypatch, "POST", CONVERSE_URL, headers, BODY, token=TOKEN)
    assert ("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-custom-thing"
            in ours["Authorization"])


def test_a_stale_authorization_or_date_in_the_input_is_replaced(monkeypatch):
    headers = {**HEADERS, "Authorization": "Bearer old", "X-Amz-Date": "19990101T000000Z"}
    ours = _ours("POST", CONVERSE_URL, headers, BODY)
    assert ours == _botocore(monkeypatch, "POST", CONVERSE_URL, headers, BODY)
    assert ours["X-Amz-Date"] == "20250314T092653Z"


def test_aware_datetimes_are_converted_to_utc(monkeypatch):
    local = NOW.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=-7)))
    assert _ours("POST", CONVERSE_URL, HEADERS, BODY, now=local) == _ours(
        "POST", CONVERSE_URL, HEADERS, BODY, now=NOW)


def test_body_and_secret_change_the_signature():
    base = _ours("POST", CONVERSE_URL, HEADERS, BODY)["Authorization"]
    assert _ours("POST", CONVERSE_URL, HEADERS, BODY + b" ")["Authorization"] != base
    other = sign_request("POST", CONVERSE_URL, HEADERS, BODY, access_key=ACCESS,
                         secret_key=SECRET + "x", region="us-east-1", now=NOW)
    assert other["Authorization"] != base
    assert SECRET not in base
