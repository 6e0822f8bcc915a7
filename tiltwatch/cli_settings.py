"""The analyzer's settings as CLI flags, made from :class:`AnalyzerConfig` itself: one name per setting.

Every field becomes a flag of the same name (``detect_every`` -> ``--detect-every``; booleans
``--mesh/--no-mesh``), with the field's description as its help, under "Analyzer settings" in
``--help``; ``--preset`` and ``--settings FILE`` (a YAML mapping of the same names) come with
them. ``analyze``, ``bench`` and ``serve`` take the same set, so that a setting is spelt the
same on the command line, in a settings file and in Python.

Usage::

    @app.command()
    @analyzer_flags(default_preset="fast")
    def analyze(source: str, analyzer: AnalyzerChoice) -> None:
        config = analyzer.base            # the preset and the settings file
        analyzer.overrides                # only the flags given on the command line
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import typer

from .config import DEFAULT_PRESET, PRESETS, AnalyzerConfig, load_analyzer_settings

PANEL = "Analyzer settings"


@dataclass
class AnalyzerChoice:
    """What the command line chose: the base config (preset + settings file) and the flags given."""

    preset: str = DEFAULT_PRESET
    settings: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> AnalyzerConfig:
        return AnalyzerConfig.preset(self.preset, **self.settings)

    def config(self) -> AnalyzerConfig:
        """Base and flags together (no site camera in between)."""
        return AnalyzerConfig.preset(self.preset, **(self.settings | self.overrides))


def _flag_type(annotation: Any) -> Any:
    """``int | None`` -> ``int``: the type a flag parses (None is not a value a flag can give)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def _show(value: Any) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _field_parameters() -> list[inspect.Parameter]:
    params = []
    for name, info in AnalyzerConfig.model_fields.items():
        kind = _flag_type(info.annotation)
        flag = name.replace("_", "-")
        decls = [f"--{flag}/--no-{flag}"] if kind is bool else [f"--{flag}"]
        shown = (
            f" (default: {_show(info.default)}"
            + "".join(f"; {preset}: {_show(changes[name])}" for preset, changes in PRESETS.items() if name in changes)
            + ")"
        )
        option = typer.Option(
            None,
            *decls,
            help=(info.description or name.replace("_", " ")) + shown,
            rich_help_panel=PANEL,
            show_default=False,
        )
        params.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[kind])
        )
    return params


def analyzer_flags(default_preset: str = DEFAULT_PRESET) -> Callable:
    """Give a typer command every analyzer setting as a flag; it receives them as ``analyzer: AnalyzerChoice``."""

    def decorate(func: Callable) -> Callable:
        sig = inspect.signature(func)
        own = [p for p in sig.parameters.values() if p.name != "analyzer"]
        extra = [
            inspect.Parameter(
                "preset",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=str,
                default=typer.Option(
                    default_preset,
                    help=f"named settings to start from: {', '.join(PRESETS)} (config.py says what "
                    "each changes); images always run as photos (exact, untracked, the photo mesh work)",
                    rich_help_panel=PANEL,
                ),
            ),
            inspect.Parameter(
                "settings",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Optional[Path],
                default=typer.Option(
                    None,
                    help="analyzer settings file (YAML: the names of these "
                    "flags with '_', e.g. detect_every: 3); flags override it",
                    rich_help_panel=PANEL,
                ),
            ),
            *_field_parameters(),
        ]
        names = set(AnalyzerConfig.model_fields)

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            from .errors import TiltwatchError

            preset, path = kwargs.pop("preset"), kwargs.pop("settings")
            overrides = {n: kwargs.pop(n) for n in list(kwargs) if n in names}
            try:
                choice = AnalyzerChoice(
                    preset,
                    load_analyzer_settings(path) if path is not None else {},
                    {k: v for k, v in overrides.items() if v is not None},
                )
                choice.config()  # a bad value or combination: one line now, before anything starts
            except TiltwatchError as exc:
                typer.secho(f"error: {exc}", fg="red", err=True)
                raise typer.Exit(2) from None
            except ValueError as exc:  # pydantic's ValidationError
                from .errors import pydantic_message

                typer.secho(f"error: {pydantic_message(exc)}", fg="red", err=True)
                raise typer.Exit(2) from None
            return func(**kwargs, analyzer=choice)

        wrapper.__signature__ = sig.replace(parameters=own + extra)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {k: v for k, v in func.__annotations__.items() if k != "analyzer"}
        return wrapper

    return decorate
