"""The generator: log-mel → waveform, Vocos-style, with two fixed priors that make it learn
fast on a CPU, and its model-file slot.

    log-mel ─ Conv1d ─ ConvNeXt × L ─ Linear ─┬─ log-magnitude correction ─┐
       │                                      └─ phase-advance correction ─┤
       └─ mel → linear magnitude prior ───────────────────────────────────┴─ complex STFT
                                                    ─ K consistency projections ─ iSTFT
                                                    ─ mel matching ─ attack guard ─ audio

Every layer runs at the frame rate (86 frames a second at hop 256), not the sample rate,
and the last step is one FFT per frame: one to two orders of magnitude cheaper on a CPU
than HiFi-GAN, which runs its residual stacks at 22050 samples a second.

The priors, because a per-model vocoder gets minutes of CPU, not days of GPU:
- magnitude: the least-squares inverse of the mel filterbank (Griffin-Lim's own starting
  point), floored by a smooth interpolation; the network learns the log-magnitude residual.
- phase: each bin's advance per hop is its centre frequency plus the offset that the slope
  of the log-magnitude across frequency implies (the phase-gradient relation, Průša et al.
  2017), summed over frames; the network learns a correction to the advance and an offset.
Then `projections` Griffin-Lim steps (keep the magnitudes, take the phase of the re-analysed
signal) are trained through, so the network learns phase that survives them. Last, two
parameter-free stages that use the input mel again: `mel_matching` steps put each band back at
the level it asks for, and the attack guard (`envelope.py`) clears energy smeared before an
attack further back than the frames allow.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from distill import DistillError
from distill.audio import LOG_MEL_FLOOR, AudioSettings, _mel_transform
from distill.stft import istft as fast_istft
from distill.vocoder.config import ARCHITECTURE_FIELDS, VocoderConfig
from distill.vocoder.envelope import guard_attacks

# d/d(bin) of a Hann window's log-magnitude response per bin of frequency offset, in the
# window's Gaussian approximation (λ = 0.25645·n_fft², ltfat's constant): 2π·0.25645.
HANN_GAUSSIAN_SLOPE = 2 * math.pi * 0.25645
# The most a mel-matching step changes a band, in nats (±13 dB): a correction of levels, not a
# licence to turn a floor into a sound.
MEL_MATCH_LIMIT = 1.5
SLOT_FORMAT = "distill_vocoder"
SLOT_VERSION = 1


def mel_filterbank(settings: AudioSettings) -> torch.Tensor:
    """(n_fft/2+1, n_mels): the very filterbank `distill.audio.log_mel` applies."""
    return _mel_transform(settings, "cpu").mel_scale.fb.detach().clone().double()


def mel_bin_weights(settings: AudioSettings) -> torch.Tensor:
    """(bins, n_mels): for each bin, the share each mel band has in it (the filterbank's row,
    summing to 1; the nearest band's for a bin no filter covers)."""
    fb = mel_filterbank(settings)
    weights = fb / fb.sum(dim=1, keepdim=True).clamp(min=1e-12)
    uncovered = fb.sum(dim=1) <= 1e-12
    if uncovered.any():  # DC, and above f_max
        bins = torch.arange(fb.shape[0], dtype=fb.dtype).unsqueeze(1)
        centres = (fb * bins).sum(0) / fb.sum(0).clamp(min=1e-12)
        centres[fb.sum(dim=0) <= 1e-12] = float("inf")  # an empty (too narrow) filter is no one's nearest
        nearest = (bins - centres.unsqueeze(0)).abs().argmin(dim=1)
        weights[uncovered] = 0.0
        weights[uncovered, nearest[uncovered]] = 1.0
    return weights.float()


def mel_interpolation(settings: AudioSettings) -> torch.Tensor:
    """(bins, n_mels): a smooth linear-magnitude estimate from mel magnitudes. A band's
    magnitude per bin is its value over its filter's total weight; a bin takes the
    filter-weighted mean of the bands covering it (the nearest band where none does)."""
    fb = mel_filterbank(settings)
    return (mel_bin_weights(settings).double() / fb.sum(dim=0).clamp(min=1e-12).unsqueeze(0)).float()


def mel_pseudo_inverse(settings: AudioSettings) -> torch.Tensor:
    """(bins, n_mels): the minimum-norm least-squares inverse of the filterbank, what
    torchaudio's InverseMelScale (Griffin-Lim's first step) computes."""
    return torch.linalg.pinv(mel_filterbank(settings).T).float()


class ConvNeXtBlock(nn.Module):
    """Depthwise convolution over time → LayerNorm → pointwise MLP, scaled, added back."""

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, dim, T)
        h = self.dwconv(x).transpose(1, 2)
        h = self.pwconv2(self.act(self.pwconv1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class Vocoder(nn.Module):
    """(B, n_mels, T) log-mels → (B, T·hop) waveform. Feed it `distill.audio.log_mel` output
    made with the `AudioSettings` it was built with (the model's own), nothing else."""

    def __init__(self, config: VocoderConfig, settings: AudioSettings):
        super().__init__()
        self.config = config
        self.settings = settings
        self.n_bins = settings.n_fft // 2 + 1
        k = config.kernel_size
        self.embed = nn.Conv1d(settings.n_mels, config.dim, k, padding=k // 2)
        self.norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(config.dim, config.intermediate_dim, k, 1.0 / config.num_layers)
                                    for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.dim, eps=1e-6)
        # Per bin: a log-magnitude correction and a phase correction ("direct": the phase
        # itself), plus a phase offset in "integrated" mode.
        outputs = 3 if config.phase_mode == "integrated" else 2
        self.head = nn.Linear(config.dim, outputs * self.n_bins)
        self.refiner = None
        if config.refiner_channels:
            c, (kf, kt) = config.refiner_channels, config.refiner_kernel
            pad = (kf // 2, kt // 2)
            self.refiner = nn.Sequential(nn.Conv2d(2, c, (kf, kt), padding=pad), nn.GELU(),
                                         nn.Conv2d(c, c, (kf, kt), padding=pad), nn.GELU(),
                                         nn.Conv2d(c, outputs - 1, (kf, kt), padding=pad))
        self.apply(self._init_weights)
        if self.refiner is not None:
            nn.init.zeros_(self.refiner[-1].weight)
        # Zero corrections at the start: an untrained vocoder is exactly its priors (already
        # about as good as Griffin-Lim), and training only has to learn what they miss.
        nn.init.zeros_(self.head.weight)
        # Fixed tensors, all derived from the settings: not in the state dict.
        self.register_buffer("window", torch.hann_window(settings.n_fft), persistent=False)
        self.register_buffer("mel_interp", mel_interpolation(settings), persistent=False)
        self.register_buffer("mel_pinv", mel_pseudo_inverse(settings), persistent=False)
        self.register_buffer("mel_fb", mel_filterbank(settings).float(), persistent=False)
        self.register_buffer("mel_bin_weights", mel_bin_weights(settings), persistent=False)
        self.register_buffer("band_weight", self.mel_fb.sum(dim=0).clamp(min=1e-12), persistent=False)
        bins = torch.arange(self.n_bins, dtype=torch.float32).unsqueeze(1)
        self.advance_per_bin = 2 * math.pi * settings.hop_length / settings.n_fft
        # A partial at bin k's centre advances 2π·k·hop/n_fft per frame (wrapped: exact in float32).
        self.register_buffer("centre_advance", (self.advance_per_bin * bins).remainder(2 * math.pi), persistent=False)
        # A centred window puts the bins of one partial, or of a click, π apart.
        self.register_buffer("centre_offset", (-math.pi * bins).remainder(2 * math.pi), persistent=False)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    # -- the parts -------------------------------------------------------------------------
    def magnitude_prior(self, log_mels: torch.Tensor) -> torch.Tensor:
        """(B, bins, T) linear magnitudes estimated from log-mels: the least-squares inverse
        (sharp, but zero in places) floored by a tenth of the smooth interpolation."""
        mel = torch.exp(log_mels.clamp(LOG_MEL_FLOOR, 12.0))
        sharp = torch.relu(torch.einsum("kb,nbt->nkt", self.mel_pinv, mel))
        smooth = torch.einsum("kb,nbt->nkt", self.mel_interp, mel)
        return torch.maximum(sharp, 0.1 * smooth).clamp(min=math.exp(LOG_MEL_FLOOR))

    def phase_advance_prior(self, log_mag: torch.Tensor) -> torch.Tensor:
        """Each bin's expected phase advance per hop: its centre frequency, moved by the
        offset (in bins) that the log-magnitude's slope across frequency implies."""
        slope = torch.zeros_like(log_mag)
        slope[:, 1:-1] = (log_mag[:, 2:] - log_mag[:, :-2]) / 2
        offset_bins = (slope / HANN_GAUSSIAN_SLOPE).clamp(-1.5, 1.5)
        return self.centre_advance + self.advance_per_bin * offset_bins

    def spectrum(self, log_mels: torch.Tensor) -> torch.Tensor:
        """The complex STFT (B, bins, T) the head predicts, before any projection."""
        log_mels = log_mels.clamp(LOG_MEL_FLOOR, 12.0)
        x = (log_mels - self.config.feature_mean) / self.config.feature_std
        x = self.norm(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)
        parts = list(x.split(self.n_bins, dim=1))
        log_prior = torch.log(self.magnitude_prior(log_mels))
        log_mag = parts[0] + log_prior
        if self.refiner is not None:
            scale = lambda v: (v - self.config.feature_mean) / self.config.feature_std  # noqa: E731
            refined = self.refiner(torch.stack([scale(log_prior), scale(log_mag)], dim=1))
            log_mag = log_mag + refined[:, 0]
            if self.config.phase_mode == "integrated":
                parts[1] = parts[1] + refined[:, 1]
        # n_fft/2 is a full-scale DC's magnitude: nothing real is louder.
        log_mag = log_mag.clamp(max=math.log(self.settings.n_fft / 2))
        if self.config.phase_mode == "integrated":
            advance = self.phase_advance_prior(log_mag.detach()) + parts[1]
            # Summed in float64 and wrapped: a long clip's running phase would lose float32 precision.
            phase = torch.cumsum(advance.double(), dim=-1).remainder(2 * math.pi).float()
            phase = phase + parts[2] + self.centre_offset
        else:
            phase = parts[1]
        return torch.polar(torch.exp(log_mag), phase)

    def stft(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.stft(wave, self.settings.n_fft, self.settings.hop_length, window=self.window, center=True,
                          return_complex=True)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        # center=True inverts log_mel's own framing: frame t is centred on sample t·hop.
        n_fft, hop = self.settings.n_fft, self.settings.hop_length
        if n_fft % hop:
            return torch.istft(spec, n_fft, hop, window=self.window, center=True, length=length)
        return fast_istft(spec.transpose(1, 2), self.window, n_fft, hop, length)

    def waveform(self, spec: torch.Tensor, log_mels: torch.Tensor | None = None) -> torch.Tensor:
        """The head's spectrum → audio, through the consistency projections, then (given the
        log-mels it was asked for) the mel matching and the attack guard."""
        length = spec.shape[-1] * self.settings.hop_length
        magnitude = spec.abs()
        for _ in range(self.config.projections):
            actual = self.stft(self.istft(spec, length))[..., :spec.shape[-1]]
            # |X| as a square root of re² + im² (twice as fast as complex abs on a CPU), with a floor
            # under the root: at an exactly silent bin its slope would be infinite and the gradient NaN
            size = (actual.real.square() + actual.imag.square() + 1e-14).sqrt().clamp(min=1e-7)
            spec = actual * (magnitude / size)
        wave = self.istft(spec, length)
        if log_mels is None:
            return wave
        # (A band at the floor can only be turned down: its measured level is floored there too.)
        target = log_mels.clamp(LOG_MEL_FLOOR, 12.0)
        wave = self.match_mel(wave, target)
        if self.config.attack_guard:
            own = self.log_mel_of(self.stft(wave)[..., :target.shape[-1]])
            wave = guard_attacks(wave, target, own, self.band_weight, self.window, self.settings.hop_length)
        return wave

    def log_mel_of(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, bins, T) STFT → (B, n_mels, T): `distill.audio.log_mel`, differentiable at silence."""
        # |X| with a floor under the square root: a silent bin must not make the gradient NaN
        magnitude = (spec.real.square() + spec.imag.square() + 1e-14).sqrt()
        return torch.log(torch.einsum("kb,nkt->nbt", self.mel_fb, magnitude).clamp(min=math.exp(LOG_MEL_FLOOR)))

    def match_mel(self, wave: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """`mel_matching` times: measure the output's own log-mel and scale each bin by the gain
        its mel bands still lack (their log-gains averaged with the filterbank's weights), up
        to ±MEL_MATCH_LIMIT. A regression loss on log-magnitudes
        aims at the median of noise's Rayleigh-distributed bins, below its mean power: noisy
        sounds (drums, breath) came out 1-2 dB quiet and dull until this put the band levels
        back to what the mel says. Parameter-free and differentiable (trained through).
        `target`: the log-mels asked for, clamped to what log-mels can be."""
        length, previous = wave.shape[-1], None
        for _ in range(self.config.mel_matching):
            spec = self.stft(wave)[..., :target.shape[-1]]
            gain = (target - self.log_mel_of(spec)).clamp(-MEL_MATCH_LIMIT, MEL_MATCH_LIMIT)
            matched = self.istft(spec * torch.exp(torch.einsum("kb,nbt->nkt", self.mel_bin_weights, gain)), length)
            # an inconsistent spectrum loses part of each correction when it is inverted: go on past it
            wave = matched if previous is None else matched + self.config.mel_matching_momentum * (matched - previous)
            previous = matched
        return wave

    def forward(self, log_mels: torch.Tensor) -> torch.Tensor:
        return self.waveform(self.spectrum(log_mels), log_mels)

    # -- use -------------------------------------------------------------------------------
    @torch.no_grad()
    def synthesize(self, log_mels: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """Inference: (n_mels, T) or (B, n_mels, T) log-mels → (T·hop,) or (B, T·hop) audio,
        finite, and within [-1, 1] unless `clamp` is off (`distill.synthesis` turns it off so
        a transform can see, report and undo an output louder than full scale instead of
        having it clipped here). Input outside what log-mels can be is clamped."""
        squeeze = log_mels.dim() == 2
        if squeeze:
            log_mels = log_mels.unsqueeze(0)
        if log_mels.dim() != 3 or log_mels.shape[1] != self.settings.n_mels:
            raise DistillError(f"the vocoder takes (n_mels={self.settings.n_mels}, frames) log-mels, "
                               f"got shape {tuple(log_mels.shape)}")
        device = self.window.device
        was_training = self.training
        self.eval()
        try:
            wave = self(log_mels.to(device=device, dtype=torch.float32))
        finally:
            self.train(was_training)
        wave = torch.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)
        if clamp:
            wave = wave.clamp(-1.0, 1.0)
        return wave[0] if squeeze else wave

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def macs_per_second(config: VocoderConfig, settings: AudioSettings) -> float:
    """Multiply-accumulates per second of audio (FFTs counted as 5·N·log2 N / 2 each)."""
    d, i, k = config.dim, config.intermediate_dim, config.kernel_size
    bins = settings.n_fft // 2 + 1
    per_frame = (settings.n_mels * d * k + config.num_layers * (d * k + 2 * d * i)
                 + d * bins * (3 if config.phase_mode == "integrated" else 2) + 2 * bins * settings.n_mels)
    fft = 2.5 * settings.n_fft * math.log2(settings.n_fft)
    per_frame += fft * (1 + 2 * config.projections + 2 * config.mel_matching)
    per_frame += config.mel_matching * 2 * bins * settings.n_mels  # a band's gain measured and spread
    return per_frame * settings.sample_rate / settings.hop_length


# -- the model file's slot ------------------------------------------------------------------

def vocoder_slot(vocoder: Vocoder, training: dict[str, Any]) -> dict[str, Any]:
    """{"config", "state", "training"}: plain values for `modelfile.attach_vocoder`."""
    config = {"format": SLOT_FORMAT, "version": SLOT_VERSION, "architecture": vocoder.config.architecture(),
              "audio_settings": vocoder.settings.to_dict()}
    state = {k: v.detach().cpu().clone() for k, v in vocoder.state_dict().items()}
    return {"config": config, "state": state, "training": dict(training)}


def load_vocoder(slot: dict[str, Any], device: torch.device | str = "cpu",
                 settings: AudioSettings | None = None) -> Vocoder:
    """A model file's vocoder slot → a `Vocoder` in eval mode on `device`. With `settings`
    (the model's audio settings) a vocoder made for other mel settings is refused: fed
    another scaling it would sound broken."""
    if not isinstance(slot, dict) or not isinstance(slot.get("config"), dict) or not isinstance(slot.get("state"), dict):
        raise DistillError("the model's vocoder slot is damaged (no config or state)")
    config = slot["config"]
    if config.get("format") != SLOT_FORMAT:
        raise DistillError(f"the model's vocoder is of an unknown kind ({str(config.get('format'))[:40]!r})")
    if config.get("version") != SLOT_VERSION:
        raise DistillError(f"the model's vocoder has version {config.get('version')!r}; this Distill reads "
                           f"version {SLOT_VERSION}. Train it again with `distill train-vocoder --force`.")
    try:
        # a field added since the slot was written takes the value that reproduces how it was trained
        written = {"mel_matching": 0, "mel_matching_momentum": 0.0, "attack_guard": False, **config["architecture"]}
        architecture = VocoderConfig.from_dict({k: v for k, v in written.items() if k in ARCHITECTURE_FIELDS})
        own = AudioSettings.from_dict(config["audio_settings"])
    except (KeyError, TypeError, ValueError, DistillError) as exc:
        raise DistillError(f"the model's vocoder slot is damaged ({exc})") from None
    if settings is not None and own != settings:
        raise DistillError(f"the model's vocoder was trained on other mel settings ({own.to_dict()}) than the "
                           f"model's ({settings.to_dict()}); train it again with --force")
    vocoder = Vocoder(architecture, own)
    try:
        vocoder.load_state_dict(slot["state"], strict=True)
    except RuntimeError as exc:
        raise DistillError(f"the model's vocoder weights do not fit its architecture "
                           f"({str(exc).splitlines()[0]})") from None
    return vocoder.to(torch.device(device)).eval()
