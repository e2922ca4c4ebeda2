"""log-mel → audio in one place (`distill.synthesis`), and the import floors it makes possible:
no import circle anywhere in the package, synthesis below generation and the vocoder's
training, generation reaching the vocoder only through synthesis."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import itertools
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from distill import DistillError
from distill.audio import AudioSettings, griffin_lim, log_mel
from distill.synthesis import GRIFFIN_LIM, PRETRAINED, VOCODER, Synthesizer, fit_length
from distill.vocoder import Vocoder, load_vocoder, shipped, vocoder_preset, vocoder_slot
from distill.vocoder.shipped import shipped_slot, why_not_pretrained

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("distill", "ui")


# -- the import graph ---------------------------------------------------------------------------

def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _target(package: str, name: str) -> str:
    """What `from package import name` really imports: the submodule `package.name`, else
    the module that defines `name` (a lazily exported name lives in a submodule)."""
    if importlib.util.find_spec(package).submodule_search_locations is not None:
        if importlib.util.find_spec(f"{package}.{name}") is not None:
            return f"{package}.{name}"
    owner = getattr(getattr(importlib.import_module(package), name, None), "__module__", None) or package
    return owner if owner.startswith(package) else package


def imports_of(path: Path) -> set[str]:
    """Every distill/ui module `path` imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] in PACKAGES:
                found |= {_target(node.module, alias.name) for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))
    return {module_name(p): imports_of(p) for p in files}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), and self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    counter = itertools.count()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = next(counter)
        stack.append(v)
        for w in graph[v] & graph.keys():
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(group) > 1 or v in graph[v]:
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_its_way_back_to_itself(graph):
    assert "distill.synthesis" in graph and "distill.vocoder.listen" in graph
    assert circles(graph) == []


def test_synthesis_sits_below_generation_and_the_vocoder(graph):
    assert graph["distill.synthesis"] == {"distill", "distill.audio", "distill.stereo", "distill.vocoder.network",
                                          "distill.vocoder.shipped"}
    assert graph["distill.stereo"] == {"distill.audio", "distill.vocoder.network"}
    assert graph["distill.vocoder.shipped"] == {"distill.audio", "distill.vocoder.network"}
    above = {"distill.generate", "distill.transform"}  # (the vocoder's job shares the training lock and RNG code)
    for name, imported in graph.items():
        if name.startswith("distill.vocoder"):
            assert not imported & above, (name, imported & above)
    for name in ("distill.generate", "distill.transform"):
        assert "distill.synthesis" in graph[name]
        assert not {m for m in graph[name] if m.startswith("distill.vocoder")}, name


