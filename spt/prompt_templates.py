"""Render the Markdown prompt files in prompts/.

Syntax inside a prompt file:
- `{{name}}` is a placeholder, filled from the values the calling stage passes;
- `{{include: _shared/file.md}}` pastes another file from prompts/ (resolved first, may nest).
Rendering fails with a one-line error naming the file if a placeholder is left unfilled or a
value is passed that the prompt never uses, so prompts and code cannot drift apart; an empty
(or blank) prompt file is an error too.
Reads prompt files; writes nothing.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from spt.utils import PROMPTS_DIR, DataError, display_path

_INCLUDE = re.compile(r"\{\{\s*include:\s*([^}\s]+)\s*\}\}")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def prompt_file(relative: str, root: Path | None = None) -> Path:
    return (root or PROMPTS_DIR) / relative


def load_prompt(relative: str, root: Path | None = None, _seen: tuple[str, ...] = ()) -> str:
    """The text of prompts/<relative> (or <root>/<relative>) with its includes pasted in."""
    path = prompt_file(relative, root)
    if relative in _seen:
        raise DataError(f"{display_path(path)}: include cycle via {' -> '.join(_seen)}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{display_path(path)}: prompt file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{display_path(path)}: not UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise DataError(
            f"{display_path(path)}: the prompt file is empty; restore it (git checkout -- {display_path(path)})"
        )
    return _INCLUDE.sub(lambda m: load_prompt(m.group(1), root, _seen + (relative,)), text)


def included_files(relative: str, root: Path | None = None) -> list[str]:
    """`relative` and every file it includes, transitively, in order of first appearance."""
    files = [relative]
    text = prompt_file(relative, root).read_text(encoding="utf-8")
    for match in _INCLUDE.finditer(text):
        for name in included_files(match.group(1), root):
            if name not in files:
                files.append(name)
    return files


def placeholders(relative: str, root: Path | None = None) -> set[str]:
    """The placeholder names a prompt (with its includes) expects."""
    return set(_PLACEHOLDER.findall(load_prompt(relative, root)))


def render_prompt(relative: str, root: Path | None = None, **values: object) -> str:
    """Fill every `{{name}}` of prompts/<relative>; unknown or missing names are errors."""
    text = load_prompt(relative, root)
    wanted = set(_PLACEHOLDER.findall(text))
    missing = sorted(wanted - values.keys())
    unused = sorted(values.keys() - wanted)
    where = display_path(prompt_file(relative, root))
    if missing:
        raise DataError(f"{where}: placeholder(s) without a value: {', '.join(missing)}")
    if unused:
        raise DataError(f"{where}: value(s) the prompt never uses: {', '.join(unused)}")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def prompt_sha256(relative: str, root: Path | None = None) -> dict[str, str]:
    """SHA-256 of the prompt file and of every file it includes, keyed by path under prompts/."""
    return {
        name: hashlib.sha256(prompt_file(name, root).read_bytes()).hexdigest()
        for name in included_files(relative, root)
    }
