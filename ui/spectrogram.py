"""Spectrogram pictures of audio files, drawn from the same `log_mel` the model sees.

No plotting library: the picture is `distill.pictures.log_mel_image` (the log-mel through a
small colour ramp, low frequencies at the bottom; the history's thumbnails are drawn by it too).
`spectrogram_svg` sets that picture, one pixel per mel band and frame, in an SVG with a time
axis in seconds and a frequency axis in Hz (ticks placed on the mel scale the bands follow),
at the width of its box: a `gr.HTML` shows it, with no image toolbar (no share button).
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import numpy as np

from distill.audio import AudioSettings, log_mel, read_audio
from distill.pictures import log_mel_image, png_bytes

# The SVG: its size in its own units (it scales to its box) and the margins the axes take.
WIDTH, HEIGHT = 640, 250
LEFT, RIGHT, TOP, BOTTOM = 56, 10, 8, 40
FREQUENCY_TICKS_HZ = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
TIME_STEPS_S = (0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300)
MAX_TIME_TICKS = 8
MIN_LABEL_GAP = 14  # between frequency labels, in the SVG's units (its font is 12)
_TEXT = "fill: var(--body-text-color, #374151); font-family: inherit"


def hz_to_mel(hz: float) -> float:
    """The HTK mel scale: torchaudio's MelSpectrogram default, which `log_mel` uses."""
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def frequency_ticks(settings: AudioSettings, min_gap: float = 0.0) -> list[tuple[float, str]]:
    """(height from the bottom, 0..1, label) for round frequencies inside the mel range, from the
    top down, leaving out one closer than `min_gap` (0..1) to the one above it: the mel scale
    crowds the low ones together."""
    low, high = hz_to_mel(settings.f_min), hz_to_mel(settings.f_max)
    ticks: list[tuple[float, str]] = []
    for hz in sorted(FREQUENCY_TICKS_HZ, reverse=True):
        height = (hz_to_mel(hz) - low) / (high - low)
        if settings.f_min < hz < settings.f_max and (not ticks or ticks[-1][0] - height >= min_gap):
            ticks.append((height, f"{hz // 1000}k" if hz >= 1000 else str(hz)))
    return ticks


def time_ticks(seconds: float, most: int = MAX_TIME_TICKS) -> list[float]:
    """Round times from 0 to `seconds` at the finest step giving at most `most` + 1 ticks."""
    step = next((s for s in TIME_STEPS_S if seconds / s <= most), TIME_STEPS_S[-1])
    return [round(i * step, 6) for i in range(int(seconds / step + 1e-9) + 1)]


def _png_data_uri(picture: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode("ascii")


def _text(x: float, y: float, content: str, anchor: str = "middle", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="12" style="{_TEXT}"{extra}>'
            f"{html.escape(content)}</text>")


def log_mel_svg(mel: np.ndarray, settings: AudioSettings, title: str = "log-mel spectrogram") -> str:
    """A (n_mels, frames) log-mel as an SVG: the picture, time (s) and frequency (Hz) axes."""
    mel = np.asarray(mel, dtype=np.float32)
    frames = mel.shape[1] if mel.ndim == 2 else 0
    seconds = settings.frames_to_seconds(frames)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    bottom = TOP + plot_h
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
             f'aria-label="{html.escape(title)}" class="spectrogram">',
             f'<image x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" preserveAspectRatio="none" '
             f'href="{_png_data_uri(log_mel_image(mel))}"/>']
    for fraction, label in frequency_ticks(settings, min_gap=MIN_LABEL_GAP / plot_h):
        y = bottom - fraction * plot_h
        parts.append(f'<g class="y-tick"><line x1="{LEFT - 4}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" '
                     f'stroke="currentColor"/>' + _text(LEFT - 7, y + 4, label, anchor="end") + "</g>")
    for tick in time_ticks(seconds) if seconds > 0 else []:
        x = LEFT + tick / seconds * plot_w
        parts.append(f'<g class="x-tick"><line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" '
                     f'stroke="currentColor"/>' + _text(x, bottom + 17, f"{tick:g}") + "</g>")
    parts.append(_text(LEFT + plot_w / 2, HEIGHT - 5, "time (s)"))
    parts.append(_text(13, TOP + plot_h / 2, "frequency (Hz)", extra=f' transform="rotate(-90 13 {TOP + plot_h / 2:.1f})"'))
    return "".join(parts) + "</svg>"


def spectrogram_svg(path: str | Path, settings: AudioSettings | None = None, title: str = "log-mel spectrogram") -> str:
    """The log-mel spectrogram of an audio file as an SVG with axes (see `log_mel_svg`)."""
    settings = settings or AudioSettings()
    wave = read_audio(path, settings.sample_rate)
    return log_mel_svg(log_mel(wave, settings).numpy(), settings, title)
