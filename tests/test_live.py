"""Live models (`distill.live`): the TorchScript file nn~ and NN.ar load, checked as a host
uses it: `torch.jit.load`, every method at its declared shapes, buffers fed one after another
as nn~ does, the seams between them measured against one whole call."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from distill.audio import LOG_MEL_FLOOR, AudioSettings, features, read_audio
from distill.cli import main
from distill.live import export_live, export_live_model, seam_db
from distill.model import ConvVAE, preset
from distill.modelfile import ModelFile
from distill.trajectories import build_bank

BUFFERS = (2048, 4096, 8192, 16384)


def synthetic_model_file(channels: int, folder: Path) -> ModelFile:
    """An untrained tiny model (its linear path fitted to random features) with a bank of three
    random clips: enough to pin the plumbing of a stereo model without training one."""
    torch.manual_seed(channels)
    settings = AudioSettings(channels=channels)
    config = replace(preset("tiny"), n_mels=settings.feature_rows)
    model = ConvVAE(config)
    model.fit_linear_path((-5 + 2 * torch.randn(16, settings.feature_rows, 32)).clamp(min=LOG_MEL_FLOOR))
    with torch.no_grad():
        for p in model.parameters():  # the deep path too, so that it is measured and streamed
            p.add_(0.01 * torch.randn_like(p))
    clips = [(f"c{i}", (-4 + 2 * torch.randn(settings.feature_rows, 40 + 8 * i)).clamp(min=LOG_MEL_FLOOR))
             for i in range(3)]
    bank = build_bank(model.eval(), clips, settings, -20.0)
    return ModelFile(folder / f"synthetic{channels}.distillgan", config, settings,
                     {k: v.clone() for k, v in model.state_dict().items()}, {"trajectories": bank.to_plain()}, {})


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A host plays a model on one audio thread; on this shared 2-core machine two threads
    contend with the other processes and run 10 times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def live_files(tmp_path_factory, trained_example) -> dict[str, Path]:
    """mono: the trained example model (default preset); stereo: a synthetic stereo one."""
    folder = tmp_path_factory.mktemp("live")
    ws, _, model_file, _ = trained_example
    mono = export_live_model(ws, model_file.path, folder / "example.ts")
    stereo = export_live(synthetic_model_file(2, folder), folder / "stereo.ts")
    return {"mono": Path(mono["path"]), "stereo": Path(stereo["path"])}


def load(path: Path) -> torch.jit.ScriptModule:
    return torch.jit.load(str(path))


def nn_tilde_loop(model, method: str, signal: torch.Tensor, buffer: int) -> torch.Tensor:
    """What nn~ does: the method called on consecutive buffers, the outputs joined."""
    _, in_ratio, _, _ = [int(v) for v in getattr(model, f"{method}_params")]
    step = buffer // in_ratio
    with torch.no_grad():
        return torch.cat([getattr(model, method)(signal[..., i:i + step]) for i in range(0, signal.shape[-1], step)], -1)


def clip_signal(trained_example, channels: int, batch: int, seconds: float = 3.5) -> torch.Tensor:
    """Training clips one after another, 65,536·k samples: real sounds with real onsets."""
    clips = trained_example[3]
    wave = torch.cat([read_audio(p, 44100) for p in clips[:6]])
    samples = int(seconds * 44100) // 16384 * 16384
    wave = wave.repeat(math.ceil(samples / wave.shape[0]))[:samples]
    x = torch.stack([torch.roll(wave, 5000 * b) for b in range(batch)]).unsqueeze(1)
    return x.repeat(1, channels, 1) if channels == 1 else torch.cat([x, 0.5 * torch.roll(x, 300, -1)], 1)


@pytest.mark.parametrize("kind", ["mono", "stereo"])
def test_the_file_loads_with_torch_jit_load_and_declares_the_nn_tilde_contract(live_files, kind):
    model = load(live_files[kind])
    channels = 1 if kind == "mono" else 2
    assert model.get_methods() == ["forward", "encode", "decode", "random"]
    assert model.get_attributes() == ["seed"] and model.seed_params.tolist() == [1.0]  # one int, as nn~ reads it
    d = int(model.full_latent_size)
    assert int(model.sampling_rate) == 44100 and model.channels == channels
    assert [int(v) for v in model.forward_params] == [channels, 1, channels, 1]
    assert [int(v) for v in model.encode_params] == [channels, 1, d, 2048]
    assert [int(v) for v in model.decode_params] == [d, 2048, channels, 1]
    assert [int(v) for v in model.random_params] == [1, 1, channels, 1]
    for method in model.get_methods():
        ratios = [int(v) for v in getattr(model, f"{method}_params")][1::2]
        assert all(r & (r - 1) == 0 for r in ratios)  # powers of two
        assert len(getattr(model, f"{method}_input_labels")) == int(getattr(model, f"{method}_params")[0])
        assert len(getattr(model, f"{method}_output_labels")) == int(getattr(model, f"{method}_params")[2])
    assert model.get_latency() == model.latency > 0 and model.latency % 512 == 0
    assert model.get_seed() == 0 and model.set_seed(7) == 0 and model.get_seed() == 7


@pytest.mark.parametrize("kind", ["mono", "stereo"])
@pytest.mark.parametrize("batch", [1, 4])
def test_every_method_gives_the_declared_shapes(live_files, kind, batch):
    model = load(live_files[kind])
    n = 4096
    for method in model.get_methods():
        cin, rin, cout, rout = [int(v) for v in getattr(model, f"{method}_params")]
        with torch.no_grad():
            out = getattr(model, method)(0.1 * torch.randn(batch, cin, n // rin))
        assert out.shape == (batch, cout, n // rout) and torch.isfinite(out).all(), method


@pytest.mark.parametrize("kind", ["mono", "stereo"])
def test_buffers_fed_as_nn_tilde_does_give_one_whole_calls_audio(live_files, trained_example, kind):
    """No clicks at the joins: 2,048 to 16,384-sample buffers at batch 1 and 4, every method,
    within -50 dB of one call with the whole signal (in practice float rounding, ~-90 dB)."""
    model = load(live_files[kind])
    channels, latency = int(model.channels), int(model.latency)
    for batch in (1, 4):
        x = clip_signal(trained_example, channels, batch)
        with torch.no_grad():
            model.reset()
            whole = model(x)
            model.reset()
            latents = model.encode(x)
        assert float(whole[..., latency:].abs().max()) > 1e-4  # a sound, not silence (the stereo stand-in is untrained and quiet)
        for buffer in BUFFERS if batch == 1 else (2048, 16384):
            model.reset()
            assert seam_db(whole, nn_tilde_loop(model, "forward", x, buffer), latency) <= -50, (batch, buffer)
            model.reset()
            assert seam_db(latents, nn_tilde_loop(model, "encode", x, buffer)) <= -50, (batch, buffer)
        model.reset()
        decoded = model.decode(latents)
        model.reset()
        assert seam_db(decoded, nn_tilde_loop(model, "decode", latents, 4096)) <= -50
        assert seam_db(whole, decoded) <= -50  # forward is encode then decode


def test_forward_comes_back_after_the_declared_latency(live_files, trained_example):
    """The trained model's output envelope lags the input's by `latency` (within a hop)."""
    model = load(live_files["mono"])
    x = clip_signal(trained_example, 1, 1, seconds=6.0)
    with torch.no_grad():
        y = model(x)
    hop, latency = 512, int(model.latency)

    def envelope(w: torch.Tensor) -> torch.Tensor:
        e = torch.log(w.reshape(-1, hop).pow(2).mean(1) + 1e-8)
        return e - e.mean()

    ex, ey = envelope(x[0, 0]), envelope(y[0, 0])
    lags = range(0, 2 * latency // hop)
    score = [float((ex[:len(ex) - lag] * ey[lag:]).mean()) for lag in lags]
    assert abs(max(lags, key=lambda k: score[k]) * hop - latency) <= hop


def test_live_encode_is_the_models_encoder_on_the_same_frames(live_files, trained_example):
    """Latent frame l of `encode` is the file's encoder on mel frames 4l - 4·enc_right - 1 …
    (the one-hop framing delay): the live model hears what `distill transform` hears."""
    _, _, model_file, _ = trained_example
    live = load(live_files["mono"])
    x = clip_signal(trained_example, 1, 1)
    with torch.no_grad():
        z = live.encode(x)[0]
        mel = features(x[0, 0], model_file.audio_settings)
        start = 3  # offline frame 3 is live frame 4: a latent boundary
        offline = model_file.build_model().encode(mel[None, :, start:])[0][0]
    first = 1 + int(live.enc_right) + 12  # past the start, and far from either end's padding
    shift = first - int(live.enc_right) - 1
    a, b = z[:, first:first + 40], offline[:, shift:shift + 40]
    assert (a - b).abs().max() < 1e-3 * b.abs().max()


def test_the_same_calls_give_the_same_audio_and_the_seed_picks_the_trajectories(live_files):
    one, two = load(live_files["mono"]), load(live_files["mono"])
    x = 0.1 * torch.randn(1, 1, 65536)
    with torch.no_grad():
        assert torch.equal(one(x), two(x))
        silence = torch.zeros(1, 1, 8192)
        a = torch.cat([one.random(silence) for _ in range(12)], -1)
        b = torch.cat([two.random(silence) for _ in range(12)], -1)
        assert torch.equal(a, b) and float(a.abs().max()) > 1e-3
        two.set_seed(1)
        c = torch.cat([two.random(silence) for _ in range(12)], -1)
    assert not torch.equal(a, c)


def test_a_buffer_that_is_not_a_whole_latent_frame_is_refused(live_files):
    model = load(live_files["stereo"])
    with pytest.raises(Exception, match="multiple of 2048"):
        model(torch.zeros(1, 2, 1000))


def test_cli_export_live_prints_the_file_and_its_latency(trained_example, tmp_path, capsys):
    ws, _, model_file, _ = trained_example
    out = tmp_path / "example"
    assert main(["--workspace", str(ws.root), "export-live", str(model_file.path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "example.ts").is_file() and "example.ts" in printed
    assert "latency" in printed and "samples" in printed and "forward" in printed and "2048" in printed
