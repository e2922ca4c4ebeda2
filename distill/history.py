"""History: every sound the page makes, kept per model, to hear again, keep, make again or pack.

A sound made on the page (random, a variation, a morph step, a transformed clip) is worth
finding again an hour later: the history holds each one with what made it. It lives in
`<workspace>/history/<model id>/`, keyed by the model file's id like the presets, so a renamed
model keeps it and a new model of the same name starts empty:

    history.json             the entries, newest first
    <entry id>/<name>.wav    a copy of the sound (deleting generated/ files does not break it)
    <entry id>/thumbnail.png a small log-mel picture (`distill.pictures`)
    <entry id>/sources/…     copies of the files its spec names (a variation of an upload)
    <entry id>/input/…       a transform's input

An entry keeps the `SoundSpec` as `SoundSpec.to_dict()` writes it (so fields added to the spec
later ride along) and the decoder, which is all `make_again` needs to render the very same
samples; a transform keeps its input and strength. Every write goes through `distill.atomic`:
an entry's folder appears whole, then the list that names it. A damaged history.json is an
error that names the file, never wiped. One process's writers take turns (a lock); the page
and the CLI writing the same model's history at the same instant could lose one change.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import shutil
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import soundfile as sf

from distill import DistillError
from distill.atomic import atomic_copy, ensure_space, output_set
from distill.audio import AudioSettings, OutputFormat, levels, read_audio, write_sound
from distill.generate import GENERATED_SOURCE, GeneratedSound, SoundSpec, Studio, file_name, generated_dir, \
    open_studio, under_ceiling
from distill.instrument import parse_formats
from distill.modelfile import load_model_file, resolve_model
from distill.pack import PackResult, PackSound, pack_head, pack_paths, write_pack
from distill.pictures import write_thumbnail
from distill.transform import TransformResult, transform_files
from distill.workspace import Workspace, read_json, sanitize_filename, unique_path

FORMAT = "distill-history"
VERSION = 1
KINDS = ("random", "variation", "morph", "transform")
HISTORY_FILE = "history.json"
THUMBNAIL = "thumbnail.png"
# The newest this many sounds that are not kept stay; older ones go (files and all) as new ones
# come. A kept sound is never dropped on its own: only a delete removes it.
MAX_UNKEPT = 200
_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")  # what `_new_id` makes: a folder name, never a path
_LOCK = threading.RLock()  # a read-change-write of one history.json at a time, in this process


@dataclass(frozen=True)
class HistoryEntry:
    """One sound in a model's history: its files (in `folder`), what made it, and whether it is kept."""

    id: str
    created: str  # ISO 8601, UTC
    kind: str  # one of KINDS
    audio: str  # the sound's file name in `folder`
    seconds: float
    peak_dbfs: float | None = None  # None: silence
    rms_dbfs: float | None = None
    recipe: str = ""  # which clips, in what shares (a transform: its input)
    griffin_lim: bool = False  # decoded with Griffin-Lim instead of the vocoder
    spec: dict[str, Any] | None = None  # a generated sound's `SoundSpec.to_dict()`
    transform: dict[str, Any] | None = None  # a transform's {"input", "input_file", "strength"}
    sources: dict[str, str] = field(default_factory=dict)  # a file the spec names → its copy in `folder`
    kept: bool = False
    again_of: str | None = None  # made again from this entry
    folder: Path = field(default=Path(), compare=False, repr=False)

    @property
    def audio_path(self) -> Path:
        return self.folder / self.audio

    @property
    def thumbnail_path(self) -> Path:
        return self.folder / THUMBNAIL

    def sound_spec(self) -> SoundSpec:
        """The spec that makes this sound, reading any file it names from this entry's copy."""
        if self.spec is None:
            raise DistillError(f"history entry {self.id} is a transformed clip: it has no spec")
        spec = SoundSpec.from_dict(self.spec)
        copy = {ref: str(self.folder / rel) for ref, rel in self.sources.items() if (self.folder / rel).is_file()}
        return replace(spec, like=copy.get(spec.like, spec.like) if spec.like else spec.like,
                       morph=tuple(copy.get(ref, ref) for ref in spec.morph) if spec.morph else spec.morph)

    def settings_parts(self) -> list[str]:
        """What made it, most telling first: `["random", "seed 12", "temperature 0.8", "1.50 s",
        "pc1 +0.5", "Griffin-Lim"]`, `["variation of kick.wav", "distance 0.40", …]`."""
        parts = _settings_parts(self.spec, self.kind) if self.spec else [
            f"transform of {(self.transform or {}).get('input', '?')}",
            f"strength {float((self.transform or {}).get('strength', 0)):g}"]
        parts.append(f"{self.seconds:.2f} s")
        if self.griffin_lim:
            parts.append("Griffin-Lim")
        return [p for p in parts if p]

    def settings_text(self) -> str:
        """`random · seed 12 · temperature 0.8 · 1.50 s · pc1 +0.5 · Griffin-Lim`: what made it, in one line."""
        return " · ".join(self.settings_parts())

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        del values["folder"]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], folder: Path) -> "HistoryEntry":
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__ and k != "folder"}
        entry = cls(**known)
        if not _ID.match(str(entry.id)) or entry.kind not in KINDS or Path(entry.audio).name != entry.audio:
            raise ValueError(f"an entry is not one Distill wrote (id {entry.id!r})")
        return replace(entry, folder=folder / entry.id)


