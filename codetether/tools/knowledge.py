"""Knowledge tools: ``memory`` (notes the agent keeps across sessions) and ``skill`` (SKILL.md
instructions a project or user provides).

Memory is one JSON file, ``<data_dir>/memory.json`` (mode 0600: notes can hold anything), read
and rewritten under a lock file so two agents saving at once never lose a note. Each entry
remembers the project (workspace) it was saved in; searches show that project's notes first.

Skills are markdown files with optional front matter (``name``, ``description``), found in
``<workspace>/.codetether/skills/`` and ``~/.config/codetether-agent/skills/``, either as
``<name>/SKILL.md`` (a folder that may hold scripts and references too) or ``<name>.md``. The
project's skill wins over a user skill of the same name.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codetether.core.fsutil import atomic_write_text
from codetether.core.ids import new_id
from codetether.tools.base import Tool, ToolContext, ToolError, ToolResult, cap_output, require

MEMORY_FILE = "memory.json"
MAX_MEMORY_CONTENT = 20_000
MAX_TAGS = 20
ACTIONS = ("save", "search", "get", "list", "delete", "tags")


# ---- memory ------------------------------------------------------------------------------------


class MemoryStore:
    """Entries ``{id, key, content, tags, project, created_at}`` in one locked JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def entries(self) -> list[dict[str, Any]]:
        return self._load()

    @contextlib.contextmanager
    def edit(self) -> Iterator[list[dict[str, Any]]]:
        """Read-modify-write under the lock; the list yielded is saved when the block ends."""
        with self._locked():
            entries = self._load()
            yield entries
            self._save(entries)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; writes stay atomic
            yield
            return
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise ToolError(f"cannot read {self.path}: {exc.__class__.__name__}") from None
        if not text.strip():
            return []
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            # never overwrite it: it may be someone's only copy of their notes
            raise ToolError(f"{self.path} is not valid JSON (line {exc.lineno}); memory is "
                            "unavailable until it is fixed or moved away") from None
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ToolError(f"{self.path} does not hold a memory list "
                            '({"version": 1, "entries": [...]}); fix or move it away')
        return [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]

    def _save(self, entries: list[dict[str, Any]]) -> None:
        body = {"version": 1, "entries": entries}
        atomic_write_text(self.path, json.dumps(body, indent=1, ensure_ascii=False) + "\n",
                          mode=0o600)


