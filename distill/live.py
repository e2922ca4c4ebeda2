"""Live models: a `.distillgan` file as a TorchScript file that nn~ (Max/MSP, Pure Data) and
NN.ar (SuperCollider) play, buffer by buffer.

The contract is RAVE's and nn_tilde's: methods `forward` (audio → audio), `encode` (audio →
latent), `decode` (latent → audio) and `random` (anything → new audio from the model's own
trajectories), each with a `<method>_params` buffer [in_channels, in_ratio, out_channels,
out_ratio], `<method>_input_labels` / `_output_labels`; `get_methods()`, `get_attributes()`
(here `seed`, with `get_seed` / `set_seed`); the attributes `sampling_rate`,
`full_latent_size` and `latency` (samples). Tensors are (batch, channels, time).

Streaming, exactly: the chain is fully convolutional (features, encoder, decoder, vocoder,
side), so each stage keeps the last frames it was given (its `left + right` context, measured
on the networks themselves by `_reach`) and works on [those + the new ones], giving back the
outputs whose whole neighbourhood it has seen: `right` frames late. The vocoder's phase is a
running sum along time; the running total is kept too. So any sequence of buffers gives the
same output as one call with all of them, and `latency` is the sum of the stages' delays.
Deterministic: the encoder's mean, no sampling noise.
"""

from __future__ import annotations

import copy
import io
import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import torch
from torch import nn

from distill import DistillError
from distill.audio import LOG_MEL_FLOOR
from distill.atomic import atomic_write_bytes
from distill.live_nets import TWO_PI, LiveAutoencoder, LiveFeatures, LiveVocoder
from distill.modelfile import ModelFile, load_model_file, resolve_model
from distill.synthesis import Synthesizer
from distill.trajectories import stored_bank
from distill.workspace import Workspace

METHODS = ["forward", "encode", "decode", "random"]
LIVE_FOLDER = "live"  # <workspace>/live/<model>.ts
# Extra frames of context per stage beyond what `_reach` measured: the measurement perturbs a
# random input, and a clamp or a minimum can hide an influence on that one input.
REACH_MARGIN = 1
# A stage's context ends where a change of its input moves its output by less than this share of
# the most it moves it (-100 dB). On the trained example the exact reach (1e-9) gave a latency of
# 1.29 s, this 1.01 s with seams at -89 dB or lower; 1e-4 gave 0.80 s but seams up to -63 dB,
# too little margin over the -50 dB a host needs for a model never measured.
REACH_SHARE = 1e-5


