"""Pictures of sound, drawn from the same `log_mel` the model sees, with no plotting library.

A log-mel is scaled to 0..1 (from `_RANGE` under the loudest bin up to it) and put through a
small colour ramp, low frequencies at the bottom (`log_mel_image`, an RGB array). The web
app's spectrograms (`ui/spectrogram.py`) set that picture in an SVG with axes; the history
(`distill.history`) keeps a small PNG of each sound it holds (`write_thumbnail`), so the page
draws a thumbnail without decoding the audio again.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from distill.atomic import atomic_write_bytes
from distill.audio import LOG_MEL_FLOOR, AudioSettings, log_mel, read_audio

# Dark blue → purple → orange → pale yellow: quiet is dark, loud is bright.
_RAMP_POSITIONS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_RAMP_COLOURS = np.array([[8, 8, 32], [72, 18, 110], [182, 54, 96], [246, 140, 50], [252, 244, 180]], dtype=float)
# How far below the loudest bin the picture reaches (natural-log units: 8 ≈ 70 dB).
_RANGE = 8.0
THUMBNAIL_SIZE = (160, 48)  # width, height in pixels: a row of a list, not a figure


def colourize(values: np.ndarray) -> np.ndarray:
    """0..1 floats (H, W) → RGB uint8 (H, W, 3)."""
    values = np.clip(np.nan_to_num(values), 0.0, 1.0)
    channels = [np.interp(values, _RAMP_POSITIONS, _RAMP_COLOURS[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.uint8)


def log_mel_image(mel: np.ndarray, height: int | None = None, width: int | None = None) -> np.ndarray:
    """A (n_mels, frames) log-mel → an RGB picture, highest band on top: one pixel per band
    and frame, or stretched (nearest neighbour) to `height` × `width`."""
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or mel.size == 0:
        return np.zeros((height or 1, width or 1, 3), dtype=np.uint8)
    top = float(mel.max())
    bottom = max(LOG_MEL_FLOOR, top - _RANGE)
    scaled = (mel - bottom) / max(top - bottom, 1e-6)
    picture = colourize(scaled[::-1])  # row 0 is the top of the picture: the highest band
    height, width = height or picture.shape[0], width or picture.shape[1]
    rows = np.minimum(np.arange(height) * picture.shape[0] // height, picture.shape[0] - 1)
    cols = np.minimum(np.arange(width) * picture.shape[1] // width, picture.shape[1] - 1)
    return picture[rows][:, cols]


def png_bytes(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture, "RGB").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def write_thumbnail(audio: str | Path, target: str | Path, settings: AudioSettings,
                    size: tuple[int, int] = THUMBNAIL_SIZE) -> Path:
    """A `size` PNG of `audio`'s log-mel (mixed to mono), written atomically to `target`.
    Area-averaged down to size, not sampled: a long sound's short events stay visible."""
    mel = log_mel(read_audio(audio, settings.sample_rate), settings).numpy()
    picture = Image.fromarray(log_mel_image(mel), "RGB").resize(size, Image.Resampling.BOX)
    atomic_write_bytes(target, png_bytes(np.asarray(picture)))
    return Path(target)
