#!/bin/sh
# CodeTether @VERSION@ (@PLATFORM@): one file that carries the whole program.
#
# A PyInstaller --onedir build (tar.gz, SHA-256 @HASH@) is appended to this
# script. The first start unpacks it once into a content-addressed cache directory,
# ${XDG_CACHE_HOME:-~/.cache}/codetether/<sha256>/, and every start execs from there, so a
# warm start costs one `sh` and one exec on top of the program itself. Concurrent first starts
# each unpack into their own temp dir beside the target and rename it into place (atomic); the
# loser throws its copy away. The payload's checksum is verified before it is unpacked.
# Written by scripts/build_binary.py; `rm -rf ~/.cache/codetether` is always safe.
h=@HASH@
o=@OFFSET@
d=${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/codetether/$h
if [ -x "$d/codetether" ]; then exec "$d/codetether" "$@"; fi

die() { printf 'codetether: %s\n' "$1" >&2; exit 1; }

# The payload's SHA-256 with whichever tool this system has; empty if none.
payload_sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        tail -c +"$o" "$0" | sha256sum | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        tail -c +"$o" "$0" | shasum -a 256 | cut -d' ' -f1
    elif command -v openssl >/dev/null 2>&1; then
        tail -c +"$o" "$0" | openssl dgst -sha256 | sed 's/^.*= *//'
    fi
}

# Unpack into a fresh temp dir beside the target ($1: parent dir), then rename it into place.
unpack_into() {
    mkdir -p "$1" 2>/dev/null || return 1
    t=$(mktemp -d "$1/.unpack.XXXXXX" 2>/dev/null) || return 1
    trap 'rm -rf "$t"; exit 130' INT HUP TERM
    if ! tail -c +"$o" "$0" | gzip -dc | tar -xf - -C "$t" 2>/dev/null \
            || [ ! -x "$t/codetether" ]; then
        rm -rf "$t"
        trap - INT HUP TERM
        die "could not unpack into $1 (disk full?); remove it and try again"
    fi
    if [ ! -e "$1/$h" ]; then
        mv "$t" "$1/$h" 2>/dev/null
    fi
    # lost a race: the winner's copy is complete (rename is atomic), ours goes
    rm -rf "$t" "${1:?}/$h/${t##*/}"
    trap - INT HUP TERM
    [ -x "$1/$h/codetether" ]
}

sum=$(payload_sha256)
if [ -n "$sum" ] && [ "$sum" != "$h" ]; then
    die "this file is damaged (checksum mismatch); download it again"
fi
# A finished copy appears whole (rename), so one without the program was damaged by hand.
if [ -e "$d" ] && [ ! -x "$d/codetether" ]; then rm -rf "$d"; fi
if unpack_into "${d%/*}"; then exec "$d/codetether" "$@"; fi

# No writable cache (read-only home): unpack for this run only.
base=${TMPDIR:-/tmp}
t=$(mktemp -d "$base/codetether.XXXXXX") || die "no writable directory to unpack into"
trap 'rm -rf "$t"' EXIT
trap 'exit 130' INT HUP TERM
tail -c +"$o" "$0" | gzip -dc | tar -xf - -C "$t" || die "could not unpack into $base"
"$t/codetether" "$@"
exit $?
