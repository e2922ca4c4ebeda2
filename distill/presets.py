"""Presets: a model's generate settings kept under a name, to make sounds the same way again.

A preset holds what shapes a sound (mode and its sources, temperature, duration, the
named directions and principal offsets, the decoder), never the seed or the count: `distill generate MODEL
--preset NAME --seed 7` then makes the sounds `--seed 7` with those settings makes, sample for
sample. Presets live in `<workspace>/presets/<model id>.json`, keyed by the model file's id,
so a renamed model keeps them and a new model of the same name starts without any.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from distill import DistillError
from distill.atomic import atomic_write_json
from distill.modelfile import load_model_file, resolve_model
from distill.workspace import Workspace, read_json

FORMAT = "distill-presets"
VERSION = 1
MODES = ("random", "variation", "morph")


@dataclass(frozen=True)
class Preset:
    """How sounds are made, as `distill.generate.generate_sounds` takes it (seed and count aside)."""

    mode: str = "random"
    temperature: float = 1.0
    duration: float | None = None  # None: the model's default length
    offsets: dict[int, float] = field(default_factory=dict)  # principal direction (1 = pc1) → spreads
    directions: dict[str, float] = field(default_factory=dict)  # named direction (brightness, ...) → -1..1
    like: str | None = None  # variation: the source
    morph: tuple[str, str] | None = None  # morph: the two ends
    griffin_lim: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise DistillError(f"unknown mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise DistillError(f"temperature must be 0 or more, not {self.temperature}")
        if self.duration is not None and not self.duration > 0:
            raise DistillError(f"duration must be above 0 seconds, not {self.duration}")
        object.__setattr__(self, "offsets", {int(k): float(v) for k, v in self.offsets.items() if float(v)})
        object.__setattr__(self, "directions", {str(k): float(v) for k, v in self.directions.items() if float(v)})
        if self.morph is not None:
            object.__setattr__(self, "morph", tuple(self.morph))

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `generate_sounds` and `make_pack` this preset sets."""
        return {"mode": self.mode, "temperature": self.temperature, "duration": self.duration,
                "offsets": dict(self.offsets) or None, "directions": dict(self.directions) or None,
                "like": self.like if self.mode == "variation" else None,
                "morph_ends": self.morph if self.mode == "morph" else None, "griffin_lim": self.griffin_lim}

    def to_dict(self) -> dict[str, Any]:
        plain = asdict(self)
        plain["offsets"] = {str(k): v for k, v in self.offsets.items()}
        plain["morph"] = list(self.morph) if self.morph else None
        return plain

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Preset":
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def replace(self, **changes: Any) -> "Preset":
        return replace(self, **changes)


def presets_path(ws: Workspace, model_id: str) -> Path:
    return ws.root / "presets" / f"{model_id}.json"


def _model_id(ws: Workspace, model: str | Path) -> str:
    path = resolve_model(ws, model)
    model_id = str(load_model_file(path, mmap=True).metadata.get("id") or "")
    if not model_id:
        raise DistillError(f"{path.name} has no id (exported by an old Distill): export it again to keep presets")
    return model_id


def _load(ws: Workspace, model: str | Path) -> tuple[Path, dict[str, Preset]]:
    """(the model's presets file, its presets by name, sorted): the model file is opened once."""
    path = presets_path(ws, _model_id(ws, model))
    if not path.is_file():
        return path, {}
    try:
        data = read_json(path)
        if data.get("format") != FORMAT:
            raise ValueError("not a Distill presets file")
        return path, {name: Preset.from_dict(values) for name, values in sorted(data["presets"].items())}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DistillError(f"{path} cannot be read ({exc}): fix or remove it") from None


def _write(path: Path, presets: dict[str, Preset]) -> None:
    atomic_write_json(path, {"format": FORMAT, "version": VERSION,
                             "presets": {name: preset.to_dict() for name, preset in sorted(presets.items())}})


def _name(name: str) -> str:
    name = " ".join(str(name).split())
    if not name:
        raise DistillError("a preset needs a name")
    return name[:80]


def _pick(presets: dict[str, Preset], name: str) -> Preset:
    if name not in presets:
        have = ", ".join(presets) or "none yet"
        raise DistillError(f"no preset named {name!r} for this model (have: {have})")
    return presets[name]


def list_presets(ws: Workspace, model: str | Path) -> dict[str, Preset]:
    """The model's presets by name, sorted; an unreadable file is said plainly, not skipped."""
    return _load(ws, model)[1]


def get_preset(ws: Workspace, model: str | Path, name: str) -> Preset:
    return _pick(list_presets(ws, model), name)


def save_preset(ws: Workspace, model: str | Path, name: str, preset: Preset, overwrite: bool = True) -> str:
    """Keep `preset` as `name` (replacing one of that name unless `overwrite` is False)."""
    name = _name(name)
    path, presets = _load(ws, model)
    if name in presets and not overwrite:
        raise DistillError(f"a preset named {name!r} exists: choose another name")
    presets[name] = preset
    _write(path, presets)
    return name


def rename_preset(ws: Workspace, model: str | Path, old: str, new: str) -> str:
    path, presets = _load(ws, model)
    preset, new = _pick(presets, old), _name(new)
    if new in presets and new != old:
        raise DistillError(f"a preset named {new!r} exists: choose another name")
    del presets[old]
    presets[new] = preset
    _write(path, presets)
    return new


def delete_preset(ws: Workspace, model: str | Path, name: str) -> None:
    path, presets = _load(ws, model)
    _pick(presets, name)
    del presets[name]
    _write(path, presets)
