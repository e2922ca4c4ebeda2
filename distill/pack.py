"""Sample packs: N generated sounds as one folder and one `.zip`, ready to drop into a sampler.

Each sound is trimmed (from its onset to where it has died away under -60 dB of its peak),
faded at both ends, and set to the loudness of the model's dataset (its clips' median, in
LUFS) — never peak-normalised one by one, so a soft sound stays soft beside a loud one only
as much as the clips are, under a true-peak ceiling of -1 dBTP. Files are 24-bit WAV by default (16/24-bit
or 32-bit float WAV, 16/24-bit FLAC; 44.1 or 48 kHz), named to sort (`001-…`), and `pack.json`
holds, per file, the model, the `SoundSpec` (mode, seed, settings) and what was done to it
(trim, gain), so `regenerate` makes any sound again, sample for sample.
"""

from __future__ import annotations

import json
import math
import random
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from distill import DistillError, __version__
from distill.audio import OutputFormat, levels, loudness_lufs, resample, sound_end, true_peak_dbtp, write_sound
from distill.instrument import analyse, parse_formats, write_instruments
from distill.generate import SoundSpec, Studio, batch_specs, file_name, open_studio
from distill.atomic import OutputSet, atomic_write_json, ensure_space, output_set
from distill.workspace import Workspace, file_sha256, sanitize_filename, unique_path

TAIL_DB = -60.0  # a sound ends where it stays this far under its peak
FADE_SECONDS = 0.01  # the end fade after the trim (the start is the sound's onset: 2 ms)
# A loudness gain never pushes the true peak (4× oversampled) above this: the ceiling mastering
# and streaming ask for, so a lossy encode or a DAC does not clip. pack.json says when it held back.
TRUE_PEAK_CEILING_DBTP = -1.0
PACK_FILE = "pack.json"


@dataclass(frozen=True)
class PackResult:
    folder: Path
    zip_path: Path
    manifest: dict[str, Any]  # pack.json

    @property
    def files(self) -> list[dict[str, Any]]:  # pack.json's entries
        return self.manifest["files"]


def packs_dir(ws: Workspace) -> Path:
    return ws.root / "packs"


