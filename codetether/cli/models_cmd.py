"""``codetether models``: the bundled catalog merged with what each provider says it serves,
and which providers have credentials (and from where — never the key itself)."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor

from codetether.core.config import Config, load_config
from codetether.core.errors import CodetetherError, UsageError
from codetether.providers import catalog
from codetether.providers.http import RetryPolicy
from codetether.providers.resolve import (
    Resolved,
    build_endpoint,
    find_credentials,
    known_provider_ids,
    make_provider,
    spec_for,
    usable,
)

LIST_POLICY = RetryPolicy(max_attempts=1, connect_timeout=5.0, read_timeout=10.0)


def run(args: argparse.Namespace) -> int:
    cfg = load_config()
    ids = known_provider_ids(cfg)
    if args.provider:
        if args.provider not in ids:
            raise UsageError(f"unknown provider '{args.provider}'",
                             f"choose one of: {', '.join(ids)}")
        ids = [args.provider]
    status = {pid: _status(pid, cfg) for pid in ids}
    remote = _remote_lists(status, cfg, args.refresh)
    models = [m for m in catalog.merge(catalog.bundled(), remote) if m.provider in status]
    if args.json:
        print(json.dumps({"providers": [s["json"] for s in status.values()],
                          "models": [m.to_json() for m in models]}, indent=2))
        return 0
    _print_table(status, models, args.verbose)
    return 0


def _status(provider_id: str, cfg: Config) -> dict:
    spec = spec_for(provider_id, cfg)
    assert spec is not None
    creds = find_credentials(spec)
    ready = usable(spec, creds, cfg)
    source = creds.source if creds else ("config" if ready else None)
    where = creds.where if creds else (f"[providers.{provider_id}]" if ready else "")
    return {"spec": spec, "creds": creds, "ready": ready,
            "json": {"id": spec.id, "wire": spec.wire, "default_model": spec.default_model,
                     "credentials": source, "where": where, "description": spec.description}}


def _remote_lists(status: dict[str, dict], cfg: Config, refresh: bool) -> dict[str, list[str]]:
    """Model lists from providers that can be asked: from the cache, or fetched in parallel."""
    cached = {} if refresh else catalog.read_cache()
    wanted = [pid for pid, s in status.items() if s["ready"] and pid not in cached]
    fetched: dict[str, list[str]] = {}

    def fetch(pid: str) -> tuple[str, list[str] | None, str | None]:
        s = status[pid]
        resolved = Resolved(s["spec"], "", s["creds"], build_endpoint(s["spec"], s["creds"], cfg))
        try:
            return pid, make_provider(resolved, LIST_POLICY).list_models(), None
        except CodetetherError as exc:
            return pid, None, exc.one_line()

    if wanted:
        with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
            for pid, models, error in pool.map(fetch, wanted):
                if models is None:
                    print(f"warning: could not list models from {pid}: {error}", file=sys.stderr)
                else:
                    fetched[pid] = models
        if fetched:
            catalog.write_cache(fetched)
    return {pid: models for pid, models in {**cached, **fetched}.items() if pid in status}


def _fmt_tokens(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value // 1000}K" if value < 1_000_000 else f"{value / 1_000_000:.1f}M"


def _fmt_cost(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _print_table(status: dict[str, dict], models: list[catalog.ModelInfo], verbose: bool) -> None:
    print("PROVIDER          CREDENTIALS  WHERE")
    for pid, s in status.items():
        source = s["json"]["credentials"] or "-"
        print(f"{pid:<17} {source:<12} {s['json']['where']}".rstrip())
    print()
    header = f"{'MODEL':<52} {'CONTEXT':>8} {'MAX OUT':>8} {'$IN/M':>7} {'$OUT/M':>7} TOOLS"
    if verbose:
        header += f" {'$CACHE/M':>8} REASONING SOURCE"
    print(header)
    for m in models:
        line = (f"{m.ref:<52} {_fmt_tokens(m.context_window):>8} {_fmt_tokens(m.max_output):>8} "
                f"{_fmt_cost(m.input_cost):>7} {_fmt_cost(m.output_cost):>7} "
                f"{'yes' if m.tools else ('-' if m.tools is None else 'no'):<5}")
        if verbose:
            reasoning = "yes" if m.reasoning else ("-" if m.reasoning is None else "no")
            line += f" {_fmt_cost(m.cache_read_cost):>8} {reasoning:<9} {m.source}"
        print(line.rstrip())
