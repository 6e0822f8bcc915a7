"""An output folder that always holds one run's complete set of files, or says that it is partial.

A run writes into a staging folder inside ``--out`` (``.partial-<pid>``). When it ends (at the
end of its source, or interrupted: what was written is complete up to there) its files move in
together, the previous run's files that this run did not write are removed, and ``run.json``
says which run they are and whether it finished. When it fails (nothing analysed, a full disk)
the previous run's files stay as they were and the new run's partial files stay in the staging
folder, named in the error. A staging folder left by a killed run is kept and reported.

Usage::

    folder = OutputFolder(Path("out"), ["results.jsonl", "annotated.mp4"], overwrite=False)
    ... write into folder.staging ...
    folder.commit({"status": "complete", "frames": 300})      # or folder.keep_partial()
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ..errors import OutputError

OUTPUT_FILES = {"jsonl": "results.jsonl", "csv": "summary.csv", "video": "annotated.mp4"}  # --output: file
PHOTO_FILES = {"jsonl": "results.jsonl", "csv": "faces.csv", "video": "annotated"}  # photos: a row per face, images
RUN_FILES = (*OUTPUT_FILES.values(), "faces.csv", "annotated", "run.json")


def output_names(outputs: list[str], photos: bool) -> list[str]:
    """The files (``annotated``: a folder) that ``--output`` choices write, for videos or for photos."""
    return [(PHOTO_FILES if photos else OUTPUT_FILES)[o] for o in outputs]


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class OutputFolder:
    def __init__(self, out: Path, names: list[str], overwrite: bool):
        self.out, self.names = Path(out), names
        if self.out.exists() and not self.out.is_dir():
            raise OutputError(f"{self.out}: is a file, not a folder; choose another --out")
        existing = [n for n in RUN_FILES if (self.out / n).exists()]
        if existing and not overwrite:
            raise OutputError(f"{self.out}/{existing[0]} already exists; pass --overwrite or choose another --out")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self.staging = self.out / f".partial-{os.getpid()}"
            self.staging.mkdir(exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{self.out}: cannot write here ({_why(exc)})") from None
        self.leftovers = sorted(str(p) for p in self.out.glob(".partial-*") if p != self.staging)

    def commit(self, info: dict[str, Any]) -> list[Path]:
        """Move the run's files in, remove the previous run's others, write run.json; the files' paths."""
        try:
            # first the old run.json: should a move below fail, no run.json may describe a mix of files
            _remove(self.out / "run.json")
            for name in RUN_FILES:  # another run's files: they would pass for this run's
                target, new = self.out / name, self.staging / name
                if new.is_file() and not target.is_dir():
                    continue  # os.replace below swaps it in at once
                if name not in self.names or new.exists():
                    _remove(target)
            for name in self.names:
                if (self.staging / name).exists():
                    os.replace(self.staging / name, self.out / name)
            info = {
                "files": [n for n in self.names if (self.out / n).exists()],
                "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            } | info
            tmp = self.staging / "run.json"
            tmp.write_text(json.dumps(info, indent=2) + "\n")
            os.replace(tmp, self.out / "run.json")
            shutil.rmtree(self.staging, ignore_errors=True)
        except OSError as exc:
            raise OutputError(
                f"{self.out}: cannot move the results in ({_why(exc)}); they are in {self.staging}"
            ) from None
        return [self.out / n for n in info["files"]]

    def keep_partial(self) -> Path | None:
        """After a failure: the staging folder if it holds anything (kept), else None (removed). No
        frame in results.jsonl means nothing was analysed: a video's header alone is not worth keeping."""
        jsonl = self.staging / "results.jsonl"
        analysed = not jsonl.exists() or jsonl.stat().st_size > 0
        if analysed and any(p.is_dir() or p.stat().st_size > 0 for p in self.staging.iterdir()):
            return self.staging
        shutil.rmtree(self.staging, ignore_errors=True)
        return None