def test_each_module_imports_on_its_own_in_a_fresh_interpreter():
    """Import order matters to a circle: each of these is imported first, with nothing of
    distill loaded before it."""
    first = ["distill.synthesis", "distill.vocoder.network", "distill.vocoder", "distill.vocoder.data",
             "distill.vocoder.listen", "distill.vocoder.train", "distill.generate", "distill.transform",
             "distill.previews", "distill.train", "distill.export", "distill.cli", "ui.app"]
    script = f"""
import importlib, sys
for name in {first!r}:
    for loaded in [m for m in sys.modules if m.split('.')[0] in ('distill', 'ui')]:
        del sys.modules[loaded]
    importlib.import_module(name)
    if name == 'distill.synthesis':
        above = sorted(m for m in ('distill.generate', 'distill.train', 'distill.vocoder.train') if m in sys.modules)
        assert not above, f'distill.synthesis pulled in {{above}}'
print('ok')
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


# -- the synthesizer ----------------------------------------------------------------------------

SETTINGS = AudioSettings()


def tone_mel(seconds: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * SETTINGS.sample_rate)) / SETTINGS.sample_rate
    return log_mel(0.3 * torch.sin(2 * torch.pi * 330 * t), SETTINGS)


def test_without_a_vocoder_of_its_own_it_is_the_pretrained_one_and_deterministic():
    mel = tone_mel()
    synthesize = Synthesizer(SETTINGS)
    assert synthesize.kind == PRETRAINED
    wave = synthesize(mel)
    assert wave.shape == (mel.shape[-1] * SETTINGS.hop_length,) and wave.dtype == torch.float32
    torch.testing.assert_close(wave, load_vocoder(shipped_slot()).synthesize(mel, clamp=False))
    assert torch.equal(wave, Synthesizer(SETTINGS)(mel))


def test_griffin_lim_is_a_switch_and_decodes_other_mel_settings():
    mel = tone_mel()
    synthesize = Synthesizer(SETTINGS, griffin_lim=True)
    assert synthesize.kind == GRIFFIN_LIM
    wave = synthesize(mel)
    assert wave.shape == ((mel.shape[-1] - 1) * SETTINGS.hop_length,)
    torch.testing.assert_close(wave, griffin_lim(mel, SETTINGS))
    other = AudioSettings(n_mels=64, f_max=8000.0)  # the pretrained vocoder was made for the defaults
    assert Synthesizer(other).kind == GRIFFIN_LIM
    assert "n_mels 64" in why_not_pretrained(other) and why_not_pretrained(SETTINGS) is None


def test_missing_or_damaged_weights_fall_back_to_griffin_lim_with_a_warning(tmp_path, monkeypatch):
    mel = tone_mel()
    for name, content in (("missing.pt", None), ("damaged.pt", b"not a torch file")):
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        monkeypatch.setattr("distill.vocoder.shipped.SHIPPED", path)
        shipped.forget()
        with pytest.warns(RuntimeWarning, match=f"{'missing' if content is None else 'damaged'}.*Griffin-Lim"):
            synthesize = Synthesizer(SETTINGS)
        assert synthesize.kind == GRIFFIN_LIM
        torch.testing.assert_close(synthesize(mel), griffin_lim(mel, SETTINGS))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once per process, not once per sound
            Synthesizer(SETTINGS)
    shipped.forget()


def test_the_vocoder_is_used_loaded_once_and_not_clamped(monkeypatch):
    vocoder = Vocoder(vocoder_preset("tiny"), SETTINGS)
    slot = vocoder_slot(vocoder, {"epochs": 0})
    loads = []
    original = importlib.import_module("distill.synthesis").load_vocoder

    def counting(*args, **kwargs):
        loads.append(kwargs.get("settings"))
        return original(*args, **kwargs)

    monkeypatch.setattr("distill.synthesis.load_vocoder", counting)
    synthesize = Synthesizer(SETTINGS, slot)
    assert synthesize.kind == VOCODER and loads == []  # loaded on first use
    mel = tone_mel()
    torch.testing.assert_close(synthesize(mel), vocoder.synthesize(mel, clamp=False))
    loud = torch.full((SETTINGS.n_mels, 20), 9.0)  # louder than full scale: kept, so a caller can see it
    assert synthesize(loud).abs().max() > 1.0
    assert loads == [SETTINGS]  # once, checked against the model's mel settings
    assert Synthesizer(SETTINGS, slot, griffin_lim=True).kind == GRIFFIN_LIM


def test_a_vocoder_for_other_settings_and_a_wrong_shape_are_refused():
    slot = vocoder_slot(Vocoder(vocoder_preset("tiny"), SETTINGS), {})
    other = AudioSettings(n_mels=64, f_max=8000.0)
    with pytest.raises(DistillError, match="other mel settings"):
        Synthesizer(other, slot).load()
    with pytest.raises(DistillError, match="128 feature rows"):
        Synthesizer(SETTINGS)(torch.zeros(1, 128, 10))
    with pytest.raises(DistillError, match="128 feature rows"):
        Synthesizer(SETTINGS)(torch.zeros(64, 10))
    with pytest.raises(DistillError, match="144 feature rows"):  # a stereo model's: the mid's, the side's 16
        Synthesizer(AudioSettings(channels=2))(torch.zeros(128, 10))


def test_fit_length_crops_or_pads_with_silence():
    wave = torch.arange(1.0, 11.0)
    assert torch.equal(fit_length(wave, 4), wave[:4])
    assert torch.equal(fit_length(wave, 12), torch.cat([wave, torch.zeros(2)]))
    assert torch.equal(fit_length(wave, 10), wave)
