"""Spectrogram pictures of audio files, drawn from the same `log_mel` the model sees.

No plotting library: the log-mel is scaled to 0..1 (floor to the file's loudest bin), put
through a small colour ramp, flipped so low frequencies sit at the bottom, and stretched
with nearest-neighbour indexing to a fixed size. The result is an RGB uint8 array that
`gr.Image` shows as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill.audio import LOG_MEL_FLOOR, AudioSettings, log_mel, read_audio

# Dark blue → purple → orange → pale yellow: quiet is dark, loud is bright.
_RAMP_POSITIONS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_RAMP_COLOURS = np.array([[8, 8, 32], [72, 18, 110], [182, 54, 96], [246, 140, 50], [252, 244, 180]], dtype=float)
# How far below the loudest bin the picture reaches (natural-log units: 8 ≈ 70 dB).
_RANGE = 8.0


def colourize(values: np.ndarray) -> np.ndarray:
    """0..1 floats (H, W) → RGB uint8 (H, W, 3)."""
    values = np.clip(np.nan_to_num(values), 0.0, 1.0)
    channels = [np.interp(values, _RAMP_POSITIONS, _RAMP_COLOURS[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.uint8)


def log_mel_image(mel: np.ndarray, height: int = 160, width: int = 320) -> np.ndarray:
    """A (n_mels, frames) log-mel → an RGB picture of `height` × `width` pixels."""
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or mel.size == 0:
        return np.zeros((height, width, 3), dtype=np.uint8)
    top = float(mel.max())
    bottom = max(LOG_MEL_FLOOR, top - _RANGE)
    scaled = (mel - bottom) / max(top - bottom, 1e-6)
    picture = colourize(scaled[::-1])  # row 0 is the top of the picture: the highest band
    rows = np.minimum(np.arange(height) * picture.shape[0] // height, picture.shape[0] - 1)
    cols = np.minimum(np.arange(width) * picture.shape[1] // width, picture.shape[1] - 1)
    return picture[rows][:, cols]


def spectrogram_image(path: str | Path, settings: AudioSettings | None = None, height: int = 160,
                      width: int = 320) -> np.ndarray:
    """The log-mel spectrogram of an audio file as an RGB uint8 array."""
    settings = settings or AudioSettings()
    wave = read_audio(path, settings.sample_rate)
    return log_mel_image(log_mel(wave, settings).numpy(), height, width)
