"""`.distillgan` model files: one self-contained file per trained model.

A model file is a `torch.save` of a dict of plain values (tensors, numbers, strings, bools,
None, lists, tuples and str-keyed dicts), read back with `torch.load(weights_only=True)`:

    format          "distillgan_model"
    format_version  2 (1: the earlier architecture, one global latent per segment; refused)
    model_config    ModelConfig.to_dict()
    model_state     the ConvVAE state dict
    audio_settings  AudioSettings.to_dict()
    analysis        where the training latents live (see `analyse_latents`)
    metadata        id, name, created, dataset, experiment, epochs, losses
    vocoder         None, or {"config": {...}, "state": {tensors}, "training": {...}}

The `vocoder` key is ALWAYS present; a model without its own vocoder stores None there. A
file without the key is not a valid model file.

Version 2 is the time-structured ConvVAE (a latent sequence along time). A version-1 file
holds the weights of the earlier global-latent network, which this code no longer has: it
is refused by its version, before any weight is looked at, with `EARLIER_VERSION_MESSAGE`.

Why torch.save + weights_only rather than safetensors: the file is nested (a state dict for
the model, another for the vocoder, tensors inside the analysis) and safetensors holds one
flat tensor map, so everything else would need a second, hand-rolled JSON layer with its own
naming scheme for nested tensors; and safetensors is not a dependency we have. The
weights_only unpickler accepts only tensors and plain containers and refuses every other
global, so nothing in a file can run code; the zip container gives CRC32s that we check on
every full load, so a damaged or truncated file is caught before its weights are used.
"""

from __future__ import annotations

import difflib
import io
import math
import pickle
import uuid
import warnings
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from distill import DistillError, __version__
from distill.audio import LOG_MEL_FLOOR, AudioSettings, resolve_device
from distill.model import ConvVAE, ModelConfig
from distill.atomic import atomic_write_bytes, ensure_space
from distill.workspace import Workspace, sanitize_filename

FORMAT = "distillgan_model"
FORMAT_VERSION = 3  # 3: full band (44.1 kHz, 128 mels to Nyquist) and stereo; 2 was 22,050 Hz mono
SUFFIX = ".distillgan"
# The `.distill` files of Distill's first generation (another format altogether).
V1_FORMAT = "distill_model"
V1_SUFFIX = ".distill"
V1_MESSAGE = "This model was saved in v1 format which is no longer supported. Please retrain your model."
# A `.distillgan` of an earlier format version: the same container, an architecture that is gone.
EARLIER_VERSION_MESSAGE = ("{name} was made by an earlier version of Distill; retrain it (train on its dataset "
                           "again and save the new model)")
REQUIRED_KEYS = ("model_config", "model_state", "audio_settings", "analysis", "metadata", "vocoder")
# How many principal directions the analysis keeps (the latent is rarely wider than this).
MAX_DIRECTIONS = 64


class ModelExistsError(DistillError):
    """A model of that name is already in the catalog; `suggestion` is a free name."""

    def __init__(self, name: str, suggestion: str):
        super().__init__(f"a model named {name!r} already exists: choose another name "
                         f"(e.g. {suggestion!r}) or overwrite it")
        self.name = name
        self.suggestion = suggestion


