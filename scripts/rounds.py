"""The default emotion model's rounds of nets, each exactly as its rule says (docs/emotion_model.md).

``train ROUND`` trains the round's members one after another (each resumes where it stopped)
and keeps each finished one in ``checkpoints/round_ROUND/`` (its last epoch's weights and its
``metrics.csv``; commit them: ``runs/`` does not outlive the machine, and four members can take
longer on 2 CPU cores than one sitting). ``keep ROUND`` only keeps members already finished in
``runs/``. ``decide ROUND DATA`` checks that the round's members finished (the round's own check of
each), exports them (with any earlier round's kept members it joins) as one int8 ensemble with
the logit adjustment fixed at tau 0.1, checks the export against the rule (at most 3 ms a face,
20 MB, int8 top-1 parity at least 99%), and only
then runs the test splits, once each, with and without TTA, recording them in the new model's
card. Nothing here looks at a test figure before the decision. Switching the package's
default (``tiltwatch/emotions.py``) and the README's figures is left to a person.

Rounds: ``four`` (vgg_deep on FER+ train and valid, 40 epochs, seeds 20-23), ``five`` (round
four's members taught 15 more epochs by the eight nets of rounds two and four; needs
``runs/teacher_x8.npz``, see ``configs/ferplus_fer2013_vgg_deep_kd_a.yaml``) and ``six`` (a
fifth member, res_deep, taught from scratch by the same eight, joining round five's four).
``seven`` is a GPU round: two res_wide teachers side by side, then ``tiltwatch teach`` (the two
and the eight nets' ``runs/teacher_x8.npz``), then five students from scratch side by side, each
schedule fitted to the GPU's time; ``--data KIND:PATH`` points every run at the data there (a
file ``tiltwatch pack`` made). Its ``decide`` first times round five's model as a control and
goes on only where the machine runs it at its card's pace.

Usage::

    python scripts/rounds.py train five     # resumable; commit checkpoints/round_five/ as members finish
    python scripts/rounds.py decide five DATA
    python scripts/rounds.py train seven --data packed:ferplus_tv.npz   # on a GPU machine
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tiltwatch, installed or not

CONTROL_MODEL = "ferplus_fer2013_vgg_deep_kd_x4_int8"  # round five's model: 2.095 ms a face on its card


@dataclass(frozen=True)
class Round:
    runs: str  # the members' run and config name, less the member's letter
    epochs: int | None  # None: each member's schedule was fitted to the time (fit_minutes); see min_epochs
    check: str  # the metrics.csv column each member's last epoch is checked on
    limit: float
    below: bool  # True: the check passes under the limit; False: at or above it
    model_name: str  # the exported ensemble's name in tiltwatch/models/
    names: str = "abcd"  # the members this round trains, one letter each
    joins: tuple[str, ...] = ()  # earlier rounds' kept members in its ensemble, as "five/a"
    teachers: tuple[str, ...] = ()  # configs of nets trained first, side by side, to teach the members
    teacher_joins: tuple[str, ...] = ()  # earlier teachers' logits joining them, each an equal share
    teacher_out: str = ""  # the teacher's logits, as the members' configs name them
    parallel: bool = False  # train side by side (one GPU), not one after another
    min_epochs: int = 0  # with fitted schedules: fewer means the machine was too slow for the round as written
    teacher_min_valid: float = 0.0  # each teacher's picked epoch must score this on FER+ valid (held out for it)
    control_ms: float | None = None  # decide only where CONTROL_MODEL runs within this many ms a face

    @property
    def model(self) -> Path:
        return Path(f"tiltwatch/models/{self.model_name}.onnx")

    def passes(self, value: float) -> bool:
        return value < self.limit if self.below else value >= self.limit


ROUNDS = {
    # a last training loss of 1.2 or more means a run went wrong (deep_d and deep_e ended at 1.10)
    "four": Round(
        "ferplus_fer2013_vgg_deep_tv",
        40,
        "train_loss",
        1.2,
        below=True,
        model_name="ferplus_fer2013_vgg_deep_tv_x4_int8",
    ),
    # a student that learnt (its members logged 0.88 on the valid split they trained on) logs 0.85 or more there
    "five": Round(
        "ferplus_fer2013_vgg_deep_kd",
        15,
        "valid_acc",
        0.85,
        below=False,
        model_name="ferplus_fer2013_vgg_deep_kd_x4_int8",
    ),
    "six": Round(
        "ferplus_fer2013_res_deep_kd",
        40,
        "valid_acc",
        0.85,
        below=False,
        model_name="ferplus_fer2013_kd_x5_int8",
        names="e",
        joins=tuple(f"five/{m}" for m in "abcd"),
    ),
    "seven": Round(
        "ferplus_fer2013_kd7",
        None,
        "valid_acc",
        0.85,
        below=False,
        model_name="ferplus_fer2013_kd7_x5_int8",
        names="abcde",
        teachers=("ferplus_fer2013_res_wide_ta", "ferplus_fer2013_res_wide_tb"),
        teacher_joins=("runs/teacher_x8.npz",),
        teacher_out="runs/teacher_r7.npz",
        parallel=True,
        min_epochs=30,
        teacher_min_valid=0.85,
        control_ms=2.2,
    ),
}


def keep_dir(name: str) -> Path:
    return Path(f"checkpoints/round_{name}")


def last_row(metrics: Path) -> dict:
    rows = list(csv.DictReader(metrics.open())) if metrics.is_file() else []
    return rows[-1] if rows else {"epoch": "0"}


def scheduled_epochs(rnd: Round, config: Path) -> int | None:
    """The epochs a member's schedule runs: the round's, or those fitted and recorded in its run's config."""
    if rnd.epochs is not None:
        return rnd.epochs
    return json.loads(config.read_text())["epochs"] if config.is_file() else None


