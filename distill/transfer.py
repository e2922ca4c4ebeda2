"""Transfer: any sound played by the model's own clips (`distill transform --strength`).

The autoencoder decodes anything, so a plain transform gives its input back: a drum loop
through a model of marimba notes stays a drum loop. A transfer plays the input's rhythm
with the model's own sounds instead:

1. The input's onsets are found on its mel frames (`onset_frames`: a rise of 4.5 dB over the
   frames just before, within 60 dB of its loudest frame).
2. Each onset starts the training clip whose attack (its first latent frame, from its stored
   trajectory) lies nearest to the input's latent there. That clip's own trajectory then
   plays until the next onset: its attack, its decay, its pitch. Concatenative synthesis,
   clip by clip.
3. Matching each latent frame on its own to its nearest frames (kNN-VC's recipe, Baas et al.
   2023) was tried first. On one-shot families it picks a tail frame here, an attack there,
   so the result is neither. It is kept only for what no clip covers: an input that still
   sounds after the chosen clip has ended (a drone) takes each frame's K nearest frames.
4. Strength s blends the latents, (1 − s)·input + s·chosen, and the loudness:
   - each event is set to the input event's loudness (its mean power), keeping the clip's
     own attack and decay under it;
   - frames no clip covers keep the input's energy, frame by frame;
   - at s < 1 the input's own envelope is mixed in by 1 − s.

A stereo model's side rows move with their mid, which keeps the width the clips gave.
"""

from __future__ import annotations

from dataclasses import dataclass

import functools

import torch

from distill import DistillError
from distill.audio import LOG_MEL_FLOOR, AudioSettings
from distill.trajectories import TrajectoryBank
from distill.vocoder.network import mel_filterbank

# What `distill transform` and the page do unless asked (engine calls default to 0, a faithful
# reconstruction). At 0.5 a drum loop through a model of pitched notes moves a third of the way
# to their family (MMD² 11.5x -> 7.9x the floor) and a phrase of notes through a drum model
# nearly all the way (3.0x -> 1.7x), the rhythm kept (onset-envelope correlation 0.88 / 0.95)
# and the level within 1.6 dB: a transform now transforms, and 1 is one move away.
DEFAULT_STRENGTH = 0.5
ONSET_RISE_DB = 4.5
ONSET_GAP = 8  # mel frames
ONSET_RANGE_DB = 60.0  # onsets quieter than this under the loudest frame are not events
K_NEAREST = 4  # for frames no clip covers; kNN-VC's choice
NATS_PER_DB = 0.1151292546497023  # ln(10) / 20: a log magnitude per dB


@dataclass(frozen=True)
class FramePool:
    """The training clips' latent trajectories, as a transfer draws on them."""

    clips: list[torch.Tensor]  # (frames, D) each, from the clip's onset
    silence: torch.Tensor  # (D,)

    @property
    def attacks(self) -> torch.Tensor:
        """(clips, D): each clip's first latent frame."""
        return torch.stack([clip[0] for clip in self.clips])

    @property
    def frames(self) -> torch.Tensor:
        """(N, D): every frame of every clip."""
        return torch.cat(self.clips)

    def to(self, device: torch.device | str) -> "FramePool":
        return FramePool([clip.to(device) for clip in self.clips], self.silence.to(device))


def frame_pool(bank: TrajectoryBank) -> FramePool:
    return FramePool([t.latents.T.float().contiguous() for t in bank.trajectories], bank.silence.float())


def frame_energy(mel: torch.Tensor, settings: AudioSettings) -> torch.Tensor:
    """(n_mels, frames) magnitude log-mel → (frames,) each frame's energy as the waveform has
    it (log of magnitude): a band's squared value over its filter's width. Summed as they
    are, wide high bands would count for more than their share, and a bright input matched
    to a dark output came back 4.5 dB loud."""
    return torch.logsumexp(2 * mel - _log_widths(settings.mono).to(mel.device)[:, None], dim=0) / 2


@functools.lru_cache(maxsize=8)
def _log_widths(settings: AudioSettings) -> torch.Tensor:
    """(n_mels,) the log of each mel filter's total weight (made once per settings)."""
    return mel_filterbank(settings).sum(dim=0).clamp(min=1e-6).float().log()


