"""The pretraining corpus of the shipped vocoder, rendered here from Debian packages only.

A vocoder pretrained on one user's clips learns those clips; one pretrained on a broad corpus
learns the sound of instruments. Nothing can be downloaded, so the corpus is made on the spot:
the sampled Fluid R3 GM SoundFont (package `fluid-soundfont-gm`, MIT licence) played through
`fluidsynth` over many programs, pitches and velocities, its percussion kits, and sounds
synthesised here (noise bursts, sweeps, chords) for what no instrument plays.

Kept out, on purpose:
- GM programs 0-7 (the pianos) and every Debian sound-theme package: they are held for
  independent evaluation of the project;
- the programs and the drum kit the development corpora (`shared/corpora/`) were rendered
  from (celesta 8, vibraphone 11, marimba 12, nylon guitar 24, harp 46; the Standard kit),
  so the vocoder benchmark's held-out clips stay unheard.

Each note is one mono float WAV (the mid of fluidsynth's stereo: the vocoder voices the mid,
`distill.stereo` makes the side) at the vocoder's rate, its tail trimmed at -60 dB under its
peak; `corpus.json` lists what each file is. The same packages give the same files.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from distill import DistillError
from distill.audio import AudioSettings, sound_end

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
PACKAGES = "fluidsynth fluid-soundfont-gm"
HELD_OUT_PROGRAMS = frozenset(range(8)) | {8, 11, 12, 24, 46}  # pianos (evaluation) + the dev corpora's
# Melodic GM programs by family, each with the MIDI range it sounds well in.
FAMILIES: dict[str, tuple[tuple[int, ...], int, int]] = {
    "chromatic percussion": ((9, 10, 13, 14, 15), 55, 96),
    "organ": ((16, 17, 18, 19, 20, 21, 22, 23), 36, 84),
    "guitar": ((25, 26, 27, 28, 29, 30, 31), 40, 84),
    "bass": ((32, 33, 34, 35, 36, 37, 38, 39), 28, 60),
    "strings": ((40, 41, 42, 43, 44, 45, 47, 48, 49, 50, 51), 36, 96),
    "voices": ((52, 53, 54, 55), 45, 81),
    "brass": ((56, 57, 58, 59, 60, 61, 62, 63), 40, 82),
    "reeds": ((64, 65, 66, 67, 68, 69, 70, 71), 45, 88),
    "pipes": ((72, 73, 74, 75, 76, 77, 78, 79), 60, 96),
    "synth lead": ((80, 81, 82, 83, 84, 85, 86, 87), 40, 88),
    "synth pad": ((88, 89, 90, 91, 92, 93, 94, 95), 40, 84),
    "ethnic": ((104, 105, 106, 107, 108, 109, 110, 111), 45, 88),
    "percussive": ((112, 113, 114, 115, 116, 117, 118), 40, 84),
}
# GM percussion kits other than Standard (program 0, the dev corpus's): Room, Power,
# Electronic, TR-808, Jazz, Brush, Orchestra.
KITS = (8, 16, 24, 25, 32, 40, 48)
DRUM_NOTES = tuple(range(35, 82))
TAIL_DB = -60.0
GAP_SECONDS = 3.0  # between two notes of one render: room for a release and a reverb tail


@dataclass(frozen=True)
class Note:
    """One sound of the corpus: a GM program (or a kit, with `drum`) at a pitch and velocity."""

    program: int
    pitch: int
    velocity: int
    hold: float  # seconds the key is held
    drum: bool = False
    reverb: int = 0  # CC91, 0-127

    @property
    def name(self) -> str:
        kind = f"kit{self.program:03d}" if self.drum else f"gm{self.program:03d}"
        return f"{kind}-p{self.pitch:03d}-v{self.velocity:03d}-r{self.reverb:03d}"


def corpus_notes(pitch_step: int = 5, velocities: tuple[int, ...] = (48, 100)) -> list[Note]:
    """Every note the corpus plays: each melodic program over its range (every `pitch_step`
    semitones, offset per program so the programs together cover every pitch class), at each
    velocity, holds from short to long; each kit's drums at each velocity. Half the notes
    carry some reverb."""
    notes = []
    for family, (programs, low, high) in FAMILIES.items():
        for program in programs:
            if program in HELD_OUT_PROGRAMS:
                raise DistillError(f"GM program {program} is held out of the vocoder corpus")
            for i, pitch in enumerate(range(low + program % pitch_step, high + 1, pitch_step)):
                for j, velocity in enumerate(velocities):
                    hold = (0.25, 0.6, 1.2, 2.0)[(i + j + program) % 4]
                    notes.append(Note(program, pitch, velocity, hold, reverb=40 * ((i + j) % 2)))
    for kit in KITS:
        for i, pitch in enumerate(DRUM_NOTES):
            for j, velocity in enumerate(velocities):
                notes.append(Note(kit, pitch, velocity, 0.2, drum=True, reverb=40 * ((i + j) % 2)))
    return notes


# -- MIDI -------------------------------------------------------------------------------------

TICKS = 480  # per quarter note, at 120 bpm: 960 ticks a second


def _varlen(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def midi_file(notes: list[Note]) -> tuple[bytes, list[float]]:
    """(a type-0 MIDI file playing `notes` one after another, each note's start in seconds).
    Each note sets its own program and reverb; a gap of GAP_SECONDS follows its release."""
    events, starts, clock = bytearray(), [], 0.0
    pending = 0  # ticks since the last event
    for note in notes:
        channel = 9 if note.drum else 0
        starts.append(clock)
        for message in (bytes([0xC0 | channel, note.program]), bytes([0xB0 | channel, 91, note.reverb]),
                        bytes([0xB0 | channel, 93, 0])):
            events += _varlen(pending) + message
            pending = 0
        events += _varlen(0) + bytes([0x90 | channel, note.pitch, note.velocity])
        events += _varlen(round(note.hold * 2 * TICKS)) + bytes([0x80 | channel, note.pitch, 0])
        pending = round(GAP_SECONDS * 2 * TICKS)
        clock += note.hold + GAP_SECONDS
    events += _varlen(pending) + b"\xFF\x2F\x00"
    tempo = _varlen(0) + b"\xFF\x51\x03" + (500_000).to_bytes(3, "big")
    track = tempo + bytes(events)
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS) + b"MTrk" + struct.pack(">I", len(track)) + track,
            starts)


def render_notes(notes: list[Note], sample_rate: int, soundfont: Path = SOUNDFONT) -> list[np.ndarray]:
    """Each note as a mono float32 wave (one fluidsynth run for the lot), tail-trimmed."""
    if shutil.which("fluidsynth") is None or not soundfont.is_file():
        raise DistillError(f"rendering the vocoder corpus needs fluidsynth and {soundfont} "
                           f"(apt-get install {PACKAGES})")
    data, starts = midi_file(notes)
    with tempfile.TemporaryDirectory() as tmp:
        mid, raw = Path(tmp) / "notes.mid", Path(tmp) / "notes.raw"
        mid.write_bytes(data)
        subprocess.run(["fluidsynth", "-n", "-i", "-q", "-F", str(raw), "-T", "raw", "-O", "float", "-E", "little",
                        "-r", str(sample_rate), "-g", "1.0", str(soundfont), str(mid)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stereo = np.fromfile(raw, dtype="<f4").reshape(-1, 2)
    mono = stereo.mean(axis=1)
    waves = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else mono.shape[0] / sample_rate
        waves.append(trim_tail(mono[round(start * sample_rate):round(end * sample_rate)]))
    return waves


def trim_tail(wave: np.ndarray, tail_db: float = TAIL_DB) -> np.ndarray:
    """`wave` up to its last sample within `tail_db` of its peak (empty if silent)."""
    return wave[:sound_end(wave, tail_db)].astype(np.float32)


# -- synthesised ------------------------------------------------------------------------------

def synthesised(sample_rate: int, count: int = 120, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """(name, wave) for sounds no instrument plays: noise bursts (white to brown, decaying),
    exponential sweeps and chords of harmonic tones, at levels from -40 to -3 dBFS peak."""
    rng = np.random.default_rng(seed)
    sounds = []
    for i in range(count):
        seconds = float(rng.uniform(0.3, 2.5))
        t = np.arange(round(seconds * sample_rate)) / sample_rate
        kind = ("noise", "sweep", "chord")[i % 3]
        if kind == "noise":
            white = rng.standard_normal(t.shape[0])
            tilt = float(rng.uniform(-2, 0))  # spectral slope: 0 white, -1 pink, -2 brown
            spectrum = np.fft.rfft(white)
            spectrum *= np.maximum(np.arange(spectrum.shape[0]), 1) ** (tilt / 2)
            wave = np.fft.irfft(spectrum, n=t.shape[0]) * np.exp(-t * rng.uniform(2, 20))
        elif kind == "sweep":
            f0, f1 = sorted(rng.uniform(60, 8000, 2))[:: 1 if rng.random() < 0.5 else -1]
            phase = 2 * np.pi * f0 * seconds / math.log(f1 / f0) * ((f1 / f0) ** (t / seconds) - 1)
            wave = np.sin(phase) * np.minimum(1, t * 50) * np.minimum(1, (seconds - t) * 20)
        else:
            root = float(rng.uniform(80, 600))
            wave = np.zeros_like(t)
            for ratio in rng.choice([1, 1.25, 1.5, 2, 2.5, 3], size=3, replace=False):
                for harmonic in range(1, 12):
                    f = root * ratio * harmonic
                    if f < sample_rate / 2:
                        wave += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) / harmonic ** rng.uniform(1, 2)
            wave *= np.exp(-t * rng.uniform(0.5, 6)) * np.minimum(1, t * 200)
        wave = wave / (np.abs(wave).max() + 1e-12) * 10 ** (rng.uniform(-40, -3) / 20)
        sounds.append((f"synth-{kind}-{i:03d}", wave.astype(np.float32)))
    return sounds


# -- the corpus -------------------------------------------------------------------------------

def write_corpus(folder: str | Path, sample_rate: int = AudioSettings().sample_rate, notes: list[Note] | None = None,
                 synth_count: int = 120, progress=None) -> Path:
    """Render the corpus into `folder` (a WAV per sound and corpus.json); returns corpus.json.
    Programs are rendered one at a time (one fluidsynth run each); `progress(done, total)`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    notes = corpus_notes() if notes is None else notes
    groups: dict[tuple[bool, int], list[Note]] = {}
    for note in notes:
        groups.setdefault((note.drum, note.program), []).append(note)
    entries = []
    for done, group in enumerate(groups.values()):
        for note, wave in zip(group, render_notes(group, sample_rate)):
            if wave.size:
                sf.write(folder / f"{note.name}.wav", wave, sample_rate, subtype="FLOAT")
                entries.append({"file": f"{note.name}.wav", **asdict(note), "seconds": round(wave.size / sample_rate, 3)})
        if progress:
            progress(done + 1, len(groups))
    for name, wave in synthesised(sample_rate, synth_count):
        sf.write(folder / f"{name}.wav", wave, sample_rate, subtype="FLOAT")
        entries.append({"file": f"{name}.wav", "synthesised": True, "seconds": round(wave.size / sample_rate, 3)})
    manifest = folder / "corpus.json"
    manifest.write_text(json.dumps({"sample_rate": sample_rate, "soundfont": str(SOUNDFONT),
                                    "held_out_programs": sorted(HELD_OUT_PROGRAMS), "files": entries}, indent=1))
    return manifest
