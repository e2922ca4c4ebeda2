"""How far a sound is from a reference, by the numbers audio papers report.

The definitions follow the reference scorer kept beside the project
(`shared/quality/eval_audio.py`), so figures can be cross-checked:

- `mrstft`: multi-resolution STFT distance (Parallel WaveGAN convention): FFT 512/1024/2048,
  hop FFT/4, periodic Hann, unnormalised; magnitude sqrt(max(|X|², 1e-7)); spectral
  convergence ‖|Y|−|X|‖/‖|Y|‖ plus mean |log|Y| − log|X||, each averaged over resolutions.
- `lsd_active`: log-spectral distance in dB (FFT 2048, hop 512, scaled by 1/Σwindow, power
  floored at −100 dB), averaged over the frames within 60 dB of the reference's loudest:
  silence must not flatter a quiet estimate.
- `mel_distance`: multi-resolution log-mel L1, as vocoder papers report "mel distance"
  (HiFi-GAN's log-mel L1; DAC/BigVGAN over several resolutions): FFT 512/1024/2048 with
  40/80/128 Slaney mel bands over 0..Nyquist, hop FFT/4, natural log of the mel-weighted
  magnitude floored at 1e-5, mean |difference| averaged over resolutions. It compares the
  spectral envelope and ignores phase, so it fits noise (drums), where MR-STFT's spectral
  convergence mostly measures a phase no renderer can know.
- `level_error_db`: RMS level of the estimate minus that of the reference. Nothing is
  normalised anywhere: a level a system loses is an error here.

Full band and stereo (`full_band_distance`, as `eval_audio.py --sr 44100 --mr-sizes
512,1024,2048,4096 --high-band 11000 --stereo` scores): MR-STFT over FFT 512 to 4096; `lsd_high`,
LSD over active frames counting only the bins from 11 kHz to 20 kHz, both spectra floored 80 dB
under the reference's loudest bin there (what a band-limited system loses); and the stereo
image, `stereo_image`: side-to-mid energy in dB (floored at −60: a mono sound reads −60) and
the left/right correlation (1 for mono), compared estimate minus reference. Every other figure
is of the channels' mean (the mono downmix).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torchaudio

from distill.audio import levels, mid_side

MR_SIZES = (512, 1024, 2048)
FULL_BAND_MR_SIZES = (512, 1024, 2048, 4096)
HIGH_BAND_HZ, HIGH_BAND_TOP_HZ, HIGH_BAND_RANGE_DB = 11_000.0, 20_000.0, 80.0
SIDE_FLOOR_DB = -60.0
LSD_FFT, LSD_HOP, LSD_FLOOR_DB, ACTIVE_DB = 2048, 512, -100.0, 60.0


def _stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, dtype=torch.float64)
    x = x.double()
    if x.shape[-1] <= n_fft // 2:  # reflect padding needs more samples than half a window
        x = torch.nn.functional.pad(x, (0, n_fft // 2 + 1 - x.shape[-1]))
    return torch.stft(x, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)


def spectral_distances(reference: torch.Tensor, estimate: torch.Tensor,
                       sizes: tuple[int, ...] = MR_SIZES) -> tuple[float, float]:
    """(spectral convergence, log-magnitude L1), each averaged over FFT `sizes` (hop FFT/4)."""
    convergence = log_magnitude = 0.0
    for n in sizes:
        ref = _stft(reference, n, n // 4).abs().pow(2).clamp(min=1e-7).sqrt()
        est = _stft(estimate, n, n // 4).abs().pow(2).clamp(min=1e-7).sqrt()
        convergence += float(torch.linalg.vector_norm(ref - est) / torch.linalg.vector_norm(ref))
        log_magnitude += float((ref.log() - est.log()).abs().mean())
    return convergence / len(sizes), log_magnitude / len(sizes)


def lsd_powers(reference: torch.Tensor, estimate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(bins, frames) power spectra of both (FFT 2048, hop 512, scaled by 1/Σwindow): what every
    LSD figure is computed from."""
    window_sum = float(torch.hann_window(LSD_FFT, dtype=torch.float64).sum())
    return tuple((_stft(x, LSD_FFT, LSD_HOP).abs() / window_sum).pow(2) for x in (reference, estimate))


