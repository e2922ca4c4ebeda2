"""One audio file: validated without loading it whole, measured, and given a verdict.

`check_clip` streams the file block by block and counts peak, clipping, silence and
non-finite samples on the way. Refused: not audio / unreadable / truncated, empty, digital
silence (see `digital_silence_dbfs`), non-finite samples, longer than MAX_CLIP_SECONDS,
absurd sample rates. Kept with a warning: very quiet (peak below QUIET_DBFS: real audio,
trained at its own level), shorter than one training segment (it will be padded), heavy
clipping, mostly silence. The limits are read at call time, so tests can lower them.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from distill.audio import AudioSettings
from distill.model import PRESETS
from distill.workspace import sanitize_filename

MAX_CLIP_SECONDS = 30 * 60  # longer files are refused (read at call time: tests lower it)
MIN_SAMPLE_RATE = 4000
# A quiet recording is still a recording: only a file no microphone could have made (every
# sample zero, or a peak under the format's own resolution) is refused as silent.
FLOAT_SILENCE_DBFS = -120.0  # float and compressed formats: below any real recording's noise floor
_PCM_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
QUIET_DBFS = -60.0  # a peak below this is kept, with a warning that says how quiet
# A 1024-frame window whose RMS is this far below the clip's own peak is silence: relative, so
# a quiet clip is not "all silence" just for being quiet.
SILENCE_BELOW_PEAK_DB = 60.0
CLIPPING_LEVEL = 0.999  # |x| at or above this counts as a clipped sample
HEAVY_CLIPPING_FRACTION = 0.001  # warn when 0.1% of samples or more are clipped
MOSTLY_SILENT_FRACTION = 0.8  # warn when 80% or more of a clip is silence
MIN_TRAINING_SECONDS = 30.0  # less usable audio than this gets a warning
# The shortest training segment any preset uses (tiny: 32 frames at hop 256, 22050 Hz ≈ 0.37 s).
DEFAULT_SEGMENT_SECONDS = AudioSettings().frames_to_seconds(min(p.segment_frames for p in PRESETS.values()))
READ_BLOCK_FRAMES = 65536
SILENCE_WINDOW_FRAMES = 1024  # divides READ_BLOCK_FRAMES, so windows never straddle blocks

# SKIPPED: not looked at, for its name (see distill.sources); DUPLICATE: same bytes as a clip already in.
OK, WARNING, REJECTED, DUPLICATE, SKIPPED = "ok", "warning", "rejected", "duplicate", "skipped"


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.2f}%" if fraction < 0.001 else f"{100 * fraction:.1f}%"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# --- one clip ------------------------------------------------------------------------------

@dataclass
class Clip:
    """One file: what it is, what we measured, and whether it is fit to train on."""

    name: str  # the file name inside clips/ (for a refused file: the name it would have had)
    status: str  # "ok" | "warning" | "rejected"
    reason: str = ""  # why not ok; several reasons are joined with "; "
    duration: float = 0.0  # seconds
    sample_rate: int = 0
    channels: int = 0
    frames: int = 0
    format: str = ""  # soundfile's names, e.g. "WAV" / "PCM_24"
    subtype: str = ""
    sha256: str = ""  # of the file's bytes
    size_bytes: int = 0
    peak: float = 0.0  # max |sample| over all channels, full scale = 1.0
    clipping_fraction: float = 0.0  # samples at or above CLIPPING_LEVEL / all samples
    silent_fraction: float = 0.0  # 1024-frame windows SILENCE_BELOW_PEAK_DB below the peak / all windows
    source: str = ""  # the original file name
    added: str = ""  # ISO time of import
    mtime_ns: int = 0  # of the copy in clips/: a changed file is re-hashed before training

    @property
    def usable(self) -> bool:
        return self.status in (OK, WARNING)

    @property
    def peak_dbfs(self) -> float:
        return 20 * np.log10(self.peak) if self.peak > 0 else float("-inf")

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["peak_dbfs"] = round(self.peak_dbfs, 2) if self.peak > 0 else None
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Clip":
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})


def _reject(clip: Clip, reason: str) -> Clip:
    clip.status, clip.reason = REJECTED, reason
    return clip


def _error_text(exc: BaseException) -> str:
    return str(getattr(exc, "error_string", "") or exc).strip().rstrip(".")


def digital_silence_dbfs(subtype: str) -> float:
    """The peak (dBFS) below which a file of this soundfile `subtype` holds no sound at all:
    one step (LSB) of an integer PCM format (-90.3 dBFS for 16-bit: so an integer file is
    refused only when every sample is zero), FLOAT_SILENCE_DBFS for float and compressed ones."""
    bits = _PCM_BITS.get(subtype)
    return 20 * np.log10(2.0 ** -(bits - 1)) if bits else FLOAT_SILENCE_DBFS


@dataclass
class _Scan:
    frames: int = 0
    peak: float = 0.0
    clipped: int = 0
    nonfinite: int = 0
    window_rms: list[np.ndarray] = field(default_factory=list)  # per block: ~0.1% of the samples
    error: str = ""

    def silent_fraction(self) -> float:
        """Windows more than SILENCE_BELOW_PEAK_DB below the peak, of all windows."""
        if not self.window_rms:
            return 0.0
        rms = np.concatenate(self.window_rms)
        return float(np.count_nonzero(rms < self.peak * 10 ** (-SILENCE_BELOW_PEAK_DB / 20)) / len(rms))


def _scan(sound: sf.SoundFile, limit_frames: int) -> _Scan:
    """Stream the file once, block by block, counting what check_clip needs."""
    scan = _Scan()
    try:
        while scan.frames <= limit_frames:
            block = sound.read(READ_BLOCK_FRAMES, dtype="float64", always_2d=True)
            if not len(block):
                break
            finite = np.isfinite(block)
            if not finite.all():
                scan.nonfinite += int(block.size - finite.sum())
                block = np.where(finite, block, 0.0)
            magnitude = np.abs(block)
            scan.peak = max(scan.peak, float(magnitude.max()))
            scan.clipped += int(np.count_nonzero(magnitude >= CLIPPING_LEVEL))
            power = np.mean(block * block, axis=1)
            starts = np.arange(0, len(power), SILENCE_WINDOW_FRAMES)
            counts = np.diff(np.append(starts, len(power)))
            scan.window_rms.append(np.sqrt(np.add.reduceat(power, starts) / counts).astype(np.float32))
            scan.frames += len(block)
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        scan.error = _error_text(exc)
    return scan


def _wav_data_shortfall(path: Path) -> tuple[int, int] | None:
    """(bytes the WAV header promises, bytes present) when the data chunk is cut short.
    libsndfile quietly shrinks a truncated WAV to what is there, so look ourselves."""
    try:
        return _read_wav_chunks(path)
    except (OSError, struct.error):
        return None


def _read_wav_chunks(path: Path) -> tuple[int, int] | None:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        endian = "<" if head[:4] == b"RIFF" else ">"
        position = 12
        while position + 8 <= size:
            handle.seek(position)
            chunk_id, chunk_size = struct.unpack(endian + "4sI", handle.read(8))
            if chunk_id == b"data":
                available = size - position - 8
                if chunk_size in (0, 0xFFFFFFFF):  # streaming writers leave the size open
                    return None
                return (chunk_size, available) if chunk_size > available else None
            position += 8 + chunk_size + (chunk_size & 1)
    return None


_SAMPLE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
                 "ULAW": 1, "ALAW": 1}


def _span(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def _too_long(seconds: float, at_least: bool = False) -> str:
    return (f"too long: {'at least ' if at_least else ''}{_span(seconds)} (the limit is "
            f"{_span(MAX_CLIP_SECONDS)}; cut it into shorter clips)")


def check_clip(path: str | Path, segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
               name: str | None = None) -> Clip:
    """Validate one file without loading it whole. Never raises for a bad file: the verdict
    is in `status` and `reason`. `name` defaults to the sanitised file name."""
    path = Path(path)
    clip = Clip(name=name or sanitize_filename(path.name, "clip"), status=OK, source=path.name)
    try:
        clip.size_bytes = path.stat().st_size
        sound = sf.SoundFile(str(path))
    except (sf.SoundFileError, RuntimeError, OSError, TypeError, ValueError) as exc:
        return _reject(clip, f"not audio, or unreadable ({_error_text(exc)})")
    with sound:
        clip.sample_rate, clip.channels = int(sound.samplerate), int(sound.channels)
        clip.format, clip.subtype = sound.format, sound.subtype
        declared = int(sound.frames) if 0 <= sound.frames < 2 ** 62 else -1
        if clip.sample_rate < MIN_SAMPLE_RATE:
            return _reject(clip, f"sample rate {clip.sample_rate} Hz is too low to use "
                                 f"(need at least {MIN_SAMPLE_RATE} Hz)")
        limit = int(MAX_CLIP_SECONDS * clip.sample_rate)
        if declared > limit:
            clip.frames, clip.duration = declared, declared / clip.sample_rate
            return _reject(clip, _too_long(clip.duration))
        scan = _scan(sound, limit)

    clip.frames = scan.frames
    clip.duration = scan.frames / clip.sample_rate
    clip.peak = scan.peak
    clip.clipping_fraction = scan.clipped / max(1, scan.frames * clip.channels)
    clip.silent_fraction = scan.silent_fraction()
    if scan.error:
        return _reject(clip, f"truncated or corrupt: decoding failed after {clip.duration:.2f} s ({scan.error})")
    if declared > scan.frames and (clip.format in ("WAV", "WAVEX", "FLAC", "AIFF")
                                   or declared - scan.frames > 4 * 1152):  # MP3 counts are fuzzy
        return _reject(clip, f"truncated: the header promises {declared / clip.sample_rate:.2f} s, "
                             f"only {clip.duration:.2f} s could be read")
    if clip.format in ("WAV", "WAVEX"):
        shortfall = _wav_data_shortfall(path)
        if shortfall:
            promised, present = shortfall
            frame_bytes = _SAMPLE_BYTES.get(clip.subtype, 0) * clip.channels
            promised_seconds = f" ({promised / (frame_bytes * clip.sample_rate):.2f} s)" if frame_bytes else ""
            return _reject(clip, f"truncated: the WAV header promises {promised} bytes of audio"
                                 f"{promised_seconds}, the file holds {present} ({clip.duration:.2f} s)")
    if scan.frames == 0:
        return _reject(clip, "empty: the file holds no audio frames")
    if scan.frames > limit:
        return _reject(clip, _too_long(clip.duration, at_least=True))
    if scan.nonfinite:
        verb = "is" if scan.nonfinite == 1 else "are"
        return _reject(clip, f"{_plural(scan.nonfinite, 'sample')} {verb} not a finite number (NaN or infinity)")
    if scan.peak <= 0:
        return _reject(clip, "silent: every sample is zero")
    floor = digital_silence_dbfs(clip.subtype)
    if clip.peak_dbfs < floor:
        return _reject(clip, f"silent: peak {clip.peak_dbfs:.1f} dBFS is below the {floor:.1f} dBFS floor of "
                             f"{clip.subtype} audio: there is no sound in it")

    warnings = []
    if clip.peak_dbfs < QUIET_DBFS:
        warnings.append(f"very quiet: peak {clip.peak_dbfs:.1f} dBFS (trained at its own level)")
    if clip.duration < segment_seconds:
        warnings.append(f"short: {clip.duration:.2f} s is less than one training segment "
                        f"({segment_seconds:.2f} s); it will be padded with silence")
    if clip.clipping_fraction >= HEAVY_CLIPPING_FRACTION:
        warnings.append(f"clipping: {_percent(clip.clipping_fraction)} of samples at full scale")
    if clip.silent_fraction >= MOSTLY_SILENT_FRACTION:
        warnings.append(f"mostly silence: {_percent(clip.silent_fraction)} more than "
                        f"{SILENCE_BELOW_PEAK_DB:g} dB below its peak")
    if warnings:
        clip.status, clip.reason = WARNING, "; ".join(warnings)
    return clip