def _settings_parts(spec: dict[str, Any], kind: str) -> list[str]:
    mode = spec.get("mode", kind)
    if mode == "variation":
        parts = [f"variation of {Path(str(spec.get('like') or '?')).name}",
                 f"distance {float(spec.get('temperature', 0)):.2f}", f"seed {spec.get('seed')}"]
    elif mode == "morph":
        a, b = (Path(str(x)).name for x in (spec.get("morph") or ("?", "?")))
        parts = [f"morph {a} → {b}", f"{float(spec.get('position', 0)):.0%} of the way"]
    else:
        parts = ["random", f"seed {spec.get('seed')}", f"temperature {float(spec.get('temperature', 1)):g}"]
    parts += [f"pc{k} {float(v):+g}" for k, v in sorted((spec.get("offsets") or {}).items()) if float(v)]
    parts += [f"{k} {float(v):+g}" for k, v in sorted((spec.get("directions") or {}).items()) if float(v)]
    return parts


# -- where and how it is stored ------------------------------------------------------------

@dataclass(frozen=True)
class _Model:
    """What the history needs of a model file, read once (memory-mapped, no network built)."""

    path: Path
    id: str
    settings: AudioSettings
    clips: frozenset[str]  # its training clips' names: sources that are no files


def history_dir(ws: Workspace, model_id: str) -> Path:
    return ws.root / "history" / model_id


def _open_model(ws: Workspace, model: str | Path) -> _Model:
    path = resolve_model(ws, model)
    file = load_model_file(path, mmap=True)
    model_id = str(file.metadata.get("id") or "")
    if not model_id:
        raise DistillError(f"{path.name} has no id (exported by an old Distill): export it again to keep a history")
    plain = file.analysis.get("trajectories")
    clips = frozenset(plain.get("names", ())) if isinstance(plain, dict) else frozenset()
    return _Model(path, sanitize_filename(model_id, "model"), file.audio_settings, clips)


