#!/usr/bin/env python3
"""Release step: checksums (and an optional Ed25519 signature) for the built artifacts.

    python scripts/release.py [--dir dist] [--signing-key KEY.pem] [--no-installers]
    python scripts/release.py verify [--dir dist] [--public-key KEY.pub.pem] [--ignore-missing]
    python scripts/release.py keygen KEY.pem          (writes KEY.pem and KEY.pub.pem)

The default step copies ``install.sh`` and ``install.ps1`` next to the artifacts (so a release
serves its own installer), then writes ``SHA256SUMS`` for every ``codetether-*`` file and the
installers, in the format ``sha256sum -c SHA256SUMS`` checks (``<hex>  <name>``, sorted).
With ``--signing-key`` (a PEM Ed25519 private key) it also writes ``SHA256SUMS.sig``: the raw
64-byte signature of the SHA256SUMS bytes, which OpenSSL 3 can check too:

    openssl pkeyutl -verify -pubin -inkey KEY.pub.pem -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig

``verify`` recomputes every listed file's hash and, with ``--public-key``, checks the signature.
Signing and checking use ``cryptography`` (imported only then); plain checksums need nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMS = "SHA256SUMS"
SIG = "SHA256SUMS.sig"
INSTALLERS = ("install.sh", "install.ps1")


class ReleaseError(Exception):
    """One line for the user; main() prints it and exits 1."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifacts(directory: Path) -> list[Path]:
    names = sorted(p for p in directory.iterdir() if p.is_file()
                   and (p.name.startswith("codetether-") or p.name in INSTALLERS)
                   and not p.name.endswith(".tmp"))
    if not any(p.name.startswith("codetether-") for p in names):
        raise ReleaseError(f"no codetether-* artifacts in {directory} (run `make binary`)")
    return names


def sums_text(files: list[Path]) -> str:
    return "".join(f"{sha256_file(p)}  {p.name}\n" for p in files)


def parse_sums(text: str) -> dict[str, str]:
    """``<hex>  <name>`` or ``<hex> *<name>`` lines, as sha256sum writes them."""
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.partition(" ")
        name = name[1:] if name[:1] in (" ", "*") else name
        if len(digest) != 64 or not name or any(c not in "0123456789abcdef" for c in digest):
            raise ReleaseError(f"{SUMS} line {number} is not '<sha256>  <name>': {line[:80]!r}")
        entries[name] = digest
    return entries


def _load_private_key(path: Path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ReleaseError(f"cannot read signing key {path}: {exc}")
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseError(f"{path} is not an Ed25519 private key")
    return key


def _load_public_key(path: Path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"cannot read public key {path}: {exc}")
    if not isinstance(key, Ed25519PublicKey):
        raise ReleaseError(f"{path} is not an Ed25519 public key")
    return key


def write_release(directory: Path, signing_key: Path | None, installers: bool) -> list[str]:
    if not directory.is_dir():
        raise ReleaseError(f"{directory} is not a directory (run `make binary` first)")
    if installers:
        for name in INSTALLERS:
            shutil.copy2(ROOT / name, directory / name)
    text = sums_text(artifacts(directory))
    (directory / SUMS).write_text(text)
    written = [SUMS]
    sig = directory / SIG
    if signing_key:
        sig.write_bytes(_load_private_key(signing_key).sign(text.encode()))
        written.append(SIG)
    elif sig.exists():
        sig.unlink()  # a stale signature would not match the new sums
    return written


def verify(directory: Path, public_key: Path | None, ignore_missing: bool) -> int:
    sums_path = directory / SUMS
    try:
        raw = sums_path.read_bytes()
    except OSError as exc:
        raise ReleaseError(f"cannot read {sums_path}: {exc.strerror}")
    if public_key:
        from cryptography.exceptions import InvalidSignature

        try:
            signature = (directory / SIG).read_bytes()
        except OSError:
            raise ReleaseError(f"{directory / SIG} is missing; cannot check the signature")
        try:
            _load_public_key(public_key).verify(signature, raw)
        except InvalidSignature:
            raise ReleaseError(f"{SUMS} signature does NOT match {public_key}")
    checked = 0
    for name, digest in parse_sums(raw.decode("utf-8", "replace")).items():
        path = directory / name
        if not path.exists():
            if ignore_missing:
                continue
            raise ReleaseError(f"{name} is listed in {SUMS} but missing")
        if sha256_file(path) != digest:
            raise ReleaseError(f"{name}: checksum does NOT match {SUMS}")
        checked += 1
    if checked == 0:
        raise ReleaseError(f"no file listed in {SUMS} was found in {directory}")
    return checked


def keygen(path: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public = path.with_name(path.name.removesuffix(".pem") + ".pub.pem")
    if path.exists():
        raise ReleaseError(f"{path} exists; not overwriting a key")
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    path.touch(mode=0o600)
    path.write_bytes(private_pem)
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path, public


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"release.py {command}".strip(),
                                     description=__doc__.splitlines()[0])
    if command == "keygen":
        parser.add_argument("key", help="private key file to write (PEM); the public key "
                                        "goes to KEY.pub.pem")
        return parser
    parser.add_argument("--dir", default=str(ROOT / "dist"), help="artifacts (default dist/)")
    if command == "verify":
        parser.add_argument("--public-key", help="PEM Ed25519 public key: check SHA256SUMS.sig")
        parser.add_argument("--ignore-missing", action="store_true",
                            help="skip listed files that are not here")
    else:
        parser.add_argument("--signing-key", help="PEM Ed25519 private key: write SHA256SUMS.sig")
        parser.add_argument("--no-installers", action="store_true",
                            help="do not copy install.sh / install.ps1 into the release")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("verify", "keygen") else ""
    args = _parser(command).parse_args(argv)
    try:
        if command == "keygen":
            for path in keygen(Path(args.key)):
                print(path)
        elif command == "verify":
            public = Path(args.public_key) if args.public_key else None
            count = verify(Path(args.dir), public, args.ignore_missing)
            signed = ", signature good" if public else ""
            print(f"ok: {count} file(s) match {SUMS}{signed}")
            if not public and (Path(args.dir) / SIG).exists():
                print(f"note: {SIG} not checked (pass --public-key)", file=sys.stderr)
        else:
            key = Path(args.signing_key) if args.signing_key else None
            for name in write_release(Path(args.dir), key, not args.no_installers):
                print(Path(args.dir) / name)
    except ReleaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ImportError:
        print("error: signing needs the `cryptography` package (pip install cryptography)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
