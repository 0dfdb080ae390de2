"""Agent profiles: which tools an agent gets, whether it may change anything, its prompt.

Prompts live in ``agent/prompts/*.md`` (text, not code strings). The system prompt is the
profile's prompt, then facts about the environment, then the user's AGENTS.md files and the
available skills, so project conventions reach every turn.
"""

from __future__ import annotations

import datetime
import platform
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from codetether.core import paths
from codetether.core.errors import UsageError
from codetether.tools import registry

READ_TOOLS = ("read", "list", "glob", "tree", "file_info", "head_tail", "diff", "grep",
              "codesearch", "webfetch", "websearch", "skill", "todo_read", "batch")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    tools: tuple[str, ...] | None  # None: every registered tool
    read_only: bool = False
    max_steps: int | None = None  # None: the session default
    prompt_file: str = ""

    def tool_names(self) -> list[str]:
        names = registry.names() if self.tools is None else list(self.tools)
        return [n for n in names if n in registry.TOOLS]


PROFILES: dict[str, Profile] = {
    "build": Profile("build", "all tools; makes and verifies changes", None,
                     prompt_file="build.md"),
    "plan": Profile("plan", "read-only investigation and planning",
                    READ_TOOLS + ("bash", "todo_write", "question", "plan_exit", "task", "memory"),
                    read_only=True, prompt_file="plan.md"),
    "explore": Profile("explore", "fast read-only sub-agent for exploring code",
                       READ_TOOLS + ("bash",), read_only=True, max_steps=20,
                       prompt_file="explore.md"),
    "general": Profile("general", "general-purpose sub-agent",
                       tuple(n for n in registry.TOOLS
                             if n not in ("task", "question", "plan_enter", "plan_exit", "undo")),
                       prompt_file="general.md"),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(f"unknown agent '{name}'",
                         f"choose one of: {', '.join(PROFILES)}") from None


def load_prompt(file_name: str) -> str:
    return resources.files("codetether.agent.prompts").joinpath(file_name).read_text("utf-8")


def agents_md(workspace: Path) -> list[tuple[Path, str]]:
    """Instruction files: the user's global AGENTS.md, then the project's (override first)."""
    found = []
    candidates = [paths.config_dir() / "AGENTS.md"]
    project = workspace / "AGENTS.override.md"
    candidates.append(project if project.is_file() else workspace / "AGENTS.md")
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text:
            found.append((path, text[:20000]))
    return found


def system_prompt(profile: Profile, workspace: Path, model_ref: str) -> str:
    parts = [load_prompt(profile.prompt_file).strip()]
    is_git = (workspace / ".git").exists()
    parts.append("\n".join([
        "<environment>",
        f"workspace: {workspace}",
        f"git repository: {'yes' if is_git else 'no'}",
        f"platform: {platform.system().lower()} {platform.machine()}",
        f"date: {datetime.date.today().isoformat()}",
        f"model: {model_ref}",
        "</environment>",
    ]))
    for path, text in agents_md(workspace):
        parts.append(f'<instructions source="{path}">\n{text}\n</instructions>')
    skills = _skill_lines(workspace)
    if skills:
        parts.append("Skills you can load with the `skill` tool:\n" + skills)
    return "\n\n".join(parts)


def _skill_lines(workspace: Path) -> str:
    try:
        from codetether.tools.knowledge import list_skills
    except ImportError:
        return ""
    try:
        return "\n".join(f"- {s.name}: {s.description}" for s in list_skills(workspace))
    except OSError:
        return ""
