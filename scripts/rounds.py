"""The default emotion model's rounds of nets, each exactly as its rule says (docs/emotion_model.md).

``train ROUND`` trains the round's members one after another (each resumes where it stopped)
and keeps each finished one in ``checkpoints/round_ROUND/`` (its last epoch's weights and its
``metrics.csv``; commit them: ``runs/`` does not outlive the machine, and four members can take
longer on 2 CPU cores than one sitting). ``keep ROUND`` only keeps members already finished in
``runs/``. ``decide ROUND DATA`` checks that the round's members finished (the round's own check of
each), exports them (with any earlier round's kept members it joins) as one int8 ensemble with
the logit adjustment fixed at tau 0.1, checks the export against the rule (at most 3 ms a face, 20 MB, int8 top-1 parity at least 99%), and only
then runs the test splits, once each, with and without TTA, recording them in the new model's
card. Nothing here looks at a test figure before the decision. Switching the package's
default (``tiltwatch/emotions.py``) and the README's figures is left to a person.

Rounds: ``four`` (vgg_deep on FER+ train and valid, 40 epochs, seeds 20-23), ``five`` (round
four's members taught 15 more epochs by the eight nets of rounds two and four; needs
``runs/teacher_x8.npz``, see ``configs/ferplus_fer2013_vgg_deep_kd_a.yaml``) and ``six`` (a
fifth member, res_deep, taught from scratch by the same eight, joining round five's four).

Usage::

    python scripts/rounds.py train five     # resumable; commit checkpoints/round_five/ as members finish
    python scripts/rounds.py decide five DATA
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

@dataclass(frozen=True)
class Round:
    runs: str  # the members' run and config name, less the member's letter
    epochs: int
    check: str  # the metrics.csv column each member's last epoch is checked on
    limit: float
    below: bool  # True: the check passes under the limit; False: at or above it
    model_name: str  # the exported ensemble's name in tiltwatch/models/
    names: str = "abcd"  # the members this round trains, one letter each
    joins: tuple[str, ...] = ()  # earlier rounds' kept members in its ensemble, as "five/a"

    @property
    def model(self) -> Path:
        return Path(f"tiltwatch/models/{self.model_name}.onnx")

    def passes(self, value: float) -> bool:
        return value < self.limit if self.below else value >= self.limit


ROUNDS = {
    # a last training loss of 1.2 or more means a run went wrong (deep_d and deep_e ended at 1.10)
    "four": Round("ferplus_fer2013_vgg_deep_tv", 40, "train_loss", 1.2, below=True,
                  model_name="ferplus_fer2013_vgg_deep_tv_x4_int8"),
    # a student that learnt (its members logged 0.88 on the valid split they trained on) logs 0.85 or more there
    "five": Round("ferplus_fer2013_vgg_deep_kd", 15, "valid_acc", 0.85, below=False,
                  model_name="ferplus_fer2013_vgg_deep_kd_x4_int8"),
    "six": Round("ferplus_fer2013_res_deep_kd", 40, "valid_acc", 0.85, below=False,
                 model_name="ferplus_fer2013_kd_x5_int8", names="e", joins=tuple(f"five/{m}" for m in "abcd")),
}


def keep_dir(name: str) -> Path:
    return Path(f"checkpoints/round_{name}")


def last_row(metrics: Path) -> dict:
    rows = list(csv.DictReader(metrics.open())) if metrics.is_file() else []
    return rows[-1] if rows else {"epoch": "0"}


def keep(name: str, m: str) -> bool:
    """Keep member m if its run in runs/ has finished; True when it is kept (now or before)."""
    rnd, kept = ROUNDS[name], keep_dir(name)
    if (kept / f"{m}.pt").is_file():
        return True
    run = Path(f"runs/{rnd.runs}_{m}")
    if int(last_row(run / "metrics.csv")["epoch"]) != rnd.epochs:
        return False
    from tiltwatch.training.checkpoints import save_weights

    kept.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "metrics.csv", kept / f"{m}_metrics.csv")
    print("kept", save_weights(run / "last.pt", kept / f"{m}.pt"))
    return True


def tiltwatch(*args: str) -> None:
    print("$ tiltwatch", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "tiltwatch", *args], check=True)


def decide(name: str, data: str) -> int:
    rnd, kept = ROUNDS[name], keep_dir(name)
    for m in rnd.names:
        row = last_row(kept / f"{m}_metrics.csv")
        if not (kept / f"{m}.pt").is_file() or int(row["epoch"]) != rnd.epochs:
            print(f"member {m}: not finished ({row['epoch']} of {rnd.epochs} epochs); "
                  f"run: python scripts/rounds.py train {name}")
            return 1
        value = float(row[rnd.check])
        ok = rnd.passes(value)
        print(f"member {m}: {rnd.epochs} epochs, last {rnd.check} {value:.3f}",
              "(ok)" if ok else f"(FAILS the rule: {'>=' if rnd.below else '<'} {rnd.limit})")
        if not ok:
            return 1
    out = rnd.model
    members = [keep_dir(r) / f"{m}.pt" for r, m in (j.split("/") for j in rnd.joins)]
    members += [kept / f"{m}.pt" for m in rnd.names]
    tiltwatch("export", *map(str, members), "--out", str(out), "--balance", f"{data}/ferplus",
              "--tau", "0.1", "--int8", f"{data}/ferplus")
    card = json.loads(out.with_suffix(".json").read_text())
    checks = {"at most 3 ms a face": card["cpu_latency_ms_batch1_2threads"] <= 3.0,
              "at most 20 MB": card["file_size_bytes"] <= 20e6,
              "int8 top-1 parity at least 99%": card["parity"]["top1_agreement"] >= 0.99}
    for what, ok in checks.items():
        print(f"rule: {what}: {'met' if ok else 'NOT met'}")
    if not all(checks.values()):
        print(f"the rule is not met: round {name} does not become the default (re-measure latency only on a quiet "
              "machine; the card keeps every round)")
        return 1
    print(f"the rule is met: round {name} becomes the default. Test splits, once each:")
    for spec, key in ((f"ferplus:{data}/ferplus", "ferplus_test"), (f"fer2013-folders:{data}/fer2013", "fer2013_private_test")):
        tiltwatch("eval", "--model", str(out), "--dataset", spec, "--card", key)
        tiltwatch("eval", "--model", str(out), "--dataset", spec, "--tta", "--card", f"{key}_tta")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] in ROUNDS:
        verb, name = argv[:2]
        if verb == "train" and len(argv) == 2:
            for m in ROUNDS[name].names:
                if not keep(name, m):
                    tiltwatch("train", "--config", f"configs/{ROUNDS[name].runs}_{m}.yaml")
                    if not keep(name, m):
                        return 1
            return 0
        if verb == "keep" and len(argv) == 2:
            print("kept:", [m for m in ROUNDS[name].names if keep(name, m)])
            return 0
        if verb == "decide" and len(argv) == 3:
            return decide(name, argv[2])
    raise SystemExit(__doc__.split("Usage::")[1].strip())


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
