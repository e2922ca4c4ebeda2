"""A pack as a playable instrument: an SFZ file and a DecentSampler `.dspreset` beside its WAVs.

Three layouts, chosen from the sounds and how they were asked for:

- pitched: most sounds have a pitch (`distill.pitch`: YIN, confidence ≥ `PITCHED_CONFIDENCE`
  in at least `PITCHED_SHARE` of them). Each sound's root is its pitch rounded to the nearest
  key (the sample is not retuned: its root key plays it back as it is); the keys between two
  roots are split at the midpoint, the lowest and highest reach an octave further. Sounds
  that share a root are velocity layers, soft to hard by their loudness before the pack's
  matching, when those differ by 3 dB or more; otherwise they take turns (round robin).
  Notes are released with a fade as long as the sounds take to fall 20 dB from their peak
  (median), so letting go of a key ends the note as the sounds themselves die away.
- kit: drums, noises, effects: one sound per key from MIDI 36 (C1, General MIDI's kick) up,
  ordered from the darkest to the brightest (spectral centroid), so kicks and toms land low
  and hats and cymbals high; each plays as recorded on its key, to its end (one-shot).
- sequence: a morph or a set of variations keeps its order along the keyboard from key 36:
  step i of the morph (or the i-th variation, close to far) on key 36 + i, as recorded, so
  the keyboard walks from A to B. (The keyboard, not the velocity axis: every step stays
  reachable with any controller, and a pitched morph's steps keep their own pitches.)

`pack.json` gets an `instrument` entry: the layout, the pitch method, and per file its key
range, root, velocity range, the pitch found, its confidence, and why it went where it did.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable
from xml.sax.saxutils import quoteattr

import numpy as np

from distill import DistillError
from distill.atomic import atomic_write_text
from distill.pitch import Pitch, detect_pitch

FORMATS = ("sfz", "dspreset")
PITCHED_CONFIDENCE = 0.5
PITCHED_SHARE = 0.6
FIRST_KEY = 36  # C1: General MIDI's bass drum, where kits start
LAYER_DB = 3.0  # sounds sharing a root are velocity layers when their loudness differs this much
RELEASE_DB = 20.0
RELEASE_RANGE = (0.05, 5.0)  # seconds
METHOD = ("YIN (de Cheveigné & Kawahara 2002) on the sustained part, median over voiced frames; "
          "confidence = voiced share × (1 - median aperiodicity)")


@dataclass(frozen=True)
class Sound:
    """One sound of a pack, as the instrument maps it."""

    file: str
    pitch: Pitch
    loudness_lufs: float  # before the pack's loudness matching: how loud the model made it
    centroid_hz: float
    fall_seconds: float  # from its peak until it is 20 dB down


@dataclass(frozen=True)
class Zone:
    """Where a sound plays: keys lo..hi, its root key (keytrack: transposed from it; else as
    recorded on every key of the zone), velocities, its turn in a round robin (0: none)."""

    file: str
    lo: int
    hi: int
    root: int
    keytrack: bool
    vel_lo: int = 1
    vel_hi: int = 127
    turn: int = 0
    turns: int = 0
    why: str = ""


def parse_formats(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """`"sfz,dspreset"` (or a list) as known formats, in order; a clear error for others."""
    if not text:
        return ()
    items = [t.strip().lower().lstrip(".") for t in (text.split(",") if isinstance(text, str) else text)]
    unknown = [t for t in items if t and t not in FORMATS]
    if unknown:
        raise DistillError(f"unknown instrument format {unknown[0]!r}: choose from {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(t for t in items if t))


def analyse(file: str, wave: np.ndarray, sample_rate: int, loudness_lufs: float | None) -> Sound:
    """What the layout needs to know of a pack's sound (its finished wave)."""
    mono = wave.mean(axis=0) if wave.ndim == 2 else wave
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(mono.shape[0]))) ** 2 if mono.size else np.zeros(1)
    freqs = np.fft.rfftfreq(max(mono.shape[0], 1), 1 / sample_rate)[: spectrum.shape[0]]
    centroid = float((freqs * spectrum).sum() / max(spectrum.sum(), 1e-20))
    hop = max(1, round(sample_rate * 0.01))
    frames = mono[: mono.shape[0] // hop * hop].reshape(-1, hop) if mono.shape[0] >= hop else mono[None]
    level = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-20)
    peak = int(level.argmax())
    below = np.nonzero(level[peak:] < level[peak] - RELEASE_DB)[0]
    fall = (below[0] if below.size else level.shape[0] - peak) * hop / sample_rate
    loudness = float(loudness_lufs) if loudness_lufs is not None and math.isfinite(loudness_lufs) else -70.0
    return Sound(file, detect_pitch(wave, sample_rate), loudness, centroid, float(fall))