def _active_lsd(ref: torch.Tensor, est: torch.Tensor, rows: torch.Tensor | slice, floor: float) -> float:
    """LSD in dB over the `rows` bins, both floored at `floor`, averaged over the reference's
    frames within ACTIVE_DB of its loudest (over all bins)."""
    per_frame = (10 * ref[rows].clamp(min=floor).log10() - 10 * est[rows].clamp(min=floor).log10()).pow(2).mean(0).sqrt()
    energy = ref.sum(dim=0)
    active = energy >= energy.max() * 10 ** (-ACTIVE_DB / 10)
    return float(per_frame[active].mean()) if bool(active.any()) else math.nan


def lsd_active(reference: torch.Tensor, estimate: torch.Tensor,
               powers: tuple[torch.Tensor, torch.Tensor] | None = None) -> float:
    """`powers`: `lsd_powers(reference, estimate)` when the caller has them already."""
    ref, est = powers or lsd_powers(reference, estimate)
    return _active_lsd(ref, est, slice(None), 10 ** (LSD_FLOOR_DB / 10))


def lsd_high(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int, low_hz: float = HIGH_BAND_HZ,
             powers: tuple[torch.Tensor, torch.Tensor] | None = None) -> float:
    """LSD (dB) over the reference's active frames, counting only the bins from `low_hz` to
    20 kHz (or Nyquist), both spectra floored 80 dB under the reference's loudest bin there."""
    ref, est = powers or lsd_powers(reference, estimate)
    freqs = torch.fft.rfftfreq(LSD_FFT, 1.0 / sample_rate, dtype=torch.float64)
    band = (freqs >= low_hz) & (freqs <= min(HIGH_BAND_TOP_HZ, sample_rate / 2))
    if not bool(band.any()) or float(ref[band].max()) <= 0:
        return math.nan
    return _active_lsd(ref, est, band, float(ref[band].max()) * 10 ** (-HIGH_BAND_RANGE_DB / 10))


@dataclass(frozen=True)
class StereoImage:
    side_to_mid_db: float  # side energy over mid energy, floored at SIDE_FLOOR_DB (mono: the floor)
    correlation: float  # of left and right over the whole sound (mono: 1)


def stereo_image(wave: torch.Tensor) -> StereoImage:
    """The image of a (2, samples) wave; a (samples,) or one-channel wave is mono."""
    if wave.dim() == 1 or wave.shape[0] < 2:
        return StereoImage(SIDE_FLOOR_DB, 1.0)
    left, right = wave[0].double(), wave[1].double()
    mid, side = mid_side(wave.double())
    e_mid, e_side = float(mid.square().sum()), float(side.square().sum())
    ratio = (max(SIDE_FLOOR_DB, 10 * math.log10(e_side / e_mid)) if e_mid > 0 and e_side > 0
             else SIDE_FLOOR_DB if e_mid > 0 else 0.0)
    denominator = math.sqrt(float(left.square().sum()) * float(right.square().sum()))
    return StereoImage(ratio, float((left * right).sum()) / denominator if denominator > 0 else 1.0)


MEL_SIZES = ((512, 40), (1024, 80), (2048, 128))  # (FFT, mel bands)
MEL_FLOOR = 1e-5
_mel_banks: dict[tuple[int, int, int], torch.Tensor] = {}


