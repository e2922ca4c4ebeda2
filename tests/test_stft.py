"""`distill.stft` computes what torch.stft / torch.istft (centred, Hann) compute, to float rounding."""

from __future__ import annotations

import torch

from distill.stft import istft, stft


def test_the_inverse_is_torch_istft():
    spec = torch.randn(2, 513, 40, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    window = torch.hann_window(1024)
    expected = torch.istft(spec, 1024, 256, window=window, center=True, length=39 * 256)
    made = istft(spec.transpose(1, 2), window, 1024, 256, 39 * 256)
    torch.testing.assert_close(made, expected, atol=1e-6, rtol=0)


def test_the_analysis_is_torch_stft():
    wave = torch.randn(2, 5000, generator=torch.Generator().manual_seed(1))
    window = torch.hann_window(512)
    expected = torch.stft(wave, 512, 128, window=window, center=True, return_complex=True)
    torch.testing.assert_close(stft(wave, window, 512, 128).transpose(1, 2), expected, atol=1e-5, rtol=0)
