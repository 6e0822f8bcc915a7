"""``tiltwatch report``: one self-contained HTML page for a camera and a day, plus CSV exports.

Plots (PNG, embedded as data URIs, so the file can be mailed or opened offline): an emotion
timeline per visit, a heatmap of negative affect per zone over the day, attention per zone,
staff-zone occupancy; then the alerts table with their evidence. Times are UTC.

Usage::

    tiltwatch report --db sqlite:///floor.db --camera cam-1 --date 2026-11-21 --out report.html --csv exports/
"""

from __future__ import annotations

import base64
import csv
import html
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from ..emotions import EMOTIONS
from ..errors import InputError
from .records import Alert, Observation, Visit

NEGATIVE = ("sadness", "anger", "disgust", "fear", "contempt")
_COLOURS = ["#bbbbbb", "#3cb44b", "#ffc400", "#4363d8", "#e6194b", "#2e8b57", "#911eb4", "#a0522d"]


def day_bounds(day: str) -> tuple[float, float]:
    try:
        d = date.fromisoformat(day)
    except ValueError:
        raise InputError(f"--date must be YYYY-MM-DD, got {day!r}") from None
    start = datetime(d.year, d.month, d.day, tzinfo=UTC)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def _hhmm(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def timeline_plot(visits: list[Visit], obs: list[Observation], most: int = 12) -> str | None:
    by_visit: dict[str, list[Observation]] = {}
    for o in obs:
        by_visit.setdefault(o.visit_key, []).append(o)
    shown = [
        v for v in sorted(visits, key=lambda v: v.end - v.start, reverse=True) if len(by_visit.get(v.visit_key, [])) > 1
    ]
    shown = shown[:most]
    if not shown:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 1.3 * len(shown) + 0.6), squeeze=False)
    for ax, v in zip(axes[:, 0], shown):
        series = by_visit[v.visit_key]
        t = np.array([(o.t - v.start) for o in series])
        p = np.array([o.probs for o in series]).T
        ax.stackplot(t, p, colors=_COLOURS, labels=EMOTIONS)
        ax.set_xlim(0, max(t[-1], 1e-3))
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.set_ylabel(f"#{v.track_id}\n{_hhmm(v.start)}", rotation=0, ha="right", va="center", fontsize=8)
    axes[-1, 0].set_xlabel("seconds into the visit")
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    axes[0, 0].set_title("emotion over each visit (smoothed probabilities; longest visits first)")
    return _png(fig)


def heatmap_plot(obs: list[Observation], start: float, end: float) -> str | None:
    obs = [o for o in obs if o.zone is not None]
    if not obs:
        return None
    zones = sorted({o.zone for o in obs})
    t0, t1 = min(o.t for o in obs), max(o.t for o in obs)
    bins = max(1, min(48, int((t1 - t0) // 60) + 1))  # one-minute bins or coarser, at most 48
    edges = np.linspace(t0, t1 + 1e-6, bins + 1)
    neg_idx = [EMOTIONS.index(e) for e in NEGATIVE]
    grid = np.full((len(zones), bins), np.nan)
    for zi, z in enumerate(zones):
        zo = [o for o in obs if o.zone == z]
        k = np.clip(np.searchsorted(edges, [o.t for o in zo], side="right") - 1, 0, bins - 1)
        neg = np.array([sum(o.probs[i] for i in neg_idx) for o in zo])
        for b in range(bins):
            if (k == b).any():
                grid[zi, b] = neg[k == b].mean()
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(zones) + 1.4))
    im = ax.imshow(grid, aspect="auto", cmap="Reds", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(zones)), zones)
    ticks = np.linspace(0, bins - 1, min(bins, 6)).round().astype(int)
    ax.set_xticks(ticks, [_hhmm(edges[i]) for i in ticks])
    ax.set_title("negative affect per zone (mean P(sadness+anger+disgust+fear+contempt))")
    fig.colorbar(im, ax=ax, fraction=0.03)
    return _png(fig)