def layout(sounds: list[Sound], mode: str) -> tuple[str, list[Zone]]:
    """(the layout's name, the zones) for a pack's sounds; `mode`: how they were made."""
    if not sounds:
        raise DistillError("an instrument needs at least one sound")
    if mode in ("morph", "variation"):
        return "sequence", _in_order(sounds, "step" if mode == "morph" else "variation")
    pitched = [s for s in sounds if s.pitch.hz is not None and s.pitch.confidence >= PITCHED_CONFIDENCE]
    if len(pitched) >= PITCHED_SHARE * len(sounds):
        return "pitched", _by_pitch(pitched) + _in_order([s for s in sounds if s not in pitched], "unpitched",
                                                          start=FIRST_KEY, avoid=_keys(pitched))
    order = sorted(sounds, key=lambda s: s.centroid_hz)
    return "kit", _in_order(order, "kit")


def _keys(sounds: list[Sound]) -> set[int]:
    roots = sorted({_root(s) for s in sounds})
    lo, hi = max(0, roots[0] - 12), min(127, roots[-1] + 12)
    return set(range(lo, hi + 1))


def _root(sound: Sound) -> int:
    return int(min(127, max(0, round(sound.pitch.midi or 60))))


def _in_order(sounds: list[Sound], what: str, start: int = FIRST_KEY, avoid: set[int] = frozenset()) -> list[Zone]:
    """One sound per key from `start` up (skipping `avoid`), each as recorded."""
    zones, key = [], start
    for i, sound in enumerate(sounds):
        while key in avoid:
            key += 1
        if key > 127:
            raise DistillError(f"{len(sounds)} sounds do not fit on the keys from {start} up")
        why = {"kit": f"kit: {i + 1}th darkest of {len(sounds)} (centroid {sound.centroid_hz:.0f} Hz)",
               "step": f"morph step {i + 1} of {len(sounds)}, A to B along the keyboard",
               "variation": f"variation {i + 1} of {len(sounds)}, close to far along the keyboard",
               "unpitched": "no pitch found: above the pitched keys"}[what]
        zones.append(Zone(sound.file, key, key, key, keytrack=False, why=why))
        key += 1
    return zones


def _by_pitch(sounds: list[Sound]) -> list[Zone]:
    """Roots at the sounds' pitches, key ranges split between neighbouring roots."""
    groups: dict[int, list[Sound]] = {}
    for sound in sounds:
        groups.setdefault(_root(sound), []).append(sound)
    roots = sorted(groups)
    zones = []
    for i, root in enumerate(roots):
        lo = max(0, root - 12) if i == 0 else (roots[i - 1] + root) // 2 + 1
        hi = min(127, root + 12) if i == len(roots) - 1 else (root + roots[i + 1]) // 2
        members = sorted(groups[root], key=lambda s: s.loudness_lufs)
        spread = members[-1].loudness_lufs - members[0].loudness_lufs
        layered = len(members) > 1 and spread >= LAYER_DB
        for j, sound in enumerate(members):
            cents = 100 * ((sound.pitch.midi or root) - root)
            why = f"pitch {sound.pitch.hz:.1f} Hz ({cents:+.0f} cents from key {root}), confidence {sound.pitch.confidence:.2f}"
            if layered:
                vel_lo, vel_hi = 1 + 127 * j // len(members), 127 * (j + 1) // len(members)
                zones.append(Zone(sound.file, lo, hi, root, True, vel_lo, vel_hi,
                                  why=f"{why}; velocity layer {j + 1} of {len(members)} by loudness"))
            else:
                zones.append(Zone(sound.file, lo, hi, root, True, turn=j + 1 if len(members) > 1 else 0,
                                  turns=len(members) if len(members) > 1 else 0,
                                  why=why + (f"; round robin {j + 1} of {len(members)}" if len(members) > 1 else "")))
    return zones


