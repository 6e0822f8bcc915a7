"""The docs hold: their Python examples run, their relative links (and headings) resolve, the CLI reference is current.

A ```python block in docs/ is run; one that must not run (it needs your own video, a camera,
a dataset or a server) is fenced ```python no-run, and illustrations are ```text. The blocks
of one page run in order as one script, in a temporary folder, so a later block can use what
an earlier one made.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
MARKDOWN = [ROOT / "README.md", *PAGES]

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def runnable_blocks(text: str) -> list[str]:
    """The ```python blocks (info string exactly 'python'); ```python no-run and others are skipped."""
    return [m.group(2) for m in FENCE.finditer(text) if m.group(1).strip() == "python"]


def relative_links(text: str) -> list[str]:
    """Link targets outside code: no URLs, no mailto (in-page anchors are kept: '#name')."""
    prose = INLINE_CODE.sub("", FENCE.sub("", text))
    return [t for t in LINK.findall(prose) if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", t)]


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to '-'."""
    out: set[str] = set()
    for m in re.finditer(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", FENCE.sub("", text), re.M):
        slug = re.sub(r"[^\w\- ]", "", m.group(1).replace("`", "").lower()).replace(" ", "-")
        base, n = slug, 1
        while slug in out:
            slug, n = f"{base}-{n}", n + 1
        out.add(slug)
    return out


def test_fence_and_link_parsing():
    text = (
        "see [a](a.md#x) and ![img](b.png) and [web](https://x.org) and [top](#here)\n"
        "```python\nprint(1)\n```\n```python no-run\nboom()\n```\n```text\n[c](missing.md)\n```\n"
        "`[d](in-code.md)`\n"
    )
    assert runnable_blocks(text) == ["print(1)\n"]
    assert relative_links(text) == ["a.md#x", "b.png", "#here"]
    assert anchors("# The store\n## `tiltwatch serve`\n## Why int8, and how\n## The store\n") == {
        "the-store",
        "tiltwatch-serve",
        "why-int8-and-how",
        "the-store-1",
    }


def test_there_are_docs():
    names = {_rel(p) for p in PAGES}
    for page in ("docs/index.md", "docs/reference/cli.md", "docs/emotion_model.md"):
        assert page in names
    assert (ROOT / "LICENSE").is_file()


@pytest.mark.parametrize("page", MARKDOWN, ids=_rel)
def test_relative_links_resolve(page: Path):
    missing, bad_anchor = [], []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        file = (page.parent / path) if path else page
        if not file.exists():
            missing.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            bad_anchor.append(target)
    assert not missing, f"{_rel(page)} links to files that do not exist: {missing}"
    assert not bad_anchor, f"{_rel(page)} links to headings that do not exist: {bad_anchor}"


def test_cli_reference_is_current():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    expected = mod.render()
    current = mod.TARGET.read_text(encoding="utf-8") if mod.TARGET.exists() else ""
    assert current == expected, (
        "docs/reference/cli.md is out of date with the tiltwatch command: run python scripts/cli_reference.py"
    )


EXAMPLE_PAGES = [p for p in PAGES if runnable_blocks(p.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=_rel)
def test_python_examples_run(page: Path, tmp_path: Path):
    blocks = runnable_blocks(page.read_text(encoding="utf-8"))
    script = tmp_path / "example.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, f"{_rel(page)}'s python examples failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