class LiveModel(nn.Module):
    """The scripted model. Built by `build_live_model`; state lives in buffers, one set per
    method (a patch may run `forward` and `random` side by side), and is made anew whenever
    the batch size changes or `reset()` is called."""

    def __init__(self, features: LiveFeatures, ae: LiveAutoencoder, vocoder: LiveVocoder, info: Dict[str, int],
                 bank: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor, silence: torch.Tensor):
        super().__init__()
        self.features, self.ae, self.vocoder = features, ae, vocoder
        self.sampling_rate, self.channels = info["sampling_rate"], info["channels"]
        self.hop, self.stride, self.n_fft = info["hop"], info["stride"], info["n_fft"]
        self.rows, self.n_mels, self.full_latent_size = info["rows"], info["n_mels"], info["latent_dim"]
        self.ratio = self.hop * self.stride
        self.enc_left, self.enc_right = info["enc_left"], info["enc_right"]
        self.dec_left, self.dec_right = info["dec_left"], info["dec_right"]
        self.voc_left, self.voc_right = info["voc_left"], info["voc_right"]
        self.encode_latency = self.hop * (1 + self.stride * self.enc_right)
        self.decode_latency = self.hop * (self.stride * self.dec_right + self.voc_right)
        self.latency = self.encode_latency + self.decode_latency
        self.seed = 0
        self.floor, self.two_pi = LOG_MEL_FLOOR, TWO_PI
        self.register_buffer("bank", bank)
        self.register_buffer("bank_starts", starts)
        self.register_buffer("bank_lengths", lengths)
        self.register_buffer("silence", silence)
        ch, d = self.channels, self.full_latent_size
        self.register_method("forward", ch, 1, ch, 1, [f"(signal) audio in {i + 1}" for i in range(ch)],
                             [f"(signal) audio out {i + 1}" for i in range(ch)])
        self.register_method("encode", ch, 1, d, self.ratio, [f"(signal) audio in {i + 1}" for i in range(ch)],
                             [f"(signal) latent {i}" for i in range(d)])
        self.register_method("decode", d, self.ratio, ch, 1, [f"(signal) latent {i}" for i in range(d)],
                             [f"(signal) audio out {i + 1}" for i in range(ch)])
        self.register_method("random", 1, 1, ch, 1, ["(signal) ignored: plays on its own"],
                             [f"(signal) audio out {i + 1}" for i in range(ch)])
        self.methods: List[str] = list(METHODS)
        self.attributes: List[str] = ["seed"]
        # nn~ reads an attribute's argument types from `<name>_params` (type codes, as
        # nn_tilde's Module stores them: bool 0, int 1, float 2, str 3, tensor 4): seed is one int.
        self.register_buffer("seed_params", torch.tensor([1.0]))
        empty = torch.zeros(0)
        for name in ("fw_audio", "fw_enc", "fw_dec", "fw_voc", "fw_phase", "en_audio", "en_enc",
                     "de_dec", "de_voc", "de_phase", "rn_dec", "rn_voc", "rn_phase", "rn_traj", "rn_pos", "rn_rng"):
            self.register_buffer(name, empty.clone(), persistent=False)

    def register_method(self, name: str, in_channels: int, in_ratio: int, out_channels: int, out_ratio: int,
                        input_labels: List[str], output_labels: List[str]) -> None:
        self.register_buffer(f"{name}_params", torch.tensor([in_channels, in_ratio, out_channels, out_ratio]))
        setattr(self, f"{name}_input_labels", input_labels)
        setattr(self, f"{name}_output_labels", output_labels)

    # -- the contract's small methods --------------------------------------------------------
    @torch.jit.export
    def get_methods(self) -> List[str]:
        return self.methods

    @torch.jit.export
    def get_attributes(self) -> List[str]:
        return self.attributes

    @torch.jit.export
    def get_seed(self) -> int:
        return self.seed

    @torch.jit.export
    def set_seed(self, seed: int) -> int:
        """Which trajectories `random` plays, from the start again. 0: done."""
        self.seed = int(seed)
        self.rn_dec = torch.zeros(0)
        return 0

    @torch.jit.export
    def get_latency(self) -> int:
        return self.latency

    @torch.jit.export
    def reset(self) -> None:
        """Forget every method's past: the next call starts from silence."""
        self.fw_audio = torch.zeros(0)
        self.en_audio = torch.zeros(0)
        self.de_dec = torch.zeros(0)
        self.rn_dec = torch.zeros(0)

    # -- the stages: (state, new input) → (output, new state) ----------------------------------
    def _blocks(self, n: int) -> int:
        if n % self.ratio != 0 or n == 0:
            raise ValueError("Distill live model: buffers must be a multiple of " + str(self.ratio) + " samples")
        return n // self.ratio

    def _audio_history(self, batch: int, channels: int) -> torch.Tensor:
        return torch.zeros(batch, channels, self.n_fft - self.hop)

    def _feature_history(self, batch: int, frames: int) -> torch.Tensor:
        return torch.full((batch, self.rows, frames), self.floor)

    def _latent_history(self, batch: int) -> torch.Tensor:
        return self.silence.view(1, -1, 1).repeat(batch, 1, self.dec_left + self.dec_right)

    def _encode_stage(self, audio_hist: torch.Tensor, enc_hist: torch.Tensor,
                      audio: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.cat([audio_hist, audio], dim=-1)
        features = self.features(x)  # (B, rows, n / hop)
        window = torch.cat([enc_hist, features], dim=-1)
        latents = features.shape[-1] // self.stride
        z = self.ae.encode(window)[..., self.enc_left:self.enc_left + latents]
        return z, x[..., x.shape[-1] - audio_hist.shape[-1]:], window[..., window.shape[-1] - enc_hist.shape[-1]:]

    def _decode_stage(self, dec_hist: torch.Tensor, voc_hist: torch.Tensor, phase: torch.Tensor,
                      z: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        window = torch.cat([dec_hist, z], dim=-1)
        features = self.ae.decode(window)[..., self.dec_left * self.stride:(self.dec_left + z.shape[-1]) * self.stride]
        frames = features.shape[-1]
        x = torch.cat([voc_hist, features], dim=-1)
        log_mag, advance, offset = self.vocoder.parts(x[:, :self.n_mels])
        left = self.voc_left
        if self.vocoder.integrated:
            total = torch.cumsum(advance.double(), dim=-1)
            running = phase.unsqueeze(-1) + total - total[..., left - 1:left]
            phase = running[..., left + frames - 1].remainder(self.two_pi)
            spectrum_phase = running.remainder(self.two_pi).float() + offset
        else:
            spectrum_phase = advance
        wave = self.vocoder.render(log_mag, spectrum_phase, x)[..., left * self.hop:(left + frames) * self.hop]
        return (wave, window[..., window.shape[-1] - dec_hist.shape[-1]:],
                x[..., x.shape[-1] - voc_hist.shape[-1]:], phase)

    def _new_decoder_state(self, batch: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (self._latent_history(batch), self._feature_history(batch, self.voc_left + self.voc_right),
                torch.zeros(batch, self.vocoder.n_bins, dtype=torch.float64))

    # -- the methods -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, channels, n) audio → (B, channels, n) audio, `latency` samples late."""
        self._blocks(x.shape[-1])
        if self.fw_audio.dim() != 3 or self.fw_audio.shape[0] != x.shape[0]:
            self.fw_audio = self._audio_history(x.shape[0], x.shape[1])
            self.fw_enc = self._feature_history(x.shape[0], (self.enc_left + self.enc_right) * self.stride)
            self.fw_dec, self.fw_voc, self.fw_phase = self._new_decoder_state(x.shape[0])
        z, self.fw_audio, self.fw_enc = self._encode_stage(self.fw_audio, self.fw_enc, x)
        wave, self.fw_dec, self.fw_voc, self.fw_phase = self._decode_stage(self.fw_dec, self.fw_voc, self.fw_phase, z)
        return wave

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, channels, n) audio → (B, latent_dim, n / ratio): the posterior mean."""
        self._blocks(x.shape[-1])
        if self.en_audio.dim() != 3 or self.en_audio.shape[0] != x.shape[0]:
            self.en_audio = self._audio_history(x.shape[0], x.shape[1])
            self.en_enc = self._feature_history(x.shape[0], (self.enc_left + self.enc_right) * self.stride)
        z, self.en_audio, self.en_enc = self._encode_stage(self.en_audio, self.en_enc, x)
        return z

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim, n / ratio) → (B, channels, n) audio."""
        if self.de_dec.dim() != 3 or self.de_dec.shape[0] != z.shape[0]:
            self.de_dec, self.de_voc, self.de_phase = self._new_decoder_state(z.shape[0])
        wave, self.de_dec, self.de_voc, self.de_phase = self._decode_stage(self.de_dec, self.de_voc, self.de_phase, z)
        return wave

    @torch.jit.export
    def random(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, n), ignored → (B, channels, n): the model's training clips' trajectories one
        after another, each picked at random (batch item b from `seed` + b), decoded."""
        batch, steps = x.shape[0], self._blocks(x.shape[-1])
        if self.rn_dec.dim() != 3 or self.rn_dec.shape[0] != batch:
            self.rn_dec, self.rn_voc, self.rn_phase = self._new_decoder_state(batch)
            self.rn_rng = torch.tensor([(self.seed * 7919 + b * 104729 + 1) % 2147483648 for b in range(batch)])
            self.rn_traj = torch.zeros(batch, dtype=torch.long)
            self.rn_pos = self.bank_lengths[self.rn_traj].clone()  # past the end: a pick comes first
        z = torch.zeros(batch, self.full_latent_size, steps)
        count = self.bank_lengths.shape[0]
        for b in range(batch):
            for k in range(steps):
                if int(self.rn_pos[b]) >= int(self.bank_lengths[int(self.rn_traj[b])]):
                    rng = (int(self.rn_rng[b]) * 1103515245 + 12345) % 2147483648
                    self.rn_rng[b] = rng
                    self.rn_traj[b] = (rng // 65536) % count
                    self.rn_pos[b] = 0
                z[b, :, k] = self.bank[:, int(self.bank_starts[int(self.rn_traj[b])]) + int(self.rn_pos[b])]
                self.rn_pos[b] += 1
        wave, self.rn_dec, self.rn_voc, self.rn_phase = self._decode_stage(self.rn_dec, self.rn_voc, self.rn_phase, z)
        return wave


# -- building ---------------------------------------------------------------------------------

def _reach(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, in_block: int, out_block: int) -> Tuple[int, int]:
    """(left, right): output block o of `fn` depends on input blocks o - left … o + right (by
    more than REACH_SHARE), as measured by changing one input block in the middle of `x` (float64)."""
    blocks = x.shape[-1] // in_block
    b0 = blocks // 2
    bumped = x.clone()
    bumped[..., b0 * in_block:(b0 + 1) * in_block] += 1.0
    with torch.no_grad():
        diff = (fn(bumped) - fn(x)).abs().flatten(0, -2).amax(dim=0)
    changed = torch.nonzero(diff > diff.max() * REACH_SHARE).flatten()
    if not len(changed):
        return 0, 0
    lo, hi = int(changed.min()) // out_block, int(changed.max()) // out_block
    if lo == 0 or hi >= diff.shape[0] // out_block - 1:
        raise DistillError("live export: a network's reach is longer than the measuring window")
    return max(0, hi - b0), max(0, b0 - lo)


def measure_contexts(ae: LiveAutoencoder, vocoder: LiveVocoder, seed: int = 0) -> Dict[str, int]:
    """Each stage's left and right context (encoder and decoder in latent frames, the vocoder
    in mel frames), measured on float64 copies, plus `REACH_MARGIN`."""
    g = torch.Generator().manual_seed(seed)
    ae64, voc64 = copy.deepcopy(ae).double(), copy.deepcopy(vocoder).double()
    stride, rows, d = ae.stride, ae.rows, ae.latent_dim
    features = (-5.0 + 2.0 * torch.randn(1, rows, stride * 96, generator=g, dtype=torch.float64)).clamp(min=LOG_MEL_FLOOR)
    enc = _reach(ae64.encode, features, stride, 1)
    dec = _reach(ae64.decode, torch.randn(1, d, 96, generator=g, dtype=torch.float64), 1, stride)
    mels = features[:, :, :256]
    # the network, up to the phase sum ...
    net = _reach(lambda m: torch.cat(voc64.parts(m[:, :voc64.n_mels]), dim=1), mels, 1, 1)
    # ... and the rendering after it (spectrum and the features it is matched to, changed together)
    phase = torch.rand(1, voc64.n_bins, 256, generator=g, dtype=torch.float64) * TWO_PI
    log_mag = voc64.parts(mels[:, :voc64.n_mels])[0]

    def render(x: torch.Tensor) -> torch.Tensor:
        return voc64.render(x[:, :voc64.n_bins], phase, x[:, voc64.n_bins:])

    out = _reach(render, torch.cat([log_mag, mels], dim=1), 1, voc64.hop)
    m = REACH_MARGIN
    return {"enc_left": enc[0] + m, "enc_right": enc[1] + m, "dec_left": dec[0] + m, "dec_right": dec[1] + m,
            "voc_left": net[0] + out[0] + 2 * m, "voc_right": net[1] + out[1] + 2 * m}


@torch.no_grad()
def build_live_model(model_file: ModelFile) -> torch.jit.ScriptModule:
    """A model file → the scripted live model (its own vocoder, else the shipped one)."""
    settings = model_file.audio_settings
    synth = Synthesizer.for_model(model_file)
    if synth._slot is None:
        raise DistillError(f"a live model needs a vocoder, and {model_file.name} has none that suits it "
                           f"({synth.fallback or 'Griffin-Lim was asked for'}): Griffin-Lim cannot run buffer by buffer")
    if settings.n_fft % settings.hop_length:
        raise DistillError("a live model needs n_fft to be a whole number of hops")
    config = model_file.model_config
    ratio = settings.hop_length * config.time_stride
    if ratio & (ratio - 1):
        raise DistillError(f"a live model needs a power-of-two compression ratio; this model's is {ratio} "
                           f"(hop {settings.hop_length} × time stride {config.time_stride})")
    bank = stored_bank(model_file)
    ae = LiveAutoencoder(model_file.build_model("cpu"))
    vocoder = LiveVocoder(synth.load()._loaded(), settings)
    features = LiveFeatures(settings)
    info = {"sampling_rate": settings.sample_rate, "channels": settings.channels, "hop": settings.hop_length,
            "stride": config.time_stride, "n_fft": settings.n_fft, "rows": settings.feature_rows,
            "n_mels": settings.n_mels, "latent_dim": config.latent_dim, **measure_contexts(ae, vocoder)}
    latents = [t.latents.float() for t in bank.trajectories]
    lengths = torch.tensor([z.shape[1] for z in latents], dtype=torch.long)
    starts = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
    live = LiveModel(features, ae, vocoder, info, torch.cat(latents, dim=1).contiguous(), starts, lengths,
                     bank.silence.float().clone())
    live.eval()
    for p in live.parameters():
        p.requires_grad_(False)
    return torch.jit.script(live)


def describe(live: Any) -> Dict[str, Any]:
    """What a host needs to know of a live model (scripted or loaded)."""
    rate = int(live.sampling_rate)
    params = {m: [int(v) for v in getattr(live, f"{m}_params")] for m in live.get_methods()}
    return {"sampling_rate": rate, "channels": int(live.channels), "latent_size": int(live.full_latent_size),
            "latency_samples": int(live.latency), "latency_ms": round(1000 * int(live.latency) / rate, 1),
            "ratio": int(live.ratio), "methods": params}


def export_live(model_file: ModelFile, path: str | Path) -> Dict[str, Any]:
    """Write `model_file`'s live model to `path` (atomically); what `describe` says of it,
    with its `path` and `size_bytes`."""
    buffer = io.BytesIO()
    live = build_live_model(model_file)
    torch.jit.save(live, buffer)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getbuffer())
    return {"path": str(path), "size_bytes": path.stat().st_size, **describe(live)}


def export_live_model(ws: Workspace, model: str | Path, output: str | Path | None = None) -> Dict[str, Any]:
    """A catalog model (name or path) as a live model: `output`, default
    `<workspace>/live/<model>.ts` (outside every dataset folder)."""
    model_file = load_model_file(resolve_model(ws, model))
    if output is None:
        output = ws.root / LIVE_FOLDER / f"{model_file.name}.ts"
    if Path(output).suffix != ".ts":  # nn~ and NN.ar look for this suffix
        output = Path(output).with_name(Path(output).name + ".ts")
    return export_live(model_file, ws.output_dir(Path(output).parent) / Path(output).name)


def summary(info: Dict[str, Any]) -> str:
    """What `distill export-live` prints: the file, its size, the latency, the methods' shapes."""
    lines = [f"{info['path']}  {info['size_bytes'] / 1e6:.1f} MB",
             f"  {info['sampling_rate']} Hz, {info['channels']} channel{'s' if info['channels'] > 1 else ''}, "
             f"latent {info['latent_size']} channels every {info['ratio']} samples",
             f"  latency {info['latency_samples']} samples ({info['latency_ms']:g} ms)"]
    for name, (cin, rin, cout, rout) in info["methods"].items():
        lines.append(f"  {name:8s} {cin} ch at 1/{rin} → {cout} ch at 1/{rout}")
    return "\n".join(lines)


def seam_db(whole: torch.Tensor, pieces: torch.Tensor, skip: int = 0) -> float:
    """How far `pieces` (buffer by buffer) is from `whole` (one call), in dB under `whole`'s RMS."""
    a, b = whole[..., skip:].double(), pieces[..., skip:].double()
    err, ref = (a - b).pow(2).mean().sqrt(), a.pow(2).mean().sqrt().clamp(min=1e-12)
    return -math.inf if float(err) == 0 else 20 * math.log10(float(err / ref))