@dataclass
class ModelFile:
    """A loaded, validated `.distillgan` file. `state` and `vocoder` may be memory-mapped."""

    path: Path
    model_config: ModelConfig
    audio_settings: AudioSettings
    state: dict[str, torch.Tensor]
    analysis: dict[str, Any]
    metadata: dict[str, Any]
    vocoder: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION

    @property
    def name(self) -> str:
        return self.path.stem

    def build_model(self, device: torch.device | str = "cpu") -> ConvVAE:
        """A ConvVAE in eval mode with this file's weights, on `device`."""
        model = ConvVAE(self.model_config)
        try:
            model.load_state_dict(self.state, strict=True)
        except RuntimeError as exc:
            raise DistillError(f"{self.path.name}: the weights do not fit the stored architecture "
                               f"({str(exc).splitlines()[0]})") from exc
        return model.to(torch.device(device)).eval()

    def to_dict(self) -> dict[str, Any]:
        """The dict that is saved: everything plain."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_config": self.model_config.to_dict(),
            "model_state": self.state,
            "audio_settings": self.audio_settings.to_dict(),
            "analysis": self.analysis,
            "metadata": self.metadata,
            "vocoder": self.vocoder,
        }


# -- plain values -------------------------------------------------------------------------

def plain(value: Any, where: str = "value") -> Any:
    """A copy of `value` that `torch.load(weights_only=True)` can read back: numpy scalars
    and arrays become Python numbers and tensors; anything else that is not plain (a class
    instance, a function) is refused with the place it was found."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        # A view saves its whole storage: clone so a slice does not drag its parent along.
        if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size() or not tensor.is_contiguous():
            tensor = tensor.clone()
        return tensor
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value)).clone()
    if isinstance(value, (list, tuple)):
        items = [plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise DistillError(f"{where}: key {key!r} is not a string")
            out[key] = plain(item, f"{where}.{key}")
        return out
    raise DistillError(f"{where} is a {type(value).__name__}; a model file stores only plain values "
                       "(tensors, numbers, strings, lists, dicts)")


# -- loading ------------------------------------------------------------------------------

def _refused_names_v1(path: Path) -> bool:
    """Whether a file the safe loader refused carries the v1 marker. Looks at the bytes of
    its pickle, never unpickles them."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                pkl = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
                raw = archive.read(pkl) if pkl else b""
        else:
            raw = path.read_bytes()[: 1 << 20]
    except (OSError, zipfile.BadZipFile):
        return False
    return V1_FORMAT.encode() in raw and FORMAT.encode() not in raw


def _read_raw(path: Path, mmap: bool) -> Any:
    """torch.load with weights_only=True, every failure turned into a message."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    is_zip = head == b"PK\x03\x04"
    if not is_zip and not head.startswith(b"\x80"):
        raise DistillError(f"{path.name} is not a Distill model file")
    if is_zip and not mmap:
        # torch does not check the zip's CRC32s; a flipped byte in the weights would load.
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DistillError(f"{path.name} is truncated or corrupt ({exc})") from exc
        if bad is not None:
            raise DistillError(f"{path.name} is corrupt (checksum mismatch in {bad.split('/', 1)[-1]})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's pickle-protocol chatter about foreign files
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and is_zip)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            if _refused_names_v1(path):
                raise DistillError(V1_MESSAGE) from None
            raise DistillError(f"{path.name} was refused: it holds objects or code, not plain model data. "
                               "Nothing in it was run. Only load model files you trust to be Distill "
                               "models.") from None
        raise DistillError(f"{path.name} is not a Distill model file (or is corrupt): {exc}") from None
    except RuntimeError as exc:
        text = str(exc)
        if "central directory" in text or "failed reading zip" in text:
            raise DistillError(f"{path.name} is truncated or corrupt (an incomplete copy or download?)") from None
        if "not in a subdirectory" in text or "failed finding" in text or "locating file" in text:
            raise DistillError(f"{path.name} is not a Distill model file") from None
        raise DistillError(f"{path.name} is corrupt or not a Distill model file "
                           f"({text.splitlines()[0][:200]})") from None
    except (EOFError, ValueError, IndexError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise DistillError(f"{path.name} is truncated or corrupt "
                           f"({type(exc).__name__}: {str(exc)[:200]})") from None


def load_model_file(path: str | Path, mmap: bool = False) -> ModelFile:
    """Load and validate a `.distillgan` file. Checks, in order: the extension (v1), that the
    file is readable by the safe loader, the format marker, the version, then the fields;
    the weights are not put into a model here (see `ModelFile.build_model`).

    `mmap=True` maps the tensors instead of reading them (for the catalog: metadata only)
    and skips the CRC check."""
    path = Path(path)
    if path.suffix.lower() == V1_SUFFIX:
        raise DistillError(V1_MESSAGE)
    if not path.is_file():
        raise DistillError(f"no model file at {path}")
    raw = _read_raw(path, mmap)
    if not isinstance(raw, dict) or "format" not in raw:
        raise DistillError(f"{path.name} is not a Distill model file (no format marker)")
    marker = raw.get("format")
    if marker == V1_FORMAT:
        raise DistillError(V1_MESSAGE)
    if marker != FORMAT:
        raise DistillError(f"{path.name} is not a Distill model file (its format is {str(marker)[:60]!r})")
    version = raw.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and 1 <= version < FORMAT_VERSION:
        raise DistillError(EARLIER_VERSION_MESSAGE.format(name=path.name))
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise DistillError(f"{path.name} has model format version {version!r}, which this Distill "
                           f"({__version__}) cannot read; it reads version {FORMAT_VERSION}"
                           + (". Update Distill to open it." if newer else "."))
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise DistillError(f"{path.name} is damaged: missing {', '.join(missing)}")
    for key in ("model_config", "model_state", "audio_settings", "analysis", "metadata"):
        if not isinstance(raw[key], dict):
            raise DistillError(f"{path.name} is damaged: {key} is not a mapping")
    if raw["vocoder"] is not None and not isinstance(raw["vocoder"], dict):
        raise DistillError(f"{path.name} is damaged: vocoder is neither empty nor a mapping")
    if not all(isinstance(v, torch.Tensor) for v in raw["model_state"].values()):
        raise DistillError(f"{path.name} is damaged: model_state holds something other than tensors")
    try:
        config = ModelConfig.from_dict(raw["model_config"])
        settings = AudioSettings.from_dict(raw["audio_settings"])
    except (TypeError, ValueError, DistillError) as exc:
        raise DistillError(f"{path.name} is damaged: bad architecture or audio settings ({exc})") from None
    if settings.feature_rows != config.n_mels:
        raise DistillError(f"{path.name} is damaged: audio settings ({settings.n_mels} mels × {settings.channels} "
                           f"channels) do not match the model ({config.n_mels} feature rows)")
    return ModelFile(path=path, model_config=config, audio_settings=settings, state=raw["model_state"],
                     analysis=raw["analysis"], metadata=raw["metadata"], vocoder=raw["vocoder"],
                     format_version=version)


def validate_model_file(path: str | Path) -> ModelFile:
    """`load_model_file`, then put the weights into a model on the CPU to prove they fit."""
    model_file = load_model_file(path)
    model_file.build_model("cpu")
    return model_file


# -- writing ------------------------------------------------------------------------------

def save_model_file(path: str | Path, model_file: ModelFile) -> Path:
    """Write `model_file` to `path` atomically (a crash leaves the old file or the new one)."""
    path = Path(path)
    payload = plain(model_file.to_dict(), "model")
    buffer = io.BytesIO()  # a few MB: made in memory, so its size is known before the disk is asked
    torch.save(payload, buffer)
    ensure_space(path.parent, buffer.tell(), path.name)
    atomic_write_bytes(path, buffer.getbuffer())
    return path


def attach_vocoder(path: str | Path, slot: dict[str, Any] | None) -> None:
    """Set (or, with None, clear) the model file's vocoder slot, rewriting it atomically.
    A slot is {"config": {...}, "state": {name: tensor}, "training": {"epochs", "final_loss",
    "trained_at", ...}}, plain values only."""
    model_file = load_model_file(path)
    if slot is not None:
        if not isinstance(slot, dict) or not {"config", "state", "training"} <= set(slot):
            raise DistillError("a vocoder slot is a dict with config, state and training")
        slot = plain(slot, "vocoder")
    model_file.vocoder = slot
    save_model_file(model_file.path, model_file)


def new_metadata(name: str, *, dataset: dict[str, Any] | None = None, experiment: dict[str, Any] | None = None,
                 epochs_trained: int | None = None, train_loss: float | None = None,
                 val_loss: float | None = None) -> dict[str, Any]:
    """The metadata block of a fresh model file. `dataset` has name, clips, total_seconds;
    `experiment` has id, name, checkpoint, checkpoint_epoch, epochs_total."""
    def finite(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(float(x)) else float(x)

    return {
        "id": uuid.uuid4().hex,
        "name": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "distill_version": __version__,
        "dataset": dict(dataset or {}),
        "experiment": dict(experiment or {}),
        "epochs_trained": epochs_trained,
        "train_loss": finite(train_loss),
        "val_loss": finite(val_loss),
    }


# -- the latent analysis ------------------------------------------------------------------

# A latent frame counts as silence when every log-mel value it was encoded from lies within
# this many nats of the floor (about 9 dB): the padding after a clip's end, digital silence.
SILENCE_NATS = 1.0


@torch.no_grad()
def latent_frames_of(model: ConvVAE, segments: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Every latent frame (posterior mean) of every segment (B, n_mels, frames) whose source
    mel frames are not pure silence, as rows (N, D) in float64. When every frame is silence
    all are kept, so there is always something to describe."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stride = model.config.time_stride
    kept, everything = [], []
    try:
        for start in range(0, segments.shape[0], batch_size):
            batch = segments[start:start + batch_size].float()
            mu = model.encode(batch.to(device))[0].cpu().double()  # (b, D, L)
            frames = mu.shape[-1]
            padded = F.pad(batch, (0, frames * stride - batch.shape[-1]), value=LOG_MEL_FLOOR)
            loudest = padded.amax(dim=1).unflatten(-1, (frames, stride)).amax(dim=-1)  # (b, L)
            rows = mu.transpose(1, 2).reshape(-1, mu.shape[1])
            kept.append(rows[(loudest > LOG_MEL_FLOOR + SILENCE_NATS).reshape(-1)])
            everything.append(rows)
    finally:
        model.train(was_training)
    rows = torch.cat(kept)
    return rows if rows.shape[0] else torch.cat(everything)


def analyse_latents(model: ConvVAE, segments: torch.Tensor, batch_size: int = 256,
                    side_rows: int = 0) -> dict[str, Any]:
    """Where the training data lives in latent space: encode every segment (B, n_mels, frames)
    and describe its latent FRAMES (each a D-vector; frames encoded from pure silence left
    out), which is what generation walks through, frame by frame.

    latent_mean, latent_std (D,): per-dimension mean and spread of the latent frames.
    directions (K, D): principal directions (unit rows) of the centred frames, largest first.
    direction_std (K,): spread of the frames along each direction.
    explained_variance_ratio (K,): share of the total variance along each direction.
    n_segments: segments encoded; n_frames: latent frames described.
    direction_width (K,), for a stereo model (its last `side_rows` feature rows are the side's):
    how much a unit step along each direction widens the sound, in nats of side over mid.
    """
    if segments.ndim != 3 or segments.shape[0] == 0:
        raise DistillError("the latent analysis needs at least one (n_mels, frames) segment")
    frames = latent_frames_of(model, segments, batch_size)
    count, dim = frames.shape
    mean = frames.mean(dim=0)
    centred = frames - mean
    std = frames.std(dim=0) if count > 1 else torch.zeros(dim, dtype=torch.float64)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    keep = min(MAX_DIRECTIONS, vh.shape[0])
    variance = singular.pow(2) / max(count - 1, 1)
    total = float(variance.sum())
    ratio = variance / total if total > 0 else torch.zeros_like(variance)
    directions = vh[:keep]
    # Sign convention (SVD signs are arbitrary): each direction's largest component is positive,
    # so "+pc1" means the same thing every time the analysis is recomputed.
    flip = torch.sign(directions.gather(1, directions.abs().argmax(dim=1, keepdim=True)))
    directions = directions * torch.where(flip == 0, torch.ones_like(flip), flip)
    width = {"direction_width": direction_width(model, directions, side_rows, mean)} if side_rows else {}
    return {
        **width,
        "n_segments": int(segments.shape[0]),
        "n_frames": int(count),
        "latent_mean": mean.float(),
        "latent_std": std.float(),
        "directions": directions.float().contiguous(),
        "direction_std": variance[:keep].sqrt().float(),
        "explained_variance_ratio": ratio[:keep].float(),
    }


@torch.no_grad()
def direction_width(model: ConvVAE, directions: torch.Tensor, side_rows: int,
                    latent_mean: torch.Tensor) -> torch.Tensor:
    """(K,) the widening per unit step along each of `directions` (K, D), in nats of side
    energy over mid energy, at the typical latent frame (`latent_mean`): through the decoder's
    linear path (`ConvVAE.patch_out`, which carries most of what a latent frame says), each
    row's change weighted by its share of its channel's energy there. First order only, and
    cheap: what lets a perturbation leave a sound's image as its clip had it."""
    rows, weight = model.config.n_mels, model.patch_out.weight[:, :, 0]
    at = ((weight @ latent_mean.float() + model.patch_out.bias) * model.config.feature_std).reshape(rows, -1)
    change = (directions.float() @ weight.T * model.config.feature_std).reshape(len(directions), rows, -1)
    side, mid = slice(rows - side_rows, rows), slice(0, rows - side_rows)

    def energy_share(part: slice) -> torch.Tensor:  # each row's share of its channel's energy (rows are log magnitudes)
        return torch.softmax(2 * at[part].flatten(), 0)

    return change[:, side].flatten(1) @ energy_share(side) - change[:, mid].flatten(1) @ energy_share(mid)


# -- names --------------------------------------------------------------------------------

def model_path(ws: Workspace, name: str) -> Path:
    """`<models>/<name>.distillgan` for a catalog name (sanitised: no path parts)."""
    clean = sanitize_filename(name, fallback="")
    if clean.lower().endswith(SUFFIX):
        clean = clean[: -len(SUFFIX)]
    if not clean or clean != name.strip():
        raise DistillError(f"{name!r} is not a usable model name (try {sanitize_filename(name, 'model')!r})")
    return ws.models_dir / f"{clean}{SUFFIX}"


def free_name(ws: Workspace, name: str) -> str:
    """`name`, or `name-2`, `name-3`… whichever has no model file yet."""
    candidate, counter = name, 2
    while (ws.models_dir / f"{candidate}{SUFFIX}").exists():
        candidate, counter = f"{name}-{counter}", counter + 1
    return candidate


def target_path(ws: Workspace, name: str, overwrite: bool) -> Path:
    """Where a model called `name` goes; a clash without `overwrite` is a ModelExistsError."""
    path = model_path(ws, name)
    if path.exists() and not overwrite:
        raise ModelExistsError(path.stem, free_name(ws, path.stem))
    return path


def resolve_model(ws: Workspace, name_or_path: str | Path) -> Path:
    """A model named by catalog name (case-insensitive) or by path → its file."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.suffix.lower() == V1_SUFFIX:
        raise DistillError(V1_MESSAGE)
    if candidate.suffix.lower() == SUFFIX or "/" in text or "\\" in text:
        if candidate.is_file():
            return candidate.resolve()
        if candidate.suffix.lower() == SUFFIX and (ws.models_dir / candidate.name).is_file():
            return ws.models_dir / candidate.name
        raise DistillError(f"no model file at {candidate}")
    names = sorted(p.stem for p in ws.models_dir.glob(f"*{SUFFIX}") if not p.name.startswith("."))
    if text in names:
        return ws.models_dir / f"{text}{SUFFIX}"
    folded = [n for n in names if n.casefold() == text.casefold()]
    if len(folded) == 1:
        return ws.models_dir / f"{folded[0]}{SUFFIX}"
    close = difflib.get_close_matches(text, names, n=5, cutoff=0.5)
    close += [n for n in names if text.casefold() in n.casefold() and n not in close][: 5 - len(close)]
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else (
        f"; the catalog has {', '.join(map(repr, names[:10]))}" if names else "; the catalog is empty")
    raise DistillError(f"no model named {text!r}{hint}")


@dataclass
class OpenModel:
    """A model ready to make sound: its file, its network in eval mode, the device."""

    path: Path
    file: ModelFile
    network: ConvVAE
    device: torch.device


def open_model(ws: Workspace, name_or_path: str | Path, device: str = "auto") -> OpenModel:
    """Resolve, load and build a model for generation or transform: every problem (no such
    model, an earlier version, no CUDA) is a DistillError before any sound is made."""
    path = resolve_model(ws, name_or_path)
    model_file = load_model_file(path)
    torch_device = resolve_device(device)
    return OpenModel(path, model_file, model_file.build_model(torch_device), torch_device)

