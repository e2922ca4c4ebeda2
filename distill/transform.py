"""Any audio through a model: the user's own clips, at their own length and level.

`transform_wave` is the one way audio goes through a model: the CLI, the web app, the
training previews' reconstruction pairs and the benchmarks all hear it. log-mel →
`ConvVAE.reconstruct` (the latent runs along time, so a clip of any length goes through, in
chunks that equal one pass) → synthesis → exactly as many samples as went in. No peak
normalisation: the model is trained to keep its input's level, and normalising each output
would hide it when it does not.

`transform_files` does that to files, one WAV per input, never overwriting, never inside a
dataset folder. A file the model's output would clip is turned down to just under full
scale, and the result says by how much. One bad file in a batch is reported on its own and
does not stop the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import soundfile as sf
import torch
import torch.nn.functional as F

from distill import DistillError
from distill.atomic import WriteError, ensure_space
from distill.audio import MAX_SECONDS, AudioSettings, OutputFormat, features, levels, read_audio, write_sound
from distill.clips import check_clip
from distill.model import ConvVAE
from distill.modelfile import OpenModel, open_model
from distill.synthesis import Synthesizer, fit_length
from distill.trajectories import stored_bank
from distill.transfer import FramePool, frame_pool, transfer
from distill.workspace import Workspace, sanitize_filename, unique_path, wav_name

# An output louder than full scale is turned down to this peak: just under 0 dBFS.
PEAK_CEILING_DBFS = -0.1


@dataclass(frozen=True)
class TransformResult:
    """One input's outcome. `path` is None exactly when `error` says why it failed."""

    input: Path
    path: Path | None = None  # the WAV written
    seconds: float = 0.0
    input_rms_dbfs: float = -math.inf  # of the input, mixed to mono at the model's sample rate
    output_rms_dbfs: float = -math.inf  # of the file written
    output_peak_dbfs: float = -math.inf
    # How far the model's output peaked above 0 dBFS, and so how much it was turned down; 0: it fitted.
    clipped_db: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def note(self) -> str:
        """What a person should know about the file beyond its levels ('' when nothing)."""
        if self.error:
            return self.error
        if self.clipped_db > 0:
            return (f"turned down {self.clipped_db:.1f} dB: the model's output peaked at "
                    f"+{self.clipped_db:.1f} dBFS, above full scale")
        return ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-plain (paths as strings, silence's -inf as None)."""
        def db(value: float) -> float | None:
            return round(value, 2) if math.isfinite(value) else None

        return {"input": str(self.input), "path": None if self.path is None else str(self.path),
                "seconds": self.seconds, "input_rms_dbfs": db(self.input_rms_dbfs),
                "output_rms_dbfs": db(self.output_rms_dbfs), "output_peak_dbfs": db(self.output_peak_dbfs),
                "clipped_db": round(self.clipped_db, 2), "note": self.note, "error": self.error}


# Silence put before a clip for its analysis (mel frames), cut off afterwards: a clip that is
# loud from its first sample (a pluck cut at its attack) otherwise has its loudest frame at the
# edge, half of whose window the centred STFT fills with a reflection, and came back 2.4 dB quiet.
LEAD_IN_HOPS = 8


def transform_wave(model: ConvVAE, wave: torch.Tensor, settings: AudioSettings,
                   synthesize: Callable[[torch.Tensor], torch.Tensor], strength: float = 0.0,
                   pool: FramePool | None = None) -> torch.Tensor:
    """(samples,) or (2, samples) audio at `settings.sample_rate` → audio in the model's channels
    ((samples,) mono, (2, samples) stereo): the same clip through the model's latent and back,
    at the level the model produced (no normalisation). `synthesize` turns features into audio
    (a `distill.synthesis.Synthesizer`). With `strength` > 0 its latent frames move toward the
    model's own clips' (`pool`: `distill.transfer.frame_pool`), keeping its loudness envelope."""
    if wave.dim() not in (1, 2) or wave.shape[-1] == 0:
        raise DistillError(f"transform takes a non-empty waveform (samples,) or (channels, samples), "
                           f"got shape {tuple(wave.shape)}")
    device = next(model.parameters()).device
    samples = wave.shape[-1]
    # The centred STFT reflects half a window at each end; a clip shorter than that (a click)
    # is padded with silence for the analysis and cut back afterwards.
    lead = LEAD_IN_HOPS * settings.hop_length
    padded = F.pad(wave.float(), (lead, max(0, settings.n_fft - samples)))
    given = features(padded.to(device), settings)
    if strength > 0:
        if pool is None:
            raise DistillError("a transfer needs the model's clips (distill.transfer.frame_pool)")
        mel = transfer(model, given, settings, pool, strength)
    else:
        mel = model.reconstruct(given)
    return fit_length(synthesize(mel).float().cpu()[..., lead:], samples)


def transformed_dir(ws: Workspace, model_name: str) -> Path:
    return ws.transformed_dir / sanitize_filename(model_name, "model")


def output_name(input_path: Path, model_name: str, strength: float = 0.0) -> str:
    """`<input stem>-<model>.wav` (`…-strength0.5.wav` for a transfer): which clip, through
    which model (named as generate names)."""
    parts = [sanitize_filename(input_path.stem, "clip"), sanitize_filename(model_name, "model")]
    return wav_name(*parts, *([f"strength{strength:g}"] if strength > 0 else []))


def read_input(path: str | Path, sample_rate: int, channels: int = 1) -> torch.Tensor:
    """An input file checked as the dataset checks its clips (readable, not empty, not silent,
    finite), at most MAX_SECONDS long, decoded at `sample_rate` in `channels` (`read_audio`).
    Every refusal is a
    DistillError that names the file."""
    path = Path(path)
    if path.is_dir():
        raise DistillError(f"{path.name}: is a folder; name the audio files in it")
    if not path.is_file():
        raise DistillError(f"{path.name}: no such file ({path})")
    _refuse_if_too_long(path, _declared_seconds(path))  # before the scan: the dataset's own limit is longer
    clip = check_clip(path)
    if not clip.usable:
        raise DistillError(f"{path.name}: {clip.reason}")
    _refuse_if_too_long(path, clip.duration)
    return read_audio(path, sample_rate, channels)


def _declared_seconds(path: Path) -> float:
    """The length the file's header declares (0 when it declares none or cannot be read:
    `check_clip` then says what is wrong, and measures the length itself)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return 0.0
    return info.frames / info.samplerate if 0 < info.frames < 2**62 and info.samplerate > 0 else 0.0


def _refuse_if_too_long(path: Path, seconds: float) -> None:
    if seconds > MAX_SECONDS:
        raise DistillError(f"{path.name}: too long ({seconds:.0f} s): a transform takes at most "
                           f"{MAX_SECONDS:g} s at a time; cut it into shorter pieces")


def _fit_under_full_scale(wave: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(wave, clipped_db): turned down to PEAK_CEILING_DBFS when its peak is above full scale."""
    peak = float(wave.abs().max()) if wave.numel() else 0.0
    if peak <= 1.0:
        return wave, 0.0
    return wave * (10 ** (PEAK_CEILING_DBFS / 20) / peak), 20 * math.log10(peak)


def _transform_file(source: Path, opened: OpenModel, synthesize: Synthesizer, folder: Path, fmt: OutputFormat,
                    strength: float, pool: FramePool | None) -> TransformResult:
    settings = opened.file.audio_settings
    wave = read_input(source, settings.sample_rate, settings.channels)
    target = unique_path(folder, fmt.file_name(output_name(source, opened.path.stem, strength)))
    ensure_space(folder, fmt.size_bytes(wave.shape[-1] / settings.sample_rate, settings.sample_rate, settings.channels),
                 target.name)
    out, clipped_db = _fit_under_full_scale(transform_wave(opened.network, wave, settings, synthesize, strength, pool))
    write_sound(target, out.numpy(), settings.sample_rate, fmt)
    peak, rms = levels(out)
    return TransformResult(input=source, path=target, seconds=round(wave.shape[-1] / settings.sample_rate, 3),
                           input_rms_dbfs=levels(wave)[1], output_rms_dbfs=rms, output_peak_dbfs=peak,
                           clipped_db=clipped_db)


def transform_files(ws: Workspace, model: str | Path, inputs: Iterable[str | Path], out_dir: str | Path | None = None,
                    griffin_lim: bool = False, device: str = "auto",
                    fmt: OutputFormat = OutputFormat("wav", 16), strength: float = 0.0) -> list[TransformResult]:
    """Put each input file through `model` (a catalog name or a path) and write one file per
    input in `fmt` (default 16-bit WAV at the model's rate; a stereo model's files are stereo),
    `<input stem>-<model>.wav`, to `out_dir` (default
    `<workspace>/transformed/<model>/`), in the order given. Anything the dataset reads is
    accepted. `strength` > 0 plays each input with the model's own clips (`distill.transfer`).
    A problem with the model or the folder (a full disk) raises; a problem with one input is
    that input's `error`, and the others go on."""
    sources = [Path(p).expanduser() for p in inputs]
    if not sources:
        raise DistillError("nothing to transform: name at least one audio file")
    if not 0.0 <= strength <= 1.0:
        raise DistillError(f"transfer strength must be between 0 and 1, not {strength:g}")
    opened = open_model(ws, model, device)
    folder = ws.output_dir(out_dir if out_dir else transformed_dir(ws, opened.path.stem))
    synthesize = Synthesizer.for_model(opened.file, opened.device, griffin_lim).load()
    pool = frame_pool(stored_bank(opened.file)).to(opened.device) if strength > 0 else None
    results = []
    for source in sources:
        try:
            results.append(_transform_file(source, opened, synthesize, folder, fmt, strength, pool))
        except WriteError:  # the folder, not the input: every input after it would fail the same way
            raise
        except DistillError as exc:
            results.append(TransformResult(input=source, error=str(exc)))
    return results
