"""The code blocks of the project's Markdown files, as the docs suite runs them.

Rules (also stated in README.md, "Use"):

- Every ```` ```python ```` block is a script, run as written in a fresh
  interpreter; the only change is that the host ``"broker.example"`` is
  replaced by the test broker's ``"127.0.0.1", <port>`` (so write it as the
  connector's first argument). A block that prints must print something.
- A ```` ```console ```` block whose lines start with ``$ `` is a transcript:
  each command runs in a shell with ``CASCADE_MQTT_HOST`` / ``CASCADE_MQTT_PORT``
  set to the test broker, must exit 0, and must print exactly the lines shown
  under it (when any are shown).
- A block right after ``<!-- docs-test: skip REASON -->`` is not run; the
  test is reported as skipped with REASON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BROKER_HOST", "Example", "ROOT", "examples", "markdown_files"]

ROOT = Path(__file__).resolve().parents[2]
BROKER_HOST = '"broker.example"'
_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\s+(.+?)\s*-->\s*$")


@dataclass(frozen=True)
class Example:
    """One fenced block: where it is, its language, its text, and why it is skipped (if it is)."""

    path: Path
    line: int
    language: str
    code: str
    skip: str | None

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def markdown_files() -> list[Path]:
    """README.md, packages/*/README.md and docs/*.md."""
    files = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]
    return files + sorted((ROOT / "docs").glob("*.md"))


def examples(path: Path) -> list[Example]:
    """The fenced blocks of ``path`` (every language)."""
    found: list[Example] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    skip: str | None = None
    index = 0
    while index < len(lines):
        text = lines[index]
        marker = _SKIP.match(text)
        fence = _FENCE.match(text)
        if marker:
            skip = marker[1]
        elif fence:
            end = index + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            code = "\n".join(lines[index + 1 : end]) + "\n"
            found.append(Example(path, index + 1, fence[1], code, skip))
            skip = None
            index = end
        elif text.strip():
            skip = None  # a marker applies to the block right after it only
        index += 1
    return found