def finished(rnd: Round, run: Path) -> bool:
    """Did the run in ``run`` (a runs/ folder) log every epoch of its schedule?"""
    return int(last_row(run / "metrics.csv")["epoch"]) == scheduled_epochs(rnd, run / "config.json")


def keep(name: str, m: str) -> bool:
    """Keep member m if its run in runs/ has finished; True when it is kept (now or before)."""
    rnd, kept = ROUNDS[name], keep_dir(name)
    if (kept / f"{m}.pt").is_file():
        return True
    run = Path(f"runs/{rnd.runs}_{m}")
    if not finished(rnd, run):
        return False
    from tiltwatch.training.checkpoints import save_weights

    kept.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "metrics.csv", kept / f"{m}_metrics.csv")
    print("kept", save_weights(run / "last.pt", kept / f"{m}.pt"))
    return True


def tiltwatch(*args: str) -> None:
    print("$ tiltwatch", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "tiltwatch", *args], check=True)


def train_side_by_side(configs: list[str], data: str | None) -> None:
    """``tiltwatch train`` of every config at once (one GPU runs them all), each logging to its
    ``runs/NAME.log``; the CPU threads shared out among them."""
    env = os.environ | {
        "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // len(configs))),
        "TQDM_DISABLE": "1",
    }  # a log keeps each epoch's line, not the progress bar's
    Path("runs").mkdir(exist_ok=True)
    procs = []
    for c in configs:
        args = [
            sys.executable,
            "-m",
            "tiltwatch",
            "train",
            "--config",
            f"configs/{c}.yaml",
            *(["--data", data] if data else []),
        ]
        print("$", " ".join(args[1:]), f"> runs/{c}.log", flush=True)
        procs.append(subprocess.Popen(args, stdout=open(f"runs/{c}.log", "w"), stderr=subprocess.STDOUT, env=env))
    failed = [c for c, p in zip(configs, procs) if p.wait() != 0]
    if failed:
        raise SystemExit(f"training failed: {', '.join(failed)} (see runs/NAME.log)")


def train_round(name: str, data: str | None) -> int:
    rnd = ROUNDS[name]
    if rnd.teachers and not Path(rnd.teacher_out).is_file():
        best = [Path(f"runs/{c}/best.pt") for c in rnd.teachers]
        missing = [c for c, b in zip(rnd.teachers, best) if not b.is_file() or not finished(rnd, b.parent)]
        if missing:
            train_side_by_side(missing, data)
        keep_dir(name).mkdir(parents=True, exist_ok=True)
        for c, b in zip(rnd.teachers, best):  # their valid scores, for decide's check of each teacher
            shutil.copy(b.parent / "metrics.csv", keep_dir(name) / f"{c}_metrics.csv")
        tiltwatch(
            "teach",
            *map(str, best),
            *rnd.teacher_joins,
            "--data",
            data or f"ferplus:{teacher_data(rnd)}",
            "--out",
            rnd.teacher_out,
        )
    todo = [m for m in rnd.names if not keep(name, m)]
    if rnd.parallel and todo:
        train_side_by_side([f"{rnd.runs}_{m}" for m in todo], data)
    for m in todo:
        if not rnd.parallel:
            tiltwatch("train", "--config", f"configs/{rnd.runs}_{m}.yaml", *(["--data", data] if data else []))
        if not keep(name, m):
            return 1
    return 0


def teacher_data(rnd: Round) -> str:
    """The data the members' configs name (where no --data points elsewhere)."""
    import yaml

    return yaml.safe_load(Path(f"configs/{rnd.runs}_{rnd.names[0]}.yaml").read_text())["data"]