def _load(folder: Path) -> list[HistoryEntry]:
    """The entries of `folder/history.json`, newest first ([] when there is none yet)."""
    path = folder / HISTORY_FILE
    if not path.is_file():
        return []
    try:
        data = read_json(path)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a Distill history file")
        return [HistoryEntry.from_dict(values, folder) for values in data["entries"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DistillError(f"{path} cannot be read ({exc}): fix or remove it (the sounds are in the folders "
                           "beside it)") from None


def _listing(entries: Sequence[HistoryEntry]) -> bytes:
    data = {"format": FORMAT, "version": VERSION, "entries": [e.to_dict() for e in entries]}
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _write(folder: Path, entries: Sequence[HistoryEntry]) -> None:
    with output_set() as outputs, outputs.file(folder / HISTORY_FILE) as handle:
        handle.write(_listing(entries))


def _pick(entries: Sequence[HistoryEntry], ref: str) -> HistoryEntry:
    """The entry with id `ref`, or the one whose id starts with it (the CLI's short ids)."""
    ref = str(ref).strip()
    exact = [e for e in entries if e.id == ref]
    found = exact or ([e for e in entries if e.id.startswith(ref)] if ref else [])
    if len(found) == 1:
        return found[0]
    if found:
        raise DistillError(f"{ref!r} fits {len(found)} history entries: give more of the id")
    raise DistillError(f"no history entry {ref!r} for this model")


def _new_id(taken: set[str]) -> str:
    while True:
        made = f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        if made not in taken:
            return made


def _db(value: float) -> float | None:
    return round(float(value), 2) if math.isfinite(value) else None


# -- adding --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _NewSound:
    """A sound about to enter the history: its entry (without id, time and folder) and the
    files to copy beside it (name in the entry's folder → where it is now)."""

    entry: dict[str, Any]
    audio: Path
    copies: dict[str, Path] = field(default_factory=dict)


def _add(ws: Workspace, model: _Model, made: Sequence[_NewSound]) -> list[HistoryEntry]:
    """Write each new sound's folder (its audio, thumbnail and copies), then the list with
    them on top (in the order given) and the unkept ones past MAX_UNKEPT left out; their
    folders go last, once the list no longer names them."""
    folder = history_dir(ws, model.id)
    with _LOCK:
        entries = _load(folder)
        taken = {e.id for e in entries}
        needed = sum(s.audio.stat().st_size + sum(p.stat().st_size for p in s.copies.values()) for s in made)
        ensure_space(folder.parent, needed, f"{len(made)} sounds in the history")
        added = []
        with output_set() as outputs:
            for sound in made:
                entry_id = _new_id(taken)
                taken.add(entry_id)
                building = outputs.folder(folder / entry_id)
                name = sanitize_filename(sound.audio.name, "sound.wav")
                atomic_copy(sound.audio, building / name)
                for rel, source in sound.copies.items():
                    atomic_copy(source, building / rel)
                write_thumbnail(building / name, building / THUMBNAIL, model.settings)
                added.append(HistoryEntry(id=entry_id, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                          audio=name, folder=folder / entry_id, **sound.entry))
            everything = added + entries
            dropped = _over_the_cap(everything)
            with outputs.file(folder / HISTORY_FILE) as handle:
                handle.write(_listing([e for e in everything if e.id not in dropped]))
        for entry_id in dropped:
            shutil.rmtree(folder / entry_id, ignore_errors=True)
    return added


def _over_the_cap(entries: Sequence[HistoryEntry]) -> set[str]:
    unkept = [e.id for e in entries if not e.kept]
    return set(unkept[MAX_UNKEPT:])


def _spec_sources(spec: SoundSpec, model: _Model) -> dict[str, Path]:
    """The files `spec` names (a variation's source, a morph's ends that are neither training
    clips nor `seed:N`): each is copied beside the entry, so the sound can be made again when
    the original (an upload in a temporary folder) is gone."""
    refs = [spec.like] if spec.mode == "variation" else list(spec.morph or ()) if spec.mode == "morph" else []
    files = {}
    for ref in refs:
        if ref and ref not in model.clips and not ref.startswith(GENERATED_SOURCE) and Path(ref).expanduser().is_file():
            files[ref] = Path(ref).expanduser()
    return files


def _generated(sound: GeneratedSound, griffin_lim: bool, model: _Model, again_of: str | None = None,
               copies: dict[str, Path] | None = None) -> _NewSound:
    files = copies if copies is not None else _spec_sources(sound.spec, model)
    sources = {ref: f"sources/{i + 1}/{sanitize_filename(path.name, 'source')}"
               for i, (ref, path) in enumerate(files.items())}
    entry = {"kind": sound.spec.mode, "seconds": sound.seconds, "peak_dbfs": _db(sound.peak_dbfs),
             "rms_dbfs": _db(sound.rms_dbfs), "recipe": sound.recipe, "griffin_lim": bool(griffin_lim),
             "spec": sound.spec.to_dict(), "sources": sources, "again_of": again_of}
    return _NewSound(entry, sound.path, {sources[ref]: path for ref, path in files.items()})


def _transformed(result: TransformResult, strength: float, griffin_lim: bool, again_of: str | None = None,
                 input_file: Path | None = None) -> _NewSound:
    source = input_file or result.input
    rel = f"input/{sanitize_filename(source.name, 'input')}"
    entry = {"kind": "transform", "seconds": result.seconds, "peak_dbfs": _db(result.output_peak_dbfs),
             "rms_dbfs": _db(result.output_rms_dbfs), "recipe": f"{source.name} through the model",
             "griffin_lim": bool(griffin_lim), "transform": {"input": source.name, "input_file": rel,
                                                             "strength": float(strength)},
             "again_of": again_of}
    return _NewSound(entry, result.path, {rel: source})


def record_sounds(ws: Workspace, model: str | Path, sounds: Sequence[GeneratedSound],
                  griffin_lim: bool = False) -> list[HistoryEntry]:
    """Add generated sounds (`distill.generate.generate_sounds`' result, made with `griffin_lim`
    or not) to the model's history, in their order, on top; returns their entries."""
    if not sounds:
        return []
    opened = _open_model(ws, model)
    return _add(ws, opened, [_generated(s, griffin_lim, opened) for s in sounds])


def record_transforms(ws: Workspace, model: str | Path, results: Sequence[TransformResult], strength: float = 0.0,
                      griffin_lim: bool = False) -> list[HistoryEntry]:
    """Add transformed clips (`distill.transform.transform_files`' results; failed ones are
    skipped) to the model's history, each with a copy of its input."""
    done = [r for r in results if r.ok and r.path is not None]
    if not done:
        return []
    opened = _open_model(ws, model)
    return _add(ws, opened, [_transformed(r, strength, griffin_lim) for r in done])


# -- reading and changing -------------------------------------------------------------------

def list_history(ws: Workspace, model: str | Path) -> list[HistoryEntry]:
    """The model's history, newest first; an unreadable file is said plainly, not skipped."""
    return _load(history_dir(ws, _open_model(ws, model).id))


def get_entry(ws: Workspace, model: str | Path, entry_id: str) -> HistoryEntry:
    return _pick(list_history(ws, model), entry_id)


def keep_entry(ws: Workspace, model: str | Path, entry_id: str, kept: bool = True) -> HistoryEntry:
    """Keep a sound (it is never dropped for room, and goes into the pack of kept sounds), or
    stop keeping it."""
    folder = history_dir(ws, _open_model(ws, model).id)
    with _LOCK:
        entries = _load(folder)
        entry = replace(_pick(entries, entry_id), kept=bool(kept))
        _write(folder, [entry if e.id == entry.id else e for e in entries])
    return entry


def delete_entry(ws: Workspace, model: str | Path, entry_id: str) -> HistoryEntry:
    """Take a sound out of the history and remove its folder (its copy of the sound, its
    thumbnail, its copied sources): nothing else, not the file in generated/ it was copied
    from, not another entry. The list is written first: a crash leaves a stray folder, never
    an entry without its sound."""
    folder = history_dir(ws, _open_model(ws, model).id)
    with _LOCK:
        entries = _load(folder)
        entry = _pick(entries, entry_id)
        _write(folder, [e for e in entries if e.id != entry.id])
        shutil.rmtree(entry.folder, ignore_errors=True)
    return entry


# -- making again ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Again:
    """A sound made again from its history entry: the new entry (on top, `again_of` the old),
    the file written (in generated/ or transformed/, like any new sound), and whether its
    samples are the original's, one for one."""

    entry: HistoryEntry
    path: Path
    identical: bool


def same_samples(a: Path, b: Path) -> bool:
    first, second = sf.read(str(a), always_2d=True)[0], sf.read(str(b), always_2d=True)[0]
    return first.shape == second.shape and bool(np.array_equal(first, second))


def make_again(ws: Workspace, model: str | Path, entry_id: str, device: str = "auto") -> Again:
    """Make an entry's sound again from what it stores: a generated sound from its spec and
    decoder (`Studio.render`, then what `generate_sounds` does: under the ceiling, written
    in the original's format), a transformed clip from its copied input. The same model file
    gives the same samples; `Again.identical` says whether it did (a vocoder trained since
    would not)."""
    opened = _open_model(ws, model)
    original = _pick(_load(history_dir(ws, opened.id)), entry_id)
    fmt = OutputFormat.of_file(original.audio_path, opened.settings.sample_rate)
    if original.spec is None:
        made = _transform_again(ws, opened, original, fmt, device)
    else:
        made = _render_again(ws, opened, original, fmt, device)
    entry = _add(ws, opened, [made])[0]
    return Again(entry, made.audio, same_samples(entry.audio_path, original.audio_path))


def _render_again(ws: Workspace, model: _Model, original: HistoryEntry, fmt: OutputFormat, device: str) -> _NewSound:
    studio = open_studio(ws, model.path, original.griffin_lim, device)
    wave, _, recipe = studio.render(original.sound_spec())
    wave = under_ceiling(wave)
    stored = SoundSpec.from_dict(original.spec or {})  # named as it was asked for, not by its copies
    folder = ws.output_dir(generated_dir(ws, model.path.stem))
    rate = studio.settings.sample_rate
    ensure_space(folder, fmt.size_bytes(wave.shape[-1] / rate, rate, studio.settings.channels), "the sound")
    target = write_sound(unique_path(folder, fmt.file_name(file_name(model.path.stem, stored))), wave, rate, fmt)
    peak, rms = levels(wave)
    sound = GeneratedSound(target, stored, recipe.describe(), round(wave.shape[-1] / rate, 3), peak, rms)
    copies = {ref: original.folder / rel for ref, rel in original.sources.items() if (original.folder / rel).is_file()}
    return _generated(sound, original.griffin_lim, model, again_of=original.id, copies=copies)


def _transform_again(ws: Workspace, model: _Model, original: HistoryEntry, fmt: OutputFormat,
                     device: str) -> _NewSound:
    settings = original.transform or {}
    source = original.folder / str(settings.get("input_file", ""))
    if not source.is_file():
        raise DistillError(f"history entry {original.id} has lost its input ({source.name}): it cannot be made again")
    strength = float(settings.get("strength", 0.0))
    result = transform_files(ws, model.path, [source], griffin_lim=original.griffin_lim, device=device, fmt=fmt,
                             strength=strength)[0]
    if not result.ok:
        raise DistillError(result.error or "the transform failed")
    return _transformed(result, strength, original.griffin_lim, again_of=original.id, input_file=source)


# -- a pack of the kept sounds ----------------------------------------------------------------

def pack_kept(ws: Workspace, model: str | Path, out_dir: str | Path | None = None, name: str | None = None,
              fmt: OutputFormat = OutputFormat(), device: str = "auto",
              progress: Callable[[int, int], None] | None = None, instruments: tuple[str, ...] = ()) -> PackResult:
    """A sample pack (`distill.pack.write_pack`: trimmed, loudness-matched, numbered, with
    pack.json and a zip) of the model's kept sounds, numbered as the history lists them
    (newest batch first). A generated sound is
    rendered again from its spec (the float samples, before the 16-bit file the page plays),
    so `distill.pack.regenerate` makes it again; a transformed clip is read from its file.
    `instruments`: "sfz", "dspreset" (`distill.instrument`): the sounds as a playable instrument too."""
    instruments = parse_formats(instruments)
    opened = _open_model(ws, model)
    kept = [e for e in _load(history_dir(ws, opened.id)) if e.kept]
    if not kept:
        raise DistillError("no kept sounds in this model's history: keep (★) the ones you want, then make the pack")
    studios: dict[bool, Studio] = {}

    def studio(griffin_lim: bool) -> Studio:
        if griffin_lim not in studios:
            studios[griffin_lim] = open_studio(ws, opened.path, griffin_lim, device)
        return studios[griffin_lim]

    first = studio(kept[0].griffin_lim)
    folder, zip_path = pack_paths(ws, out_dir, name or f"{opened.path.stem}-kept")
    settings = first.settings
    needed = sum(fmt.size_bytes(e.seconds, settings.sample_rate, settings.channels) for e in kept)
    ensure_space(folder.parent, 2 * needed, f"a pack of {len(kept)} sounds")  # the files, then the zip
    head = pack_head(first, fmt, first.bank.loudness_lufs, {"from": "history", "kept": len(kept)})
    if len({e.griffin_lim for e in kept}) > 1:
        head["model"]["synthesis"] = "mixed: each file says its own"

    def sounds() -> Iterator[PackSound]:
        for entry in kept:
            maker = studio(entry.griffin_lim)
            about: dict[str, Any] = {"history_id": entry.id, "kind": entry.kind, "synthesis": maker.synthesize.kind}
            if entry.spec is not None:
                wave = maker.render(entry.sound_spec())[0]
                about.update(spec=entry.spec, made_of=entry.recipe)
            else:
                wave = read_audio(entry.audio_path, settings.sample_rate, settings.channels).numpy()
                about.update(transform=entry.transform)
            yield PackSound(wave, entry.audio, about)

    return write_pack(folder, zip_path, sounds(), len(kept), settings.sample_rate, fmt, head, progress, instruments)
