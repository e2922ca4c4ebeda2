"""The pictures the page draws itself, read without a browser: the loss chart (whole-number
epochs, an empty state, a legend without a title) and the log-mel spectrogram (time and
frequency axes, labels that do not overlap)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from distill.audio import AudioSettings
from ui.loss_chart import epoch_ticks, loss_chart_svg, value_ticks
from ui.spectrogram import MIN_LABEL_GAP, frequency_ticks, log_mel_svg, time_ticks
from ui.training_view import loss_frame


@pytest.mark.parametrize("total", [1, 2, 3, 5, 13, 40, 99, 500, 2000])
def test_epoch_ticks_are_whole_numbers_few_and_inside_the_run(total):
    ticks = epoch_ticks(1, total)
    assert ticks and all(isinstance(t, int) and 1 <= t <= total for t in ticks)
    assert len(ticks) <= 10 and ticks == sorted(set(ticks))
    assert ticks[-1] > total - (ticks[1] - ticks[0] if len(ticks) > 1 else 1)  # the axis reaches the end


def test_an_empty_chart_says_no_epochs_yet_on_an_integer_axis():
    svg = loss_chart_svg(loss_frame([]), 13)
    assert "no epochs yet" in svg and "curve" not in svg
    labels = re.findall(r'<g class="x-tick">.*?<text[^>]*>([^<]*)</text>', svg)
    assert labels == ["2", "4", "6", "8", "10", "12"]
    assert "<circle" not in svg


def test_the_chart_draws_each_epoch_of_each_curve_and_a_legend_without_a_title():
    rows = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.5 / e} for e in (1, 2, 3)]
    svg = loss_chart_svg(loss_frame(rows), 40)
    points = re.findall(r'data-curve="(\w+)" data-epoch="(\d+)"', svg)
    assert sorted(points) == sorted((c, str(e)) for c in ("train", "validation") for e in (1, 2, 3))
    assert re.findall(r'<g class="legend-item">.*?>(\w+)</text>', svg) == ["train", "validation"]
    assert "no epochs yet" not in svg and "curve" not in svg.replace("data-curve", "")


def test_value_ticks_cover_the_range_with_round_steps():
    ticks, decimals = value_ticks(1.55, 3.9)
    assert ticks[0] <= 1.55 and ticks[-1] >= 3.9 and decimals == 1
    assert len({round(b - a, 9) for a, b in zip(ticks, ticks[1:])}) == 1


def test_the_spectrogram_has_time_and_frequency_axes_with_labels_that_do_not_overlap():
    settings = AudioSettings()
    frames = settings.seconds_to_frames(2.3)
    svg = log_mel_svg(np.random.default_rng(0).normal(-5, 2, (settings.n_mels, frames)), settings, "Original 1")
    assert "time (s)" in svg and "frequency (Hz)" in svg and 'aria-label="Original 1"' in svg
    assert re.findall(r'<g class="x-tick">.*?>([\d.]+)</text>', svg) == ["0", "0.5", "1", "1.5", "2"]
    assert re.findall(r'<g class="y-tick">.*?>(\w+)</text>', svg) == ["20k", "10k", "5k", "2k", "1k", "500", "200"]
    heights = [h for h, _ in frequency_ticks(settings, min_gap=0.06)]
    assert all(a - b >= 0.06 for a, b in zip(heights, heights[1:]))
    assert MIN_LABEL_GAP >= 12  # the font size: labels closer than that overlap
    assert 'width="100%"' in svg and "data:image/png;base64," in svg  # it fills its box; no image toolbar


def test_time_ticks_are_round_and_few():
    assert time_ticks(2.3) == [0, 0.5, 1, 1.5, 2]
    assert time_ticks(1.0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert len(time_ticks(600)) <= 9
