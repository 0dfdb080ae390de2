#!/bin/sh
# Install CodeTether: one self-contained file, no Python needed on the machine.
#
#   curl -fsSL https://github.com/codetether/codetether/releases/latest/download/install.sh | sh
#   sh install.sh [--prefix DIR] [--version X] [--base-url URL] [--no-functiongemma]
#   sh install.sh --uninstall [--prefix DIR]
#
# Linux and macOS, x86_64 and arm64. Downloads codetether-<version>-<os>-<arch> and SHA256SUMS
# from the release base URL, refuses the file unless its SHA-256 matches, and installs it as
# PREFIX/bin/codetether (default PREFIX: ~/.local). Air-gapped sites: copy a release's files
# into any directory served over HTTP(S) (or, with curl, a file:// URL) and point --base-url or
# CODETETHER_RELEASE_URL at it; that directory holds the artifacts and their SHA256SUMS.
#
# Run with --help for the options.
set -eu

REPO_URL="https://github.com/codetether/codetether/releases"
PREFIX="${HOME:-}/.local"
VERSION=""
BASE_URL="${CODETETHER_RELEASE_URL:-}"
ACTION="install"
FUNCTIONGEMMA="yes"
TMP_DIR=""

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

usage() {
    cat <<'EOF'
Install CodeTether (one self-contained file) into PREFIX/bin.

usage: sh install.sh [--prefix DIR] [--version X] [--base-url URL] [--no-functiongemma]
       sh install.sh --uninstall [--prefix DIR]

  --prefix DIR        install into DIR/bin (default ~/.local; /usr/local for everyone)
  --version X         install version X (default: the latest release)
  --base-url URL      where the release files are: a directory with the artifacts and their
                      SHA256SUMS, e.g. a local mirror (default: GitHub releases; the env var
                      CODETETHER_RELEASE_URL does the same)
  --no-functiongemma  do not download the FunctionGemma tool-router model (the model step
                      arrives with the router; until then nothing is downloaded either way)
  --uninstall         remove PREFIX/bin/codetether and its unpack cache (keeps your
                      configuration and sessions)
  -h, --help          this help

CODETETHER_PLATFORM=<os>-<arch> (e.g. linux-arm64) overrides platform detection.
EOF
}

need_value() {
    if [ "$#" -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (see --help)"; fi
}

parse_args() {
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --prefix) need_value "$@"; PREFIX="$2"; shift 2 ;;
            --prefix=*) PREFIX="${1#*=}"; shift ;;
            --version) need_value "$@"; VERSION="${2#v}"; shift 2 ;;
            --version=*) VERSION="${1#*=}"; VERSION="${VERSION#v}"; shift ;;
            --base-url) need_value "$@"; BASE_URL="$2"; shift 2 ;;
            --base-url=*) BASE_URL="${1#*=}"; shift ;;
            --no-functiongemma) FUNCTIONGEMMA="no"; shift ;;
            --uninstall) ACTION="uninstall"; shift ;;
            -h|--help) ACTION="help"; shift ;;
            *) die "unknown option '$1' (see --help)" ;;
        esac
    done
    [ -n "$PREFIX" ] || die "HOME is not set: pass --prefix DIR"
}

detect_platform() {
    if [ -n "${CODETETHER_PLATFORM:-}" ]; then
        os="${CODETETHER_PLATFORM%%-*}"
        arch="${CODETETHER_PLATFORM#*-}"
    else
        os="$(uname -s)"
        arch="$(uname -m)"
    fi
    case "$os" in
        Linux|linux) os="linux" ;;
        Darwin|darwin) os="darwin" ;;
        MINGW*|MSYS*|CYGWIN*|Windows*|windows)
            die "on Windows use install.ps1 (PowerShell): irm $REPO_URL/latest/download/install.ps1 | iex" ;;
        *) die "unsupported operating system '$os' (prebuilt: Linux, macOS); pip install codetether works anywhere with Python 3.11+" ;;
    esac
    case "$arch" in
        x86_64|amd64) arch="x86_64" ;;
        aarch64|arm64) arch="arm64" ;;
        *) die "unsupported architecture '$arch' (prebuilt: x86_64, arm64); pip install codetether works anywhere with Python 3.11+" ;;
    esac
    # A shell under Rosetta reports x86_64 on Apple silicon; the native build is faster.
    if [ "$os" = "darwin" ] && [ "$arch" = "x86_64" ] && [ -z "${CODETETHER_PLATFORM:-}" ] \
            && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || true)" = "1" ]; then
        arch="arm64"
    fi
    PLATFORM="$os-$arch"
}

download() {  # URL DEST
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 2 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1"
    else
        die "need curl or wget to download"
    fi
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    elif command -v openssl >/dev/null 2>&1; then
        openssl dgst -sha256 "$1" | sed 's/^.*= *//'
    else
        die "need sha256sum, shasum or openssl to verify the download; nothing installed"
    fi
}

