"""scripts/release.py: SHA256SUMS that `sha256sum -c` accepts, Ed25519 signing and verifying,
and tampering caught — all through the script's command line, as `make release` runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "scripts" / "release.py"


def release(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RELEASE), *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def dist(tmp_path):
    directory = tmp_path / "dist"
    directory.mkdir()
    (directory / "codetether-1.0.0-linux-x86_64").write_bytes(b"\x7fELF fake binary\n" * 100)
    (directory / "codetether-1.0.0-darwin-arm64").write_bytes(b"another one")
    (directory / "codetether-1.0.0-linux-x86_64.tmp").write_bytes(b"half-written")
    (directory / "notes.txt").write_text("not an artifact")
    return directory


@pytest.fixture
def keys(tmp_path):
    pytest.importorskip("cryptography", reason="signing needs cryptography (test extra)")
    proc = release("keygen", str(tmp_path / "release.pem"))
    assert proc.returncode == 0, proc.stderr
    private, public = (Path(line) for line in proc.stdout.splitlines())
    assert public.name == "release.pub.pem"
    assert private.stat().st_mode & 0o077 == 0  # the private key is not world-readable
    return private, public


def test_sums_match_sha256sum_format(dist):
    proc = release("--dir", str(dist))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(dist / "SHA256SUMS")]
    names = [line.split("  ", 1)[1] for line in (dist / "SHA256SUMS").read_text().splitlines()]
    assert names == ["codetether-1.0.0-darwin-arm64", "codetether-1.0.0-linux-x86_64",
                     "install.ps1", "install.sh"]  # sorted; no .tmp, no notes, no SHA256SUMS
    assert (dist / "install.sh").read_bytes() == (ROOT / "install.sh").read_bytes()
    if not shutil.which("sha256sum"):
        pytest.skip("sha256sum is not installed")
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=dist, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == 4


def test_no_installers_and_empty_dir(tmp_path, dist):
    assert release("--dir", str(dist), "--no-installers").returncode == 0
    assert "install.sh" not in (dist / "SHA256SUMS").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = release("--dir", str(empty), "--no-installers")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: no codetether-* artifacts in {empty} (run `make binary`)"


def test_sign_verify_round_trip(dist, keys):
    private, public = keys
    proc = release("--dir", str(dist), "--signing-key", str(private))
    assert proc.returncode == 0, proc.stderr
    assert len((dist / "SHA256SUMS.sig").read_bytes()) == 64  # raw Ed25519 signature
    ok = release("verify", "--dir", str(dist), "--public-key", str(public))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "ok: 4 file(s) match SHA256SUMS, signature good"
    unsigned_check = release("verify", "--dir", str(dist))
    assert unsigned_check.returncode == 0
    assert "SHA256SUMS.sig not checked" in unsigned_check.stderr


def test_openssl_accepts_the_signature(dist, keys):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    private, public = keys
    assert release("--dir", str(dist), "--signing-key", str(private)).returncode == 0
    proc = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(public),
                           "-rawin", "-in", str(dist / "SHA256SUMS"),
                           "-sigfile", str(dist / "SHA256SUMS.sig")],
                          capture_output=True, text=True)
    if "rawin" in proc.stderr and proc.returncode != 0:
        pytest.skip("this openssl has no -rawin (needs OpenSSL 3)")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_tampered_artifact_is_detected(dist, keys):
    private, public = keys
    assert release("--dir", str(dist), "--signing-key", str(private)).returncode == 0
    with (dist / "codetether-1.0.0-linux-x86_64").open("ab") as f:
        f.write(b"evil")
    proc = release("verify", "--dir", str(dist), "--public-key", str(public))
    assert proc.returncode == 1
    assert proc.stderr.strip() == \
        "error: codetether-1.0.0-linux-x86_64: checksum does NOT match SHA256SUMS"


def test_tampered_sums_fail_the_signature(dist, keys):
    private, public = keys
    assert release("--dir", str(dist), "--signing-key", str(private)).returncode == 0
    sig = (dist / "SHA256SUMS.sig").read_bytes()
    (dist / "codetether-1.0.0-linux-x86_64").write_bytes(b"evil binary")
    assert release("--dir", str(dist)).returncode == 0  # attacker recomputes the sums...
    assert not (dist / "SHA256SUMS.sig").exists()  # (an unsigned run drops the stale sig)
    (dist / "SHA256SUMS.sig").write_bytes(sig)  # ...but can only keep the old signature
    proc = release("verify", "--dir", str(dist), "--public-key", str(public))
    assert proc.returncode == 1
    assert "signature does NOT match" in proc.stderr


def test_wrong_key_and_missing_signature(tmp_path, dist, keys):
    private, _ = keys
    other = release("keygen", str(tmp_path / "other.pem"))
    other_public = Path(other.stdout.splitlines()[1])
    assert release("--dir", str(dist), "--signing-key", str(private)).returncode == 0
    wrong = release("verify", "--dir", str(dist), "--public-key", str(other_public))
    assert wrong.returncode == 1 and "signature does NOT match" in wrong.stderr
    (dist / "SHA256SUMS.sig").unlink()
    missing = release("verify", "--dir", str(dist), "--public-key", str(other_public))
    assert missing.returncode == 1 and "SHA256SUMS.sig is missing" in missing.stderr


def test_verify_missing_files_and_bad_lines(dist):
    assert release("--dir", str(dist)).returncode == 0
    (dist / "codetether-1.0.0-darwin-arm64").unlink()
    missing = release("verify", "--dir", str(dist))
    assert missing.returncode == 1
    assert "codetether-1.0.0-darwin-arm64 is listed in SHA256SUMS but missing" in missing.stderr
    assert release("verify", "--dir", str(dist), "--ignore-missing").returncode == 0
    (dist / "SHA256SUMS").write_text("not a checksum line\n")
    bad = release("verify", "--dir", str(dist))
    assert bad.returncode == 1 and "SHA256SUMS line 1 is not" in bad.stderr


def test_bad_signing_key(tmp_path, dist):
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    proc = release("--dir", str(dist), "--signing-key", str(key))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: cannot read signing key {key}")
    assert "Traceback" not in proc.stderr
