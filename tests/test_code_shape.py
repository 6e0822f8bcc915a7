"""The code keeps the shape a newcomer can read: no function over 80 lines, ruff clean and formatted,
mediapipe behind one file."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_no_function_is_over_80_lines():
    long = []
    for path in sorted(p for folder in ("tiltwatch", "scripts", "tests") for p in (ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})")
    assert long == [], "split these into named steps: " + ", ".join(long)


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_is_clean(command):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))  # the test extra's pinned ruff
    assert ruff, "ruff is part of the test extra: pip install -e '.[test]'"
    res = subprocess.run([ruff, *command, "tiltwatch", "tests", "scripts"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-1000:]


def test_mediapipe_is_called_from_one_file():
    """mediapipe is the most fragile pin: replacing it must mean rewriting one file."""
    importers = []
    for path in sorted(p for folder in ("tiltwatch", "scripts", "tests") for p in (ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "mediapipe" or n.startswith("mediapipe.") for n in names):
                importers.append(str(path.relative_to(ROOT)))
    assert sorted(set(importers)) == ["tiltwatch/vision/mediapipe_models.py"]