def control_ok(rnd: Round) -> bool:
    """Round five's model timed as the card times it: is the machine at its usual pace now?"""
    if rnd.control_ms is None:
        return True
    from tiltwatch.training.export import cpu_latency_ms
    from tiltwatch.vision.emotion import resolve_model

    ms = min(cpu_latency_ms(resolve_model(CONTROL_MODEL)[0], 48))
    ok = ms <= rnd.control_ms
    print(f"control: {CONTROL_MODEL} at {ms:.3f} ms a face ({'within' if ok else 'over'} {rnd.control_ms} ms)")
    if not ok:
        print("the machine is slow now: nothing exported, no figure taken; decide again later")
    return ok


def picked_valid(metrics: Path) -> float:
    """FER+ valid accuracy of the epoch a run picked (the best sum of both heads, as train picks)."""
    rows = list(csv.DictReader(metrics.open())) if metrics.is_file() else []
    score = lambda r: float(r["valid_acc"]) + float(r.get("valid_aux_acc") or 0)  # noqa: E731
    return float(max(rows, key=score)["valid_acc"]) if rows else 0.0


def decide(name: str, data: str) -> int:
    rnd, kept = ROUNDS[name], keep_dir(name)
    for c in rnd.teachers:
        acc = picked_valid(kept / f"{c}_metrics.csv")
        ok = acc >= rnd.teacher_min_valid
        print(
            f"teacher {c}: FER+ valid {acc:.4f} at its picked epoch",
            "(ok)" if ok else f"(FAILS the rule: under {rnd.teacher_min_valid})",
        )
        if not ok:
            return 1
    for m in rnd.names:
        row = last_row(kept / f"{m}_metrics.csv")
        ck = kept / f"{m}.pt"
        epochs = rnd.epochs
        if epochs is None and ck.is_file():
            import torch

            epochs = torch.load(ck, map_location="cpu", weights_only=False)["config"]["epochs"]
        if not ck.is_file() or int(row["epoch"]) != epochs:
            print(
                f"member {m}: not finished ({row['epoch']} of {epochs or '?'} epochs); "
                f"run: python scripts/rounds.py train {name}"
            )
            return 1
        if epochs < rnd.min_epochs:
            print(
                f"member {m}: its schedule was fitted to {epochs} epochs, under the round's {rnd.min_epochs}: "
                "the machine was too slow to run the round as written"
            )
            return 1
        value = float(row[rnd.check])
        ok = rnd.passes(value)
        print(
            f"member {m}: {epochs} epochs, last {rnd.check} {value:.3f}",
            "(ok)" if ok else f"(FAILS the rule: {'>=' if rnd.below else '<'} {rnd.limit})",
        )
        if not ok:
            return 1
    if not control_ok(rnd):
        return 1
    out = rnd.model
    members = [keep_dir(r) / f"{m}.pt" for r, m in (j.split("/") for j in rnd.joins)]
    members += [kept / f"{m}.pt" for m in rnd.names]
    tiltwatch(
        "export",
        *map(str, members),
        "--out",
        str(out),
        "--balance",
        f"{data}/ferplus",
        "--tau",
        "0.1",
        "--int8",
        f"{data}/ferplus",
    )
    from tiltwatch.vision.card import ModelCard

    card = ModelCard.from_json(out.with_suffix(".json"))
    checks = {
        "at most 3 ms a face": card.cpu_latency_ms_batch1_2threads <= 3.0,
        "at most 20 MB": card.file_size_bytes <= 20e6,
        "int8 top-1 parity at least 99%": card.parity.top1_agreement >= 0.99,
    }
    for what, ok in checks.items():
        print(f"rule: {what}: {'met' if ok else 'NOT met'}")
    if not all(checks.values()):
        print(
            f"the rule is not met: round {name} does not become the default (re-measure latency only on a quiet "
            "machine; the card keeps every round)"
        )
        return 1
    print(f"the rule is met: round {name} becomes the default. Test splits, once each:")
    for spec, key in (
        (f"ferplus:{data}/ferplus", "ferplus_test"),
        (f"fer2013-folders:{data}/fer2013", "fer2013_private_test"),
    ):
        tiltwatch("eval", "--model", str(out), "--dataset", spec, "--card", key)
        tiltwatch("eval", "--model", str(out), "--dataset", spec, "--tta", "--card", f"{key}_tta")
    return 0


def main(argv: list[str]) -> int:
    data = None
    if "--data" in argv[:-1]:  # every run reads this data (KIND:PATH) instead of its config's
        i = argv.index("--data")
        data, argv = argv[i + 1], argv[:i] + argv[i + 2 :]
    if len(argv) >= 2 and argv[1] in ROUNDS:
        verb, name = argv[:2]
        if verb == "train" and len(argv) == 2:
            return train_round(name, data)
        if verb == "keep" and len(argv) == 2:
            print("kept:", [m for m in ROUNDS[name].names if keep(name, m)])
            return 0
        if verb == "decide" and len(argv) == 3:
            return decide(name, argv[2])
    raise SystemExit(__doc__.split("Usage::")[1].strip())


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