def _tags(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [t for t in re.split(r"[,\s]+", raw) if t]
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise ToolError("'tags' must be a list of strings (or one comma-separated string)")
    tags = []
    for tag in raw:
        tag = tag.strip().lower().lstrip("#")
        if tag and tag not in tags:
            tags.append(tag[:50])
    if len(tags) > MAX_TAGS:
        raise ToolError(f"at most {MAX_TAGS} tags per memory")
    return tags


def score(entry: dict[str, Any], query: str) -> float:
    """Case-insensitive keyword score: the whole query as a substring counts most, then each
    word found in the tags, the key and the content."""
    query = query.lower().strip()
    content = str(entry.get("content", "")).lower()
    key = str(entry.get("key") or "").lower()
    tags = [str(t).lower() for t in entry.get("tags", [])]
    total = 0.0
    if query and (query in content or query in key):
        total += 5
    for word in set(re.findall(r"\w+", query)):
        if word in tags:
            total += 3
        elif any(word in tag for tag in tags):
            total += 1.5
        if word in key:
            total += 2
        hits = content.count(word)
        if hits:
            total += 1 + min(hits, 5) * 0.2
    return total


def _format(entry: dict[str, Any], full: bool = False) -> str:
    when = time.strftime("%Y-%m-%d", time.localtime(entry.get("created_at", 0)))
    tags = f" [{', '.join(entry.get('tags', []))}]" if entry.get("tags") else ""
    key = f" {entry['key']}:" if entry.get("key") else ""
    content = str(entry.get("content", ""))
    if not full and len(content) > 300:
        content = content[:300] + "…"
    head = f"{entry['id']}{key}{tags} ({when}, {entry.get('project') or 'no project'})"
    return f"{head}\n  " + content.replace("\n", "\n  ")


class MemoryTool(Tool):
    name = "memory"
    description = (
        "Your long-term memory across sessions. action=save (content, optional key and tags) "
        "keeps a note: a user preference, a project convention, a fix that worked; "
        "search (query) finds notes, this project's first; get (id or key); list (newest first, "
        "limit, optional tags); delete (id or key); tags (all tags with counts).")
    parameters = {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": list(ACTIONS)},
            "content": {"type": "string", "description": "save: the note"},
            "key": {"type": "string",
                    "description": "save: a short name; saving the same key again in this "
                                   "project replaces the note. get/delete: the note's key"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "query": {"type": "string", "description": "search: words to look for"},
            "id": {"type": "string", "description": "get/delete: the note's id"},
            "limit": {"type": "integer", "minimum": 1, "default": 10},
        },
        "required": ["action"],
    }
    read_only = False

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        action = require(args, "action", str)
        if action not in ACTIONS:
            raise ToolError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
        store = MemoryStore(Path(ctx.data_dir) / MEMORY_FILE)
        project = str(Path(ctx.workspace).resolve())
        limit = args.get("limit", 10)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ToolError("'limit' must be a positive integer")
        handler = getattr(self, f"_{action}")
        return handler(args, store, project, limit)

    def _save(self, args: dict[str, Any], store: MemoryStore, project: str,
              limit: int) -> ToolResult:
        content = require(args, "content", str).strip()
        if not content:
            raise ToolError("'content' is empty; say what to remember")
        if len(content) > MAX_MEMORY_CONTENT:
            raise ToolError(f"a memory holds at most {MAX_MEMORY_CONTENT} characters; "
                            "save a summary instead")
        key = args.get("key")
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise ToolError("'key' must be a non-empty string when given")
        key = key.strip() if key else None
        tags = _tags(args.get("tags"))
        with store.edit() as entries:
            old = _find_key(entries, key, project) if key else None
            if old is not None:
                old.update(content=content, tags=tags or old.get("tags", []),
                           updated_at=time.time())
                return ToolResult(f"updated memory {old['id']} ({key})",
                                  metadata={"id": old["id"]})
            entry = {"id": new_id("mem"), "key": key, "content": content, "tags": tags,
                     "project": project, "created_at": time.time()}
            entries.append(entry)
        return ToolResult(f"saved memory {entry['id']}" + (f" ({key})" if key else ""),
                          metadata={"id": entry["id"]})

    def _search(self, args: dict[str, Any], store: MemoryStore, project: str,
                limit: int) -> ToolResult:
        query = require(args, "query", str).strip()
        if not query:
            raise ToolError("'query' is empty")
        scored = [(score(e, query), e) for e in store.entries()]
        hits = [(s, e) for s, e in scored if s > 0]
        hits.sort(key=lambda se: (se[1].get("project") != project, -se[0],
                                  -se[1].get("created_at", 0)))
        if not hits:
            return ToolResult(f"no memory matches {query!r}", metadata={"ids": []})
        shown = hits[:limit]
        text = "\n".join(_format(e) for _, e in shown)
        more = f"\n({len(hits) - limit} more; raise limit)" if len(hits) > limit else ""
        return ToolResult(text + more, metadata={"ids": [e["id"] for _, e in shown]})

    def _get(self, args: dict[str, Any], store: MemoryStore, project: str,
             limit: int) -> ToolResult:
        entry = _lookup(store.entries(), args, project)
        return ToolResult(_format(entry, full=True), metadata={"id": entry["id"]})

    def _list(self, args: dict[str, Any], store: MemoryStore, project: str,
              limit: int) -> ToolResult:
        wanted = _tags(args.get("tags"))
        entries = [e for e in store.entries()
                   if all(t in e.get("tags", []) for t in wanted)]
        entries.sort(key=lambda e: -e.get("created_at", 0))
        if not entries:
            return ToolResult("no memories" + (f" tagged {', '.join(wanted)}" if wanted else ""))
        text = "\n".join(_format(e) for e in entries[:limit])
        more = f"\n({len(entries) - limit} older; raise limit)" if len(entries) > limit else ""
        return ToolResult(text + more, metadata={"ids": [e["id"] for e in entries[:limit]]})

    def _delete(self, args: dict[str, Any], store: MemoryStore, project: str,
                limit: int) -> ToolResult:
        with store.edit() as entries:
            entry = _lookup(entries, args, project)
            entries.remove(entry)
        return ToolResult(f"deleted memory {entry['id']}", metadata={"id": entry["id"]})

    def _tags(self, args: dict[str, Any], store: MemoryStore, project: str,
              limit: int) -> ToolResult:
        counts: dict[str, int] = {}
        for entry in store.entries():
            for tag in entry.get("tags", []):
                counts[tag] = counts.get(tag, 0) + 1
        if not counts:
            return ToolResult("no tags yet")
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return ToolResult(", ".join(f"{tag} ({n})" for tag, n in ordered),
                          metadata={"tags": dict(ordered)})


def _find_key(entries: list[dict[str, Any]], key: str, project: str) -> dict[str, Any] | None:
    """Keys are per project: the same key in another project is another note."""
    return next((e for e in entries if e.get("key") == key and e.get("project") == project),
                None)


def _lookup(entries: list[dict[str, Any]], args: dict[str, Any], project: str) -> dict[str, Any]:
    """By ``id``, else by ``key`` (this project's first); a clear error otherwise."""
    wanted_id, key = args.get("id"), args.get("key")
    if isinstance(wanted_id, str) and wanted_id.strip():
        for entry in entries:
            if entry["id"] == wanted_id.strip():
                return entry
        raise ToolError(f"no memory with id {wanted_id!r}; find ids with action=search or list")
    if isinstance(key, str) and key.strip():
        same = [e for e in entries if e.get("key") == key.strip()]
        same.sort(key=lambda e: (e.get("project") != project, -e.get("created_at", 0)))
        if same:
            return same[0]
        raise ToolError(f"no memory with key {key!r}; find notes with action=search or list")
    raise ToolError("give the memory's 'id' (or its 'key')")


# ---- skills ------------------------------------------------------------------------------------


@dataclass
class Skill:
    name: str
    description: str
    path: Path
    source: str  # "project" or "user"

    def body(self) -> str:
        """The instructions, without the front matter."""
        return split_front_matter(self.path.read_text(encoding="utf-8", errors="replace"))[1]


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """``---\\nname: x\\ndescription: y\\n---`` parsed by hand (simple ``key: value`` lines;
    other keys are kept as strings too, nested YAML is not understood)."""
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return {}, text
    meta: dict[str, str] = {}
    for line in lines[1:end]:
        if ":" not in line or line.startswith((" ", "\t", "#")):
            continue
        key, value = line.split(":", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        meta[key.strip().lower()] = value
    return meta, "\n".join(lines[end + 1:]).lstrip("\n")


def skill_dirs(workspace: Path) -> list[tuple[str, Path]]:
    from codetether.core.paths import config_dir

    return [("project", Path(workspace) / ".codetether" / "skills"),
            ("user", config_dir() / "skills")]


def list_skills(workspace: Path) -> list[Skill]:
    """Every skill visible from ``workspace``, by name; a project skill hides a user one."""
    found: dict[str, Skill] = {}
    for source, root in skill_dirs(workspace):
        if not root.is_dir():
            continue
        for skill in _skills_in(root, source):
            found.setdefault(skill.name, skill)
    return [found[name] for name in sorted(found)]


def _skills_in(root: Path, source: str) -> Iterator[Skill]:
    try:
        children = sorted(root.iterdir())
    except OSError:
        return
    for child in children:
        if child.is_dir() and (child / "SKILL.md").is_file():
            path, default = child / "SKILL.md", child.name
        elif child.is_file() and child.suffix.lower() == ".md":
            path, default = child, child.stem
        else:
            continue
        try:
            meta, body = split_front_matter(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        name = meta.get("name") or default
        yield Skill(name, meta.get("description") or _first_line(body), path, source)


def _first_line(body: str) -> str:
    for line in body.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return ""


class SkillTool(Tool):
    name = "skill"
    description = (
        "Load a skill: task-specific instructions the project or user wrote (SKILL.md files). "
        "Without `name`, list the skills with their descriptions; with `name`, return the "
        "skill's instructions. Load a skill whenever a task matches its description.")
    parameters = {
        "type": "object",
        "properties": {"name": {"type": "string", "description": "the skill to load"}},
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        skills = list_skills(ctx.workspace)
        name = args.get("name")
        if name is not None and not isinstance(name, str):
            raise ToolError("'name' must be a string")
        if not name or not name.strip():
            if not skills:
                where = " or ".join(str(root) for _, root in skill_dirs(ctx.workspace))
                return ToolResult(f"no skills found (put <name>/SKILL.md files in {where})")
            lines = [f"- {s.name}: {s.description or '(no description)'} [{s.source}]"
                     for s in skills]
            return ToolResult("\n".join(lines), metadata={"skills": [s.name for s in skills]})
        wanted = name.strip()
        match = next((s for s in skills if s.name == wanted), None) or next(
            (s for s in skills if s.name.lower() == wanted.lower()), None)
        if match is None:
            available = ", ".join(s.name for s in skills) or "none"
            raise ToolError(f"no skill named {wanted!r}; available: {available}")
        try:
            body = match.body()
        except OSError as exc:
            raise ToolError(f"cannot read skill {match.name} at {match.path}: "
                            f"{exc.strerror or exc}") from None
        header = f"# skill: {match.name} ({match.source}, {match.path})"
        if match.path.name == "SKILL.md":
            header += f"\nFiles this skill refers to are relative to {match.path.parent}"
        text = cap_output(f"{header}\n\n{body}", ctx.limits.output_bytes,
                          f"read {match.path} with offset/limit")
        return ToolResult(text, metadata={"skill": match.name, "path": str(match.path)})