def release_seconds(sounds: list[Sound]) -> float:
    """The release fade of a pitched instrument: the sounds' median fall of 20 dB."""
    fall = statistics.median(s.fall_seconds for s in sounds)
    return round(float(min(RELEASE_RANGE[1], max(RELEASE_RANGE[0], fall))), 3)


def sfz_text(title: str, kind: str, zones: list[Zone], release: float) -> str:
    one_shot = kind != "pitched"
    lines = [f"// {title}: made by Distill ({kind} layout); sample paths are relative to this file",
             "<global>", "loop_mode=one_shot" if one_shot else f"loop_mode=no_loop ampeg_release={release:g}"]
    for zone in zones:
        opcodes = [f"sample={zone.file}", f"lokey={zone.lo}", f"hikey={zone.hi}", f"pitch_keycenter={zone.root}"]
        if not zone.keytrack:
            opcodes.append("pitch_keytrack=0")
        if (zone.vel_lo, zone.vel_hi) != (1, 127):
            opcodes += [f"lovel={zone.vel_lo}", f"hivel={zone.vel_hi}"]
        if zone.turns:
            opcodes += [f"seq_length={zone.turns}", f"seq_position={zone.turn}"]
        lines += [f"// {zone.why}", "<region> " + " ".join(opcodes)]
    return "\n".join(lines) + "\n"


def dspreset_text(title: str, kind: str, zones: list[Zone], release: float) -> str:
    one_shot = kind != "pitched"
    group = ' trigger="attack"' + (' release="30"' if one_shot else f' release="{release:g}"')
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f"<!-- {title}: made by Distill ({kind} layout) -->",
             '<DecentSampler minVersion="1.0.0">',
             f"  <groups attack=\"0.0\"{group}>"]
    turns = [z for z in zones if z.turns]
    plain = [z for z in zones if not z.turns]
    for members, seq in ((plain, False), (turns, True)):
        if not members:
            continue
        lines.append('    <group seqMode="round_robin">' if seq else "    <group>")
        for zone in members:
            attrs = {"path": zone.file, "rootNote": zone.root, "loNote": zone.lo, "hiNote": zone.hi,
                     "loVel": zone.vel_lo, "hiVel": zone.vel_hi}
            if not zone.keytrack:
                attrs["pitchKeyTrack"] = 0
            if seq:
                attrs["seqPosition"] = zone.turn
            lines.append("      <sample " + " ".join(f"{k}={quoteattr(str(v))}" for k, v in attrs.items()) + " />")
        lines.append("    </group>")
    lines += ["  </groups>", "</DecentSampler>"]
    return "\n".join(lines) + "\n"


def summary(instrument: dict[str, Any]) -> str:
    """One line on a pack's instrument (pack.json's `instrument` entry), for the CLI and the page."""
    keys = instrument["keys"]
    return (f"playable as {' and '.join(instrument['files'])} ({instrument['layout']} layout, keys "
            f"{min(k['lo'] for k in keys)}-{max(k['hi'] for k in keys)}; pack.json says what each key plays and why)")


def write_instruments(folder: Path, title: str, sounds: list[Sound], mode: str, formats: tuple[str, ...]
                      ) -> dict[str, Any]:
    """The instrument files in `folder` (a pack being built), and pack.json's `instrument` entry."""
    kind, zones = layout(sounds, mode)
    release = release_seconds(sounds)
    by_file = {s.file: s for s in sounds}
    written = []
    for fmt in formats:
        text = (sfz_text if fmt == "sfz" else dspreset_text)(title, kind, zones, release)
        path = folder / f"{title}.{fmt}"
        atomic_write_text(path, text)
        written.append(path.name)
    return {"files": written, "layout": kind, "pitch_method": METHOD,
            "release_seconds": release if kind == "pitched" else None,
            "keys": [{**asdict(z), "pitch_hz": None if by_file[z.file].pitch.hz is None
                      else round(by_file[z.file].pitch.hz, 2),
                      "confidence": by_file[z.file].pitch.confidence} for z in zones]}
