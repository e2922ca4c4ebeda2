"""The Catalog tab's Generate panel: new sounds from the selected model, in three modes (random,
variations of a clip, a morph from A to B), heard in a grid of players, and kept as a sample
pack (a zip to download).

The engine does the work (`distill.generate.generate_sounds`, `distill.pack.make_pack`); this
panel gathers the settings, one set for both buttons, so the pack holds the sounds the
players played (same seeds, same sounds).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from distill import DistillError
from distill.generate import GeneratedSound, generate_sounds, model_sounds
from distill.pack import make_pack
from distill.directions import MEANINGS, NAMES
from distill.presets import Preset, delete_preset, list_presets, rename_preset, save_preset
from distill.workspace import Workspace
from ui.common import (format_controls, handle_errors, instrument_choice, instrument_formats, instrument_line,
                       output_format)
from ui.history_panel import remember_sounds

SOUND_SLOTS = 8  # the most sounds one Generate makes (and players shown)
GRID_COLUMNS = 2  # players per row: the panel is ~570 px wide at 1280; 4 sounds make a 2 × 2 grid
DIRECTION_SLOTS = 4  # principal-direction sliders (pc1..pc4), under "More directions"
NAMED = NAMES  # the named sliders, each shown when the picked model's direction is reliable
MODES = {"Random": "random", "Variations of a clip": "variation", "Morph A → B": "morph"}
TEMPERATURE_LABELS = {"random": "Temperature: 0 = the most typical clip, 1 = as varied as the clips",
                      "variation": "Distance of the farthest variation (0 = the clip itself)"}
PACK_SLOTS = 24  # the most sounds one pack holds from the page (the CLI takes any number)


@dataclass(frozen=True)
class Request:
    """What the panel's settings ask for, as the engine's keyword arguments."""

    kwargs: dict[str, Any]

    @classmethod
    def from_page(cls, mode_label: str, n: float, seed_value: Any, temperature: float, seconds: Any,
                  clip: str | None, upload: str | None, morph_a: str | None, morph_b: str | None,
                  steps: float, griffin: bool, offsets: tuple[float, ...], named: tuple[float, ...] = ()) -> "Request":
        mode = MODES.get(mode_label, "random")
        like = upload or clip or None
        if mode == "variation" and not like:
            raise DistillError("pick a training clip to vary, or upload a sound")
        if mode == "morph" and not (morph_a and morph_b):
            raise DistillError("pick both ends of the morph, A and B")
        return cls({
            "mode": mode,
            "n": int(steps) if mode == "morph" else int(n),
            "seed": None if seed_value in (None, "") else int(seed_value),
            "temperature": float(temperature),
            "duration": float(seconds) if seconds not in (None, "", 0) else None,
            "like": like if mode == "variation" else None,
            "morph_ends": (morph_a, morph_b) if mode == "morph" else None,
            "offsets": {k + 1: float(v) for k, v in enumerate(offsets) if v} or None,
            "directions": named_values(named) or None,
            "griffin_lim": bool(griffin),
        })


def named_values(named: tuple[float, ...]) -> dict[str, float]:
    """The named sliders' values that are not 0, by name (hidden sliders sit at 0)."""
    return {name: float(v) for name, v in zip(NAMED, named) if v}


def page_preset(mode_label: str, temperature: float, seconds: Any, clip: str | None, upload: str | None,
                morph_a: str | None, morph_b: str | None, griffin: bool, offsets: tuple[float, ...],
                named: tuple[float, ...] = ()) -> Preset:
    """The panel's settings as a preset (what `distill generate --save-preset` keeps)."""
    mode = MODES.get(mode_label, "random")
    if mode == "variation" and upload:
        raise DistillError("a preset keeps a training clip, not an uploaded sound: pick a clip to keep it")
    return Preset(mode=mode, temperature=float(temperature),
                  duration=float(seconds) if seconds not in (None, "", 0) else None,
                  offsets={k + 1: float(v) for k, v in enumerate(offsets) if v}, directions=named_values(named),
                  like=clip if mode == "variation" else None,
                  morph=(morph_a, morph_b) if mode == "morph" and morph_a and morph_b else None,
                  griffin_lim=bool(griffin))