def attention_plot(obs: list[Observation]) -> str | None:
    per: dict[str, list[bool]] = {}
    for o in obs:
        if o.zone is not None and o.attentive is not None:
            per.setdefault(o.zone, []).append(o.attentive)
    if not per:
        return None
    plt = _plt()
    zones = sorted(per)
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(zones) + 1.2))
    ax.barh(zones, [np.mean(per[z]) for z in zones], color="#4363d8")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of time looking into the zone's attention cone")
    ax.set_title("attention per zone")
    return _png(fig)


def occupancy_plot(counts) -> str | None:
    if not counts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 2.2))
    for z in sorted({c.zone for c in counts}):
        cs = [c for c in counts if c.zone == z]
        ax.step([c.t for c in cs], [c.count for c in cs], where="post", label=z)
    ticks = ax.get_xticks()
    ax.set_xticks(ticks, [_hhmm(t) for t in ticks])
    ax.set_ylabel("faces")
    ax.legend(fontsize=8)
    ax.set_title("staff zones: face count only (no emotion is inferred there)")
    return _png(fig)


def alerts_table(alerts: list[Alert]) -> str:
    if not alerts:
        return "<p>No alerts.</p>"
    rows = []
    for a in alerts:
        ev = {k: v for k, v in a.evidence.items() if k != "series"}
        rows.append(
            f"<tr><td>{html.escape(a.kind)}</td><td>{html.escape(a.zone or '-')}</td><td>#{a.track_id}</td>"
            f"<td>{_hhmm(a.start)}</td><td>{_hhmm(a.end)}</td><td>{a.end - a.start:.1f}</td>"
            f"<td>{a.value:.2f}</td><td>{a.threshold:.2f}</td><td>{html.escape(str(ev))}</td></tr>"
        )
    return (
        "<table><tr><th>kind</th><th>zone</th><th>track</th><th>start</th><th>end</th><th>seconds</th>"
        "<th>value</th><th>threshold</th><th>evidence</th></tr>" + "".join(rows) + "</table>"
    )


def _resting(baseline: list[float] | None) -> str:
    """A baseline in words: its two largest emotions ("neutral 0.71, sadness 0.18"), or "-"."""
    if not baseline:
        return "-"
    top = np.argsort(baseline)[::-1][:2]
    return ", ".join(f"{EMOTIONS[i]} {baseline[i]:.2f}" for i in top)


def visits_table(visits: list[Visit], most: int = 50) -> str:
    """The ``most`` longest visits: when, where, what they felt, and against which resting face."""
    if not visits:
        return "<p>No visits.</p>"
    longest = sorted(visits, key=lambda v: v.end - v.start, reverse=True)[:most]
    rows = [
        f"<tr><td>#{v.track_id}</td><td>{_hhmm(v.start)}</td><td>{v.end - v.start:.1f}</td>"
        f"<td>{html.escape(', '.join(v.zones) or '-')}</td><td>{html.escape(v.dominant)}</td>"
        f"<td>{'-' if v.attention is None else f'{v.attention:.0%}'}</td>"
        f"<td>{html.escape(_resting(v.baseline))} ({v.baseline_frames} frames)</td>"
        f"<td>{'-' if v.peak_tilt is None else f'{v.peak_tilt:.2f}'}</td>"
        f"<td>{'-' if v.peak_deviation is None else f'{v.peak_deviation:+.2f}'}</td></tr>"
        for v in sorted(longest, key=lambda v: v.start)
    ]
    shown = (
        f"The {len(longest)} longest of {len(visits)}, in order of arrival; all in visits.csv"
        if len(visits) > most
        else "In order of arrival"
    )
    return (
        f"<p>{shown}. Resting face: the person's own baseline (its two largest emotions); peak "
        "deviation: the largest rise of a tilt emotion above it.</p><table><tr><th>track</th><th>start</th>"
        "<th>seconds</th><th>zones</th><th>mostly</th><th>attentive</th><th>resting face</th>"
        "<th>peak tilt</th><th>peak deviation</th></tr>" + "".join(rows) + "</table>"
    )