def onset_frames(mel: torch.Tensor, settings: AudioSettings) -> list[int]:
    """The mel frames where the input's events start: its first sounding frame, and the frames
    whose energy rises ONSET_RISE_DB or more over the lowest of the three before it, each the
    steepest rise within ONSET_GAP frames (93 ms: a kick and a hat struck together, whose
    energy climbs over two frames, are one event)."""
    energy = frame_energy(mel, settings)
    sounding = energy > energy.max() - ONSET_RANGE_DB * NATS_PER_DB
    before = torch.stack([torch.roll(energy, k) for k in (1, 2, 3)]).amin(dim=0)
    before[:3] = energy.min()
    rise = torch.where(sounding, energy - before, torch.zeros_like(energy))
    onsets: list[int] = []
    for frame in (rise > ONSET_RISE_DB * NATS_PER_DB).nonzero().flatten().tolist():
        if onsets and frame - onsets[-1] < ONSET_GAP:
            if rise[frame] > rise[onsets[-1]]:
                onsets[-1] = frame
            continue
        onsets.append(frame)
    first = int(sounding.nonzero()[0]) if sounding.any() else None
    if first is not None and (not onsets or onsets[0] - first >= ONSET_GAP):
        onsets.insert(0, first)
    return onsets


def played_by_clips(latents: torch.Tensor, onsets: list[int], pool: FramePool,
                    sounding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """((D, L) the latents of the clips that play the input's events, (L,) each latent frame's
    event number (-1 before the first, or where no clip covers it)). `onsets` are latent frames,
    `sounding` (L,) says where the input still sounds."""
    frames = latents.T.float()
    out = pool.silence[None, :].repeat(frames.shape[0], 1)
    event = torch.full((frames.shape[0],), -1, dtype=torch.long)
    ends = onsets[1:] + [frames.shape[0]]
    attacks, everything = pool.attacks, pool.frames
    for number, (start, end) in enumerate(zip(onsets, ends)):
        clip = pool.clips[int(torch.cdist(frames[start:start + 1], attacks).argmin())]
        span = min(end - start, clip.shape[0])
        out[start:start + span] = clip[:span]
        event[start:start + span] = number
        rest = torch.arange(start + span, end)
        rest = rest[sounding[rest]]  # a drone outlasting its clip: each frame its nearest frames
        if len(rest):
            nearest = torch.cdist(frames[rest], everything).topk(min(K_NEAREST, len(everything)), largest=False)
            out[rest] = everything[nearest.indices].mean(dim=1)
    return out.T.to(latents.dtype), event


def transfer(model, given: torch.Tensor, settings: AudioSettings, pool: FramePool, strength: float) -> torch.Tensor:
    """`given` (feature rows, frames) played by the model's clips at `strength` (see the
    module's text): the features to synthesise."""
    if not 0.0 < strength <= 1.0:
        raise DistillError(f"transfer strength must be above 0 and at most 1, not {strength:g}")
    stride, n_mels = model.config.time_stride, settings.n_mels
    latents = model.encode_long(given)
    energy = frame_energy(given[:n_mels], settings)
    onsets = sorted({frame // stride for frame in onset_frames(given[:n_mels], settings)})
    latent_energy = torch.nn.functional.max_pool1d(energy[None, None], stride, stride, ceil_mode=True)[0, 0]
    sounding = latent_energy[: latents.shape[1]] > energy.max() - ONSET_RANGE_DB * NATS_PER_DB
    chosen, event = played_by_clips(latents, onsets, pool.to(latents.device), sounding.cpu())
    blended = latents + strength * (chosen - latents)
    decoded = model.decode_long(blended, given.shape[-1])
    per_frame = event.repeat_interleave(stride)[: given.shape[-1]].to(decoded.device)
    return _with_loudness(decoded, given, energy, per_frame, strength, settings)


def _mean_energy(energy: torch.Tensor) -> torch.Tensor:
    """The log magnitude of the frames' mean power (what their RMS is)."""
    return (torch.logsumexp(2 * energy, dim=0) - torch.log(torch.tensor(float(len(energy))))) / 2


def _with_loudness(decoded: torch.Tensor, given: torch.Tensor, want: torch.Tensor, event: torch.Tensor,
                   strength: float, settings: AudioSettings) -> torch.Tensor:
    """`decoded` with each event at the loudness of the input's (`given`, whose frame energies
    are `want`): its mean power, the clip's own envelope under it; frames no clip covers at the
    input's own energy, and the input's envelope mixed in by 1 − strength; every row of a frame
    moved alike; silent bands stay silent."""
    have = frame_energy(decoded[:settings.n_mels], settings)
    target = want.clone()
    for number in event.unique().tolist():
        if number >= 0:
            frames = event == number
            target[frames] = have[frames] + (_mean_energy(want[frames]) - _mean_energy(have[frames]))
    target = strength * target + (1 - strength) * want
    shift = (target - have).to(decoded.device)
    top = float(torch.maximum(decoded.max(), given.max()))
    moved = (decoded + shift[None, :]).clamp(min=LOG_MEL_FLOOR, max=top)
    return torch.where(decoded > LOG_MEL_FLOOR + 1e-3, moved, decoded)