def sound_label(index: int, sound: GeneratedSound) -> str:
    """A player's label, short enough for one line: `3 · harp_Cs5 · seed 12`, a morph step as
    `3 · 50 % of the way A → B`."""
    spec = sound.spec
    if spec.mode == "morph":
        return f"{index + 1} · {spec.position:.0%} of the way A → B"
    source = Path(spec.like).stem if spec.mode == "variation" and spec.like else Path(sound.recipe.split(",")[0]).stem
    detail = f"distance {spec.temperature:.2f}" if spec.mode == "variation" else f"seed {spec.seed}"
    return f"{index + 1} · {source[:28]} · {detail}"


@dataclass
class GeneratePanel:
    directions: list[gr.Slider]  # the catalog shows as many as the picked model has
    named: list[gr.Slider]  # NAMED, in order: the catalog shows the picked model's reliable ones
    # What the history panel sets ("vary this", "morph from this") and follows (a batch made).
    mode: gr.Radio | None = None
    clip: gr.Dropdown | None = None
    upload: gr.File | None = None
    morph_a: gr.Dropdown | None = None
    made: Any = None  # the Generate click's event


def build(ws: Workspace, model: gr.Dropdown) -> GeneratePanel:
    mode = gr.Radio(list(MODES), value="Random", label="Make", elem_id="gen-mode")
    with gr.Row(elem_classes=["bottom-aligned"]):
        count = gr.Slider(1, SOUND_SLOTS, value=4, step=1, label="Sounds", elem_id="gen-n")
        seed = gr.Number(label="Seed (sound i uses seed + i)", value=0, precision=0, elem_id="gen-seed", scale=2)
        dice = gr.Button("Random seed", size="md", scale=1, min_width=120)
    with gr.Row(visible=False, elem_id="gen-like-row") as like_row:
        clip = gr.Dropdown(label="Training clip to vary", choices=[], value=None, allow_custom_value=True,
                           elem_id="gen-like")
        upload = gr.File(label="…or any sound", file_types=["audio"], height=120, elem_id="gen-like-upload")
    with gr.Row(visible=False, elem_id="gen-morph-row") as morph_row:
        morph_a = gr.Dropdown(label="A (a clip, or seed:N)", choices=[], allow_custom_value=True, elem_id="gen-morph-a")
        morph_b = gr.Dropdown(label="B (a clip, or seed:N)", choices=[], allow_custom_value=True, elem_id="gen-morph-b")
        steps = gr.Slider(2, SOUND_SLOTS, value=5, step=1, label="Steps from A to B", elem_id="gen-steps")
    with gr.Row():
        temperature = gr.Slider(0.0, 2.0, value=1.0, step=0.05, elem_id="gen-temperature",
                                label=TEMPERATURE_LABELS["random"])
        duration = gr.Number(label="Duration in s (0 = like the clips)", value=0, minimum=0, elem_id="gen-duration")
    hint = gr.Markdown(elem_id="gen-hint")
    with gr.Row(elem_id="gen-named"):
        named = [gr.Slider(-1.0, 1.0, value=0.0, step=0.1, label=name, info=MEANINGS[name], visible=False,
                           elem_id=f"gen-{name}", min_width=160) for name in NAMED]
    with gr.Accordion("More directions (pc1…pc4), Griffin-Lim", open=False, elem_id="gen-more"):
        gr.Markdown("<small>Move along the directions in which the training sounds differ most, "
                    "in units of their spread.</small>")
        directions = [gr.Slider(-3.0, 3.0, value=0.0, step=0.1, label=f"pc{k + 1}") for k in range(DIRECTION_SLOTS)]
        griffin_lim = gr.Checkbox(label="Griffin-Lim instead of the vocoder", value=False)
    with gr.Accordion("Presets", open=False, elem_id="gen-presets"):
        with gr.Row(elem_classes=["bottom-aligned"]):
            preset = gr.Dropdown(label="Use a preset", choices=[], value=None, elem_id="gen-preset", scale=2)
            preset_name = gr.Textbox(label="Name", placeholder="e.g. soft low", elem_id="gen-preset-name", scale=2)
        with gr.Row():
            save_button = gr.Button("Save these settings", size="sm", elem_id="gen-preset-save")
            rename_button = gr.Button("Rename the preset", size="sm", elem_id="gen-preset-rename")
            delete_button = gr.Button("Delete the preset", size="sm", elem_id="gen-preset-delete")
    generate_button = gr.Button("Generate", variant="primary", elem_id="gen-run")
    players = []
    for row in range(SOUND_SLOTS // GRID_COLUMNS):
        with gr.Row(equal_height=True):
            players += [gr.Audio(label=f"Sound {row * GRID_COLUMNS + i + 1}", type="filepath", interactive=False,
                                 visible=False, buttons=["download"], elem_id=f"gen-sound-{row * GRID_COLUMNS + i}",
                                 min_width=200) for i in range(GRID_COLUMNS)]
    with gr.Group():
        gr.Markdown("<small>**Sample pack**: these settings as trimmed sounds, each matched to the clips' loudness "
                    "(LUFS) under a -1 dBTP true-peak ceiling, in a zip with pack.json to make any sound again "
                    "(a morph packs its steps).</small>", padding=True)
        with gr.Row(elem_classes=["bottom-aligned"]):
            pack_size = gr.Slider(1, PACK_SLOTS, value=12, step=1, label="Sounds in the pack", elem_id="gen-pack-n",
                                  scale=2)
            pack_format, pack_rate = format_controls("WAV 24-bit")
        with gr.Row(elem_classes=["bottom-aligned"]):
            pack_instruments = instrument_choice("gen-pack-instrument")
            pack_button = gr.Button("Make the pack", elem_id="gen-pack", scale=1, min_width=140)
            pack_download = gr.DownloadButton("Download the pack (.zip)", visible=False, elem_id="gen-pack-download",
                                              scale=1, min_width=140)
        pack_summary = gr.Markdown(elem_id="gen-pack-summary", padding=True)
    settings = [mode, count, seed, temperature, duration, clip, upload, morph_a, morph_b, steps, griffin_lim,
                *directions, *named]

    def request(mode_label, n, seed_value, temp, seconds, clip_name, upload_path, a, b, k, griffin, *sliders) -> Request:
        return Request.from_page(mode_label, n, seed_value, temp, seconds, clip_name, upload_path, a, b, k, griffin,
                                 tuple(sliders[:DIRECTION_SLOTS]), tuple(sliders[DIRECTION_SLOTS:]))

    @handle_errors
    def show_mode(mode_label: str):
        chosen = MODES.get(mode_label, "random")
        return (gr.update(visible=chosen == "variation"), gr.update(visible=chosen == "morph"),
                gr.update(visible=chosen != "morph"),
                gr.update(visible=chosen != "morph", label=TEMPERATURE_LABELS.get(chosen, TEMPERATURE_LABELS["random"])))

    @handle_errors
    def pick_model(name: str | None):
        if not name:
            return (*[gr.update(choices=[], value=None)] * 3, "")
        sounds = model_sounds(ws, name)
        first, second = (sounds.clips + sounds.clips)[:2] if sounds.clips else (None, None)
        return (gr.update(choices=sounds.clips, value=sounds.clips[0] if sounds.clips else None),
                gr.update(choices=sounds.clips, value=first),
                gr.update(choices=sounds.clips, value=sounds.clips[-1] if sounds.clips else second),
                f"<small>Made from the model's {len(sounds.clips)} training clips; a sound is "
                f"{sounds.default_seconds:.2f} s (their median length) unless you set a duration.</small>")

    def preset_choices(name: str | None, value: str | None = None):
        names = list(list_presets(ws, name)) if name else []
        return gr.update(choices=names, value=value if value in names else None)

    @handle_errors
    def use_preset(name: str | None, chosen: str | None):
        if not name or not chosen:
            return (gr.update(),) * (8 + DIRECTION_SLOTS + len(NAMED))
        kept = list_presets(ws, name)[chosen]
        label = next(k for k, v in MODES.items() if v == kept.mode)
        morph_a, morph_b = kept.morph or (None, None)
        return (gr.update(value=label), kept.temperature, kept.duration or 0,
                gr.update(value=kept.like) if kept.like else gr.update(), gr.update(value=morph_a) if morph_a else gr.update(),
                gr.update(value=morph_b) if morph_b else gr.update(), kept.griffin_lim, chosen,
                *[kept.offsets.get(k + 1, 0.0) for k in range(DIRECTION_SLOTS)],
                *[kept.directions.get(name, 0.0) for name in NAMED])

    @handle_errors
    def save(name: str | None, preset_label: str, mode_label, temp, seconds, clip_name, upload_path, a, b, griffin,
             *sliders):
        if not name:
            raise DistillError("pick a model first")
        kept = save_preset(ws, name, preset_label, page_preset(mode_label, temp, seconds, clip_name, upload_path, a, b,
                                                               griffin, tuple(sliders[:DIRECTION_SLOTS]),
                                                               tuple(sliders[DIRECTION_SLOTS:])))
        gr.Info(f"Settings kept as preset “{kept}”.")
        return preset_choices(name, kept)

    @handle_errors
    def rename(name: str | None, chosen: str | None, new: str):
        if not name or not chosen:
            raise DistillError("pick a preset to rename, and type its new name")
        return preset_choices(name, rename_preset(ws, name, chosen, new))

    @handle_errors
    def delete(name: str | None, chosen: str | None):
        if not name or not chosen:
            raise DistillError("pick a preset to delete")
        delete_preset(ws, name, chosen)
        return preset_choices(name)

    @handle_errors
    def generate(name: str | None, *values, progress=gr.Progress()):
        if not name:
            raise DistillError("pick a model first")
        asked = request(*values)
        def step(done: int, total: int) -> None:
            progress(done / total, desc=f"sound {min(done + 1, total)} of {total}")

        sounds = generate_sounds(ws, name, progress=step, **asked.kwargs)
        remember_sounds(ws, name, sounds, asked.kwargs["griffin_lim"])
        updates = [gr.update(value=str(sounds[i].path), visible=True, label=sound_label(i, sounds[i]))
                   if i < len(sounds) else gr.update(value=None, visible=False) for i in range(SOUND_SLOTS)]
        return tuple(updates)

    @handle_errors
    def pack(name: str | None, size: float, format_label: str, rate_label: str, instrument_labels: list[str],
             *values, progress=gr.Progress()):
        if not name:
            raise DistillError("pick a model first")
        fmt = output_format(format_label, rate_label)
        asked = request(*values)
        kwargs = dict(asked.kwargs)
        if kwargs["mode"] != "morph":
            kwargs["n"] = int(size)
        def step(done: int, total: int) -> None:
            progress(done / total, desc=f"{done} of {total} sounds")

        result = make_pack(ws, name, progress=step, fmt=fmt, instruments=instrument_formats(instrument_labels),
                           **kwargs)
        manifest = result.manifest
        limited = sum(1 for f in result.files if f["peak_limited"])
        note = f" ({limited} held under it by the -1 dBTP ceiling)" if limited else ""
        channels = "stereo" if manifest["channels"] == 2 else "mono"
        return (gr.update(value=str(result.zip_path), visible=True, label="Download the .zip"),
                f"<small>**{len(result.files)} sounds** in `{result.folder}`: trimmed, at the clips' median "
                f"loudness, {manifest['loudness_target_lufs']:g} LUFS{note}; "
                f"{fmt.describe(manifest['model_sample_rate'])} {channels}, with `pack.json` to make any of "
                f"them again.{instrument_line(manifest)}</small>")

    mode.change(show_mode, [mode], [like_row, morph_row, count, temperature], api_visibility="private",
                show_progress="hidden")
    model.change(pick_model, [model], [clip, morph_a, morph_b, hint], api_visibility="private", show_progress="hidden")
    model.change(handle_errors(preset_choices), [model], [preset], api_visibility="private", show_progress="hidden")
    preset.input(use_preset, [model, preset],
                 [mode, temperature, duration, clip, morph_a, morph_b, griffin_lim, preset_name, *directions, *named],
                 api_name="use_preset", show_progress="hidden")
    kept_settings = [mode, temperature, duration, clip, upload, morph_a, morph_b, griffin_lim, *directions, *named]
    save_button.click(save, [model, preset_name, *kept_settings], [preset], api_name="save_preset")
    rename_button.click(rename, [model, preset, preset_name], [preset], api_name="rename_preset")
    delete_button.click(delete, [model, preset], [preset], api_name="delete_preset")
    dice.click(lambda: random.SystemRandom().randrange(2**31), None, [seed], api_visibility="private",
               show_progress="hidden")
    made = generate_button.click(generate, [model, *settings], players, api_name="generate")
    pack_button.click(pack, [model, pack_size, pack_format, pack_rate, pack_instruments, *settings],
                      [pack_download, pack_summary],
                      api_name="pack")
    return GeneratePanel(directions=directions, named=named, mode=mode, clip=clip, upload=upload, morph_a=morph_a, made=made)
