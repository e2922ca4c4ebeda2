"""Distill's Griffin-Lim is torchaudio's algorithm, result for result (only faster)."""

from __future__ import annotations

import pytest
import torch
import torchaudio.functional as AF

from distill.griffin_lim import griffin_lim


@pytest.mark.parametrize("shape", [(513, 40), (2, 513, 23)])
def test_it_gives_what_torchaudio_gives(shape):
    magnitude = torch.rand(shape, generator=torch.Generator().manual_seed(0)) ** 4
    window = torch.hann_window(1024)
    expected = AF.griffinlim(magnitude, window, 1024, 256, 1024, 1.0, 16, 0.99, None, False)
    made = griffin_lim(magnitude, 1024, 256, n_iter=16)
    assert made.shape == expected.shape
    # float rounding differs (another summation order) and momentum carries it: 1e-3 of the peak
    torch.testing.assert_close(made, expected, atol=1e-3 * float(expected.abs().max()), rtol=0)


def test_a_hop_that_does_not_divide_the_window_is_refused():
    with pytest.raises(ValueError, match="multiple of the hop"):
        griffin_lim(torch.rand(513, 10), 1024, 300)