cleanup() {
    if [ -n "$TMP_DIR" ]; then rm -rf "$TMP_DIR"; fi
    if [ -n "${STAGED:-}" ]; then rm -f "$STAGED"; fi
}

release_base() {
    if [ -n "$BASE_URL" ]; then
        printf '%s' "${BASE_URL%/}"
    elif [ -n "$VERSION" ]; then
        printf '%s' "$REPO_URL/download/v$VERSION"
    else
        printf '%s' "$REPO_URL/latest/download"
    fi
}

# The artifact name for this platform, read from SHA256SUMS: the sums file of a release lists
# every artifact, so "latest" needs no extra API call and a mirror needs no index page.
pick_artifact() {  # SUMS_FILE BASE
    if [ -n "$VERSION" ]; then
        want="codetether-$VERSION-$PLATFORM"
        awk -v n="$want" '$2 == n || $2 == "*" n { print n }' "$1" | head -n 1 | grep . \
            || die "no codetether $VERSION for $PLATFORM at $2"
        return
    fi
    found="$(awk -v p="-$PLATFORM" '{ n = $2; sub(/^\*/, "", n) }
        n ~ /^codetether-/ && substr(n, length(n) - length(p) + 1) == p { print n }' "$1")"
    case "$found" in
        "") die "no codetether build for $PLATFORM at $2" ;;
        *"
"*) die "several versions for $PLATFORM at $2 ($(printf '%s' "$found" | tr '\n' ' ')); pass --version X" ;;
    esac
    printf '%s\n' "$found"
}

path_hint() {  # BIN_DIR
    case ":${PATH:-}:" in
        *":$1:"*) return ;;
    esac
    say ""
    say "$1 is not on your PATH. Add it, e.g. in ~/.profile (or ~/.zshrc):"
    say "  export PATH=\"$1:\$PATH\""
}

functiongemma_step() {
    if [ "$FUNCTIONGEMMA" = "no" ]; then
        say "FunctionGemma router model: skipped (--no-functiongemma)"
    else
        say "FunctionGemma router model: not part of this release yet; nothing downloaded"
    fi
}

do_install() {
    detect_platform
    base="$(release_base)"
    bin_dir="${PREFIX%/}/bin"
    TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/codetether-install.XXXXXX")"
    trap cleanup EXIT
    trap 'exit 130' INT HUP TERM
    say "codetether: platform $PLATFORM, release $base"
    download "$base/SHA256SUMS" "$TMP_DIR/SHA256SUMS" \
        || die "could not download $base/SHA256SUMS; nothing installed"
    name="$(pick_artifact "$TMP_DIR/SHA256SUMS" "$base")"
    expected="$(awk -v n="$name" '$2 == n || $2 == "*" n { print $1; exit }' "$TMP_DIR/SHA256SUMS")"
    download "$base/$name" "$TMP_DIR/$name" || die "could not download $base/$name; nothing installed"
    actual="$(sha256_of "$TMP_DIR/$name")"
    [ "$actual" = "$expected" ] \
        || die "checksum mismatch for $name (expected $expected, got $actual); nothing installed"
    mkdir -p "$bin_dir" || die "cannot create $bin_dir (try --prefix DIR, or sudo for /usr/local)"
    STAGED="$bin_dir/.codetether.$$.tmp"
    if ! { cp "$TMP_DIR/$name" "$STAGED" && chmod 755 "$STAGED" \
            && mv -f "$STAGED" "$bin_dir/codetether"; }; then
        die "cannot write $bin_dir/codetether"
    fi
    STAGED=""
    say "installed $name as $bin_dir/codetether"
    # the first start unpacks the program into ~/.cache/codetether; do it now, and check it runs
    if version_line="$("$bin_dir/codetether" --version 2>&1)"; then
        say "$version_line"
    else
        say "warning: $bin_dir/codetether --version failed: $version_line" >&2
    fi
    functiongemma_step
    path_hint "$bin_dir"
}

do_uninstall() {
    target="${PREFIX%/}/bin/codetether"
    cache="${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/codetether"
    if [ -e "$target" ]; then
        rm -f "$target" || die "cannot remove $target"
        say "removed $target"
    else
        say "codetether is not installed at $target"
    fi
    if [ -d "$cache" ]; then
        rm -rf "$cache"
        say "removed $cache"
    fi
    say "kept your configuration (~/.config/codetether-agent) and sessions (~/.local/share/codetether)"
}

main() {
    parse_args "$@"
    case "$ACTION" in
        help) usage ;;
        uninstall) do_uninstall ;;
        *) do_install ;;
    esac
}

main "$@"