def build_report(store, camera: str, day: str, out: str | Path, csv_dir: str | Path | None = None) -> dict:
    start, end = day_bounds(day)
    visits = store.visits(camera=camera, start=start, end=end)
    alerts = store.alerts(camera=camera, start=start, end=end)
    obs = store.observations(camera=camera, start=start, end=end)
    counts = store.zone_counts(camera=camera, start=start, end=end)
    figures = [
        ("Emotion timelines", timeline_plot(visits, obs)),
        ("Negative affect by zone", heatmap_plot(obs, start, end)),
        ("Attention", attention_plot(obs)),
        ("Staff zones", occupancy_plot(counts)),
    ]
    dwell = [v.end - v.start for v in visits]
    cut = sum(v.interrupted for v in visits)
    summary = (
        f"{len(visits)} visits, {len(alerts)} alerts, {len(obs)} observations; "
        f"median visit {np.median(dwell) if dwell else 0:.1f} s"
        + (f"; {cut} visits cut short by an interrupted run (its process was killed)" if cut else "")
    )
    parts = [
        f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='{uri}'>"
        if uri
        else f"<h2>{html.escape(title)}</h2><p>No data for this plot.</p>"
        for title, uri in figures
    ]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>tiltwatch: {html.escape(camera)} {day}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
img{{max-width:100%}}table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px}}
th{{background:#f3f3f3}}</style></head><body>
<h1>tiltwatch report: camera {html.escape(camera)}, {day} (UTC)</h1><p>{summary}</p>
{''.join(parts)}<h2>Visits</h2>{visits_table(visits)}<h2>Alerts</h2>{alerts_table(alerts)}</body></html>"""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    if csv_dir is not None:
        export_csv(Path(csv_dir), visits, alerts, obs)
    return {
        "visits": len(visits),
        "alerts": len(alerts),
        "observations": len(obs),
        "plots": sum(1 for _, u in figures if u),
    }


def export_csv(folder: Path, visits: list[Visit], alerts: list[Alert], obs: list[Observation]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _visits_csv(folder / "visits.csv", visits)
    with open(folder / "alerts.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["kind", "camera", "zone", "visit_key", "track_id", "start_utc", "end_utc", "value", "threshold"])
        for a in alerts:
            w.writerow(
                [
                    a.kind,
                    a.camera,
                    a.zone or "",
                    a.visit_key,
                    a.track_id,
                    _iso(a.start),
                    _iso(a.end),
                    a.value,
                    a.threshold,
                ]
            )
    with open(folder / "observations.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["t_utc", "camera", "visit_key", "zone", "valence", "arousal", "yaw", "pitch", "attentive", *EMOTIONS]
        )
        for o in obs:
            w.writerow(
                [
                    _iso(o.t),
                    o.camera,
                    o.visit_key,
                    o.zone or "",
                    o.valence,
                    o.arousal,
                    o.yaw,
                    o.pitch,
                    o.attentive,
                    *o.probs,
                ]
            )


def _visits_csv(path: Path, visits: list[Visit]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "visit_key",
                "camera",
                "track_id",
                "start_utc",
                "end_utc",
                "seconds",
                "zones",
                "frames",
                "dominant",
                "mean_valence",
                "mean_arousal",
                "attention",
                *[f"mean_{e}" for e in EMOTIONS],
                "baseline_frames",
                "peak_tilt",
                "peak_deviation",
                *[f"baseline_{e}" for e in EMOTIONS],
            ]
        )
        for v in visits:
            w.writerow(
                [
                    v.visit_key,
                    v.camera,
                    v.track_id,
                    _iso(v.start),
                    _iso(v.end),
                    round(v.end - v.start, 2),
                    ";".join(v.zones),
                    v.frames,
                    v.dominant,
                    v.mean_valence,
                    v.mean_arousal,
                    "" if v.attention is None else v.attention,
                    *v.mean_probs,
                    v.baseline_frames,
                    "" if v.peak_tilt is None else v.peak_tilt,
                    "" if v.peak_deviation is None else v.peak_deviation,
                    *(v.baseline or [""] * len(EMOTIONS)),
                ]
            )


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