def _mel_bank(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    key = (n_fft, n_mels, sample_rate)
    if key not in _mel_banks:
        _mel_banks[key] = torchaudio.functional.melscale_fbanks(
            n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate, norm="slaney", mel_scale="slaney").double()
    return _mel_banks[key]


def mel_distance(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float:
    """Multi-resolution log-mel L1 (see the module docstring)."""
    total = 0.0
    for n_fft, n_mels in MEL_SIZES:
        bank = _mel_bank(n_fft, n_mels, sample_rate)
        log_mel = lambda x: (_stft(x, n_fft, n_fft // 4).abs().transpose(-1, -2) @ bank).clamp(min=MEL_FLOOR).log()  # noqa: E731,E501
        total += float((log_mel(reference) - log_mel(estimate)).abs().mean())
    return total / len(MEL_SIZES)


PRE_ECHO_SECONDS, ATTACK_SECONDS, ONSET_SHARE = 0.02, 0.1, 0.1


def pre_echo_db(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float:
    """Energy of `estimate` in the 20 ms before the reference's attack (its first sample above
    a tenth of its peak), in dB relative to the reference's first 100 ms from the attack: how
    much of the onset a renderer smears backwards in time (a mel frame's window reaches 23 ms
    before its centre). The reference's own figure is the floor."""
    magnitude = reference.abs()
    onset = int(torch.argmax((magnitude > ONSET_SHARE * float(magnitude.max())).to(torch.uint8)))
    before = estimate[max(0, onset - round(PRE_ECHO_SECONDS * sample_rate)):onset].double()
    attack = reference[onset:onset + round(ATTACK_SECONDS * sample_rate)].double()
    energy = lambda x: float(x.pow(2).mean()) if x.numel() else 0.0  # noqa: E731
    return 10 * math.log10(max(energy(before), 1e-24) / max(energy(attack), 1e-24))


# The level given to silence (an RMS of 1e-12), so a level error stays a finite number.
SILENCE_DB = -240.0


def rms_db(x: torch.Tensor) -> float:
    return max(levels(x)[1], SILENCE_DB)


@dataclass(frozen=True)
class Distance:
    mrstft: float  # convergence + log_magnitude
    convergence: float
    log_magnitude: float
    lsd_active: float  # dB
    level_error_db: float  # estimate's RMS level minus the reference's
    mel_distance: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def distance(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int = 22050) -> Distance:
    """Both (samples,) at `sample_rate`; cropped to the shorter."""
    n = min(reference.shape[-1], estimate.shape[-1])
    reference, estimate = reference[..., :n].cpu(), estimate[..., :n].cpu()
    convergence, log_magnitude = spectral_distances(reference, estimate)
    return Distance(convergence + log_magnitude, convergence, log_magnitude, lsd_active(reference, estimate),
                    rms_db(estimate) - rms_db(reference), mel_distance(reference, estimate, sample_rate))


@dataclass(frozen=True)
class FullBandDistance:
    """A (samples,) or (2, samples) estimate against its reference at 44.1 kHz or more."""

    mrstft: float  # FFT 512-4096, of the channels' mean
    lsd_active: float  # dB, of the channels' mean
    lsd_high: float  # dB, 11-20 kHz, of the channels' mean
    level_error_db: float  # RMS of the channels' mean
    side_to_mid_diff_db: float  # estimate minus reference
    correlation_diff: float  # estimate minus reference

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def full_band_distance(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> FullBandDistance:
    """Both at `sample_rate`, mono (samples,) or (channels, samples); cropped to the shorter."""
    n = min(reference.shape[-1], estimate.shape[-1])
    reference, estimate = reference[..., :n].cpu().float(), estimate[..., :n].cpu().float()
    mono = lambda x: x.mean(dim=0) if x.dim() == 2 else x  # noqa: E731
    ref, est = mono(reference), mono(estimate)
    convergence, log_magnitude = spectral_distances(ref, est, FULL_BAND_MR_SIZES)
    image_ref, image_est = stereo_image(reference), stereo_image(estimate)
    powers = lsd_powers(ref, est)
    return FullBandDistance(convergence + log_magnitude, lsd_active(ref, est, powers),
                            lsd_high(ref, est, sample_rate, powers=powers),
                            rms_db(est) - rms_db(ref), image_est.side_to_mid_db - image_ref.side_to_mid_db,
                            image_est.correlation - image_ref.correlation)