def trim_tail(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """`wave` up to its last sample within `TAIL_DB` of its peak (the sound's own end), with
    a 10 ms fade out; a silent wave is returned as it is."""
    last = sound_end(wave, TAIL_DB)
    if last == 0:
        return wave
    fade = round(FADE_SECONDS * sample_rate)
    end = min(wave.shape[-1], last + fade)
    out = wave[..., :end].copy()
    fade = min(fade, out.shape[-1] // 2)
    if fade:
        out[..., -fade:] *= (0.5 + 0.5 * np.cos(np.pi * np.arange(fade) / fade)).astype(np.float32)
    return out


def loudness_gain_db(wave: np.ndarray, sample_rate: int, target_lufs: float) -> tuple[float, float, bool]:
    """(gain in dB that brings `wave` to `target_lufs`, held back so its true peak stays at or
    under TRUE_PEAK_CEILING_DBTP; its loudness before; whether the peak held it back)."""
    import torch

    before = loudness_lufs(torch.from_numpy(wave), sample_rate)
    if not math.isfinite(before):
        return 0.0, before, False
    gain = target_lufs - before
    peak = true_peak_dbtp(wave, sample_rate)
    limited = peak + gain > TRUE_PEAK_CEILING_DBTP
    return (TRUE_PEAK_CEILING_DBTP - peak if limited else gain), before, limited


def finish(wave: np.ndarray, sample_rate: int, target_lufs: float,
           out_rate: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """A rendered sound as it goes into a pack (trimmed, at `out_rate`, loudness-matched), and
    what was done to it. The level is measured at the rate the file is written at."""
    import torch

    rate = out_rate or sample_rate
    trimmed = resample(trim_tail(wave, sample_rate), sample_rate, rate)
    gain_db, before, limited = loudness_gain_db(trimmed, rate, target_lufs)
    gain_db = math.floor(gain_db * 1e4) / 1e4  # as pack.json stores it (rounded down: never over the ceiling)
    out = (trimmed * np.float32(10 ** (gain_db / 20))).astype(np.float32)
    after = loudness_lufs(torch.from_numpy(out), rate)
    return out, {"samples": int(out.shape[-1]), "gain_db": gain_db, "loudness_before_lufs": _num(before),
                 "loudness_lufs": _num(after), "peak_limited": limited, "peak_dbfs": _num(levels(out)[0]),
                 "true_peak_dbtp": _num(true_peak_dbtp(out, rate))}


def _num(value: float) -> float | None:
    return round(float(value), 3) if math.isfinite(value) else None


def make_pack(ws: Workspace, model: str | Path, n: int = 12, seed: int | None = None, mode: str = "random",
              duration: float | None = None, temperature: float = 1.0, like: str | None = None,
              morph_ends: tuple[str, str] | None = None, offsets: dict[int, float] | None = None,
              directions: dict[str, float] | None = None, griffin_lim: bool = False,
              out_dir: str | Path | None = None, name: str | None = None,
              device: str = "auto", progress=None, fmt: OutputFormat = OutputFormat(),
              loudness_lufs_target: float | None = None, instruments: tuple[str, ...] = ()) -> PackResult:
    """Render `n` sounds (see `distill.generate.batch_specs` for the modes) into
    `<out_dir or workspace/packs>/<name>/` and `<name>.zip` beside it. Both are built under
    temporary names and renamed when complete: a failure or a kill leaves nothing half-made,
    and a pack that cannot fit is refused before any sound is rendered.
    `progress(done, total)` is called after each sound. Each sound is written in `fmt` (default
    24-bit WAV at the model's rate), loudness-matched to `loudness_lufs_target` (default: the
    training clips' median loudness) under a true-peak ceiling of -1 dBTP. `instruments`: "sfz",
    "dspreset" (`distill.instrument`): the sounds as a playable instrument too."""
    instruments = parse_formats(instruments)
    seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    specs = batch_specs(n, seed, mode, duration, temperature, like, morph_ends, offsets, directions)
    studio = open_studio(ws, model, griffin_lim, device)
    studio.check_directions(specs[0].directions)
    model_name = studio.opened.path.stem
    folder, zip_path = pack_paths(ws, out_dir, name or f"{model_name}-{mode}-seed{seed}")
    # The sounds, then the zip holding them again (deflate barely shrinks audio).
    ensure_space(folder.parent, 2 * studio.size_bytes(specs, fmt), f"a pack of {n} sounds")
    target = studio.bank.loudness_lufs if loudness_lufs_target is None else float(loudness_lufs_target)
    sounds = (PackSound(wave, file_name(model_name, spec), {"spec": spec.to_dict(), "made_of": recipe.describe()})
              for spec, (wave, _, recipe) in zip(specs, studio.render_all(specs)))
    head = pack_head(studio, fmt, target, _settings(specs[0], seed, n))
    return write_pack(folder, zip_path, sounds, len(specs), studio.settings.sample_rate, fmt, head, progress,
                      instruments)


@dataclass(frozen=True)
class PackSound:
    """One sound going into a pack: its float wave at the model's rate, its file name (after
    its number, `001-`; the pack's format sets the extension), and what pack.json says of it
    besides its levels (its spec, what it was made of)."""

    wave: np.ndarray
    name: str
    about: dict[str, Any]


def pack_paths(ws: Workspace, out_dir: str | Path | None, name: str) -> tuple[Path, Path]:
    """(the pack's folder, its zip): free names in `out_dir` (default `<workspace>/packs`)."""
    parent = ws.output_dir(out_dir) if out_dir else packs_dir(ws)
    folder = unique_path(parent, sanitize_filename(name, "pack"))
    return folder, unique_path(parent, folder.name + ".zip")


def write_pack(folder: Path, zip_path: Path, sounds: Iterable[PackSound], total: int, sample_rate: int,
               fmt: OutputFormat, head: dict[str, Any], progress=None, instruments: tuple[str, ...] = ()
               ) -> PackResult:
    """The one way a pack is written, whatever made its sounds (`make_pack` renders them, the
    history packs the kept ones): each `finish`ed (trimmed, at `fmt`'s rate, at
    `head["loudness_target_lufs"]`) and numbered, `pack.json` (`head` and the files), and the
    zip, all appearing together or not at all. `sounds` may be a generator: a sound is
    written as soon as it comes. `instruments` (`distill.instrument.FORMATS`): playable
    instruments of the sounds written beside them, and described in pack.json."""
    target = head["loudness_target_lufs"]
    rate = fmt.rate(sample_rate)
    with output_set() as outputs:
        building = outputs.folder(folder)
        entries, analysed = [], []
        for i, sound in enumerate(sounds):
            out, done = finish(sound.wave, sample_rate, target, rate)
            path = write_sound(building / fmt.file_name(f"{i + 1:03d}-{sound.name}"), out, rate,
                               OutputFormat(fmt.container, fmt.bits))  # already at its rate
            entries.append({"file": path.name, **sound.about, "seconds": round(out.shape[-1] / rate, 3), **done})
            if instruments:
                analysed.append(analyse(path.name, out, rate, done["loudness_before_lufs"]))
            if progress:
                progress(i + 1, total)
        manifest = {**head, "files": entries}
        if instruments:
            mode = str((head.get("settings") or {}).get("mode") or "random")
            manifest["instrument"] = write_instruments(building, folder.name, analysed, mode, instruments)
        atomic_write_json(building / PACK_FILE, manifest)
        _zip(building, folder.name, zip_path, outputs)
    return PackResult(folder, zip_path, manifest)


def _settings(first: SoundSpec, seed: int, n: int) -> dict[str, Any]:
    return {"mode": first.mode, "n": n, "seed": seed, "temperature": first.temperature,
            "duration": first.duration, "like": first.like, "morph": list(first.morph) if first.morph else None,
            "offsets": {str(k): v for k, v in first.offsets.items()}, "directions": dict(first.directions)}


def pack_head(studio: Studio, fmt: OutputFormat, target: float, settings: dict[str, Any]) -> dict[str, Any]:
    """pack.json without its files: the model (name, id, file hash, decoder), how the sounds
    were asked for (`settings`), the format and the loudness they were written at."""
    meta = studio.file.metadata
    return {
        "distill_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": studio.opened.path.stem, "id": meta.get("id"),
                  "sha256": file_sha256(studio.opened.path), "synthesis": studio.synthesize.kind},
        "settings": settings,
        "sample_rate": fmt.rate(studio.settings.sample_rate),
        "channels": studio.settings.channels,
        "bits": fmt.bits,
        "format": fmt.to_dict(studio.settings.sample_rate),
        "model_sample_rate": studio.settings.sample_rate,
        "loudness_target_lufs": round(target, 3),
        "loudness": "ITU-R BS.1770 integrated loudness, matched per sound; true peak 4x oversampled",
        "true_peak_ceiling_dbtp": TRUE_PEAK_CEILING_DBTP,
    }


def _zip(building: Path, name: str, target: Path, outputs: OutputSet) -> None:
    """`target`: the files of `building` under `name/`, one of `outputs`."""
    with outputs.file(target) as handle, zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(building.iterdir()):
            archive.write(path, f"{name}/{path.name}")


def regenerate(ws: Workspace, pack_json: str | Path, file: str, model: str | Path | None = None,
               device: str = "auto") -> tuple[np.ndarray, int]:
    """(the float waveform of `file` of a pack, made again from its pack.json; sample rate).
    The model is the one pack.json names (or `model`); a model file whose bytes differ from
    the one the pack was made with is refused, since it would make other sounds."""
    manifest = json.loads(Path(pack_json).read_text(encoding="utf-8"))
    entry = next((e for e in manifest.get("files", []) if e.get("file") == file), None)
    if entry is None:
        raise DistillError(f"{file!r} is not in {pack_json}")
    if not entry.get("spec"):
        raise DistillError(f"{file!r} was not generated (a transformed clip): pack.json cannot make it again")
    # A pack of kept history sounds may mix decoders: then each file says its own.
    synthesis = entry.get("synthesis", manifest["model"].get("synthesis"))
    studio = open_studio(ws, model or manifest["model"]["name"], griffin_lim=synthesis == "griffin-lim",
                         device=device)
    if file_sha256(studio.opened.path) != manifest["model"]["sha256"]:
        raise DistillError(f"{studio.opened.path.name} is not the model file this pack was made with "
                           "(its contents differ), so it would make other sounds")
    wave, _, _ = studio.render(SoundSpec.from_dict(entry["spec"]))
    rate = int(manifest.get("sample_rate", studio.settings.sample_rate))
    trimmed = resample(trim_tail(wave, studio.settings.sample_rate), studio.settings.sample_rate, rate)
    return (trimmed * np.float32(10 ** (entry["gain_db"] / 20))).astype(np.float32), rate
