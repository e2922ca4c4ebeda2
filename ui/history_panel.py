"""The Catalog tab's History panel: every sound made on the page with the selected model
(generated or transformed), newest first, read from disk, so it is there after a reload or a
restart. Each sound has its thumbnail, its settings, a player, and buttons: keep (★), A/B,
make again, vary this, morph from this, delete. Two sounds picked with A/B play in the A/B
strip, where the X key (or its button) switches between them at the same moment of the sound.
The kept sounds make a pack (a zip to download).

The engine does the work (`distill.history`); the list is one `gr.HTML` whose buttons send a
custom `action` event (its `js_on_load`), so a page of sounds costs no Gradio components.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import quote

import gradio as gr

from distill import DistillError
from distill.history import (HistoryEntry, delete_entry, keep_entry, list_history, make_again, pack_kept,
                             record_sounds, record_transforms)
from distill.workspace import Workspace
from ui.common import (format_controls, handle_errors, instrument_choice, instrument_formats, instrument_line, log,
                       output_format)

PAGE = 12  # sounds shown at first, and how many more "Show more" adds
VIEWS = ["All", "Kept ★"]
AB_KEY = "x"

LIST_CSS = """
.history-head { font-size: var(--text-sm); color: var(--body-text-color-subdued); margin: 0 0 6px; }
.history-card { display: flex; gap: 10px; align-items: center; padding: 6px; margin-bottom: 6px;
  border: 1px solid var(--border-color-primary); border-radius: var(--radius-md); background: var(--block-background-fill); }
.history-card.kept { border-color: #e0a800; box-shadow: inset 3px 0 0 #e0a800; }
.history-card.picked { outline: 2px solid var(--color-accent); }
.history-thumb { width: 128px; height: 48px; flex: none; border-radius: 3px; image-rendering: auto; }
.history-main { flex: 1; min-width: 0; }
.history-title { font-weight: 600; font-size: var(--text-sm); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.history-settings { font-size: var(--text-xs); color: var(--body-text-color-subdued); white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
.history-main audio { width: 100%; height: 30px; margin-top: 3px; }
.history-actions { display: grid; grid-template-columns: repeat(3, auto); gap: 3px; flex: none; }
.history-actions button { font-size: var(--text-xs); padding: 2px 6px; border-radius: var(--radius-sm);
  border: 1px solid var(--border-color-primary); background: var(--button-secondary-background-fill);
  color: var(--button-secondary-text-color); cursor: pointer; white-space: nowrap; }
.history-actions button:hover { background: var(--button-secondary-background-fill-hover); }
.history-actions button.on { background: var(--color-accent); color: white; border-color: var(--color-accent); }
.history-actions button[data-action=keep].on { background: #e0a800; border-color: #e0a800; color: #222; }
.history-actions button[data-action=delete]:hover { color: #c00; }
.history-empty { font-size: var(--text-sm); color: var(--body-text-color-subdued); padding: 8px 0; }
"""

AB_CSS = """
.ab { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; padding: 6px;
  border: 1px dashed var(--border-color-primary); border-radius: var(--radius-md); }
.ab-side { flex: 1; min-width: 200px; padding: 4px 6px; border-radius: var(--radius-sm); border: 2px solid transparent; }
.ab[data-active=a] .ab-side[data-side=a], .ab[data-active=b] .ab-side[data-side=b] {
  border-color: var(--color-accent); background: var(--background-fill-secondary); }
.ab-side .ab-name { font-size: var(--text-xs); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.ab-side audio { width: 100%; height: 30px; }
.ab-tag { font-weight: 700; margin-right: 4px; }
.ab-switch { padding: 6px 12px; border-radius: var(--radius-md); border: 1px solid var(--color-accent);
  background: var(--color-accent); color: white; cursor: pointer; font-weight: 600; }
.ab-hint { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
kbd { border: 1px solid var(--border-color-primary); border-radius: 3px; padding: 0 4px; font-size: 0.9em; }
"""

# Each button of the list sends its action and entry id to Python.
LIST_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-action]');
  if (button) trigger('action', {action: button.dataset.action, id: button.dataset.id});
});
"""

# A/B: the key or the button switches which of the two plays, at the same moment of the sound.
# The first press plays A; a player started by hand becomes the active side. The key is ignored
# while typing in a field.
AB_JS = """
const strip = () => element.querySelector('.ab');
const sides = () => { const box = strip(); return box ? [...box.querySelectorAll('audio')] : []; };
const swap = () => {
  const box = strip(), players = sides();
  if (!box || players.length < 2) return;
  const active = box.dataset.active === 'b' ? 1 : 0;
  if (box.dataset.started !== 'yes') {
    box.dataset.started = 'yes';
    players[active].play().catch(() => {});
    return;
  }
  const from = players[active], to = players[1 - active];
  const at = from.currentTime;
  box.dataset.switching = 'yes';
  from.pause();
  try { to.currentTime = Math.min(at, to.duration || at); } catch (e) {}
  box.dataset.active = active ? 'a' : 'b';
  to.play().catch(() => {}).finally(() => { box.dataset.switching = ''; });
};
element.addEventListener('play', (event) => {
  const box = strip(), players = sides(), i = players.indexOf(event.target);
  if (!box || i < 0) return;
  box.dataset.started = 'yes';
  if (box.dataset.switching === 'yes') return;
  box.dataset.active = i ? 'b' : 'a';
  players.forEach((p, j) => { if (j !== i) p.pause(); });
}, true);
element.addEventListener('click', (event) => { if (event.target.closest('.ab-switch')) swap(); });
window.distillAbSwap = swap;
if (!window.distillAbKey) {
  window.distillAbKey = true;
  document.addEventListener('keydown', (event) => {
    if (event.key.toLowerCase() !== '%KEY%' || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    event.preventDefault();
    window.distillAbSwap();
  });
}
""".replace("%KEY%", AB_KEY)


def file_url(path: Path) -> str:
    """A link the app serves (it may serve the workspace's files): relative, like the transform
    panel's downloads."""
    return f"gradio_api/file={quote(str(path))}"


def entry_title(entry: HistoryEntry) -> tuple[str, str]:
    """(a title, the rest of its settings): `Random · seed 12` / `temperature 1 · 0.80 s`,
    `Variation of kick.wav` / `distance 0.40 · seed 3 · 1.20 s`, `Transform of voice.wav` / …"""
    parts = entry.settings_parts()
    head = 2 if entry.kind == "random" else 1
    title = " · ".join(parts[:head])
    return title[:1].upper() + title[1:], " · ".join(parts[head:])


def local_time(created: str) -> str:
    """`14:03` on this computer's clock (the history stores UTC); `Dec 7 14:03` before today."""
    try:
        when = datetime.fromisoformat(created).astimezone()
    except ValueError:
        return created[:16]
    return f"{when:%H:%M}" if when.date() == datetime.now().astimezone().date() else f"{when:%b %-d %H:%M}"


def _button(action: str, entry: HistoryEntry, text: str, title: str, on: bool = False) -> str:
    return (f'<button data-action="{action}" data-id="{html.escape(entry.id)}" title="{html.escape(title)}"'
            f'{" class=on" if on else ""}>{text}</button>')


def entry_card(entry: HistoryEntry, picked: Sequence[str]) -> str:
    side = "AB"[picked.index(entry.id)] if entry.id in picked else ""
    made = local_time(entry.created) + (" · made again" if entry.again_of else "")
    title, rest = entry_title(entry)
    level = f" · peak {entry.peak_dbfs:.1f} dBFS" if entry.peak_dbfs is not None else " · silent"
    buttons = [
        _button("keep", entry, "★ Kept" if entry.kept else "☆ Keep", "keep it: never dropped for room, goes in the pack",
                entry.kept),
        _button("ab", entry, f"A/B: {side}" if side else "A/B", f"pick it for the A/B strip (then {AB_KEY.upper()} "
                "switches)", bool(side)),
        _button("again", entry, "↻ Again", "make it again from its settings (the same samples)"),
        _button("vary", entry, "Vary this", "variations of this sound (in Generate)"),
        _button("morph", entry, "Morph from", "a morph from this sound (in Generate, as A)"),
        _button("delete", entry, "✕ Delete", "delete it from the history, with its files"),
    ]
    classes = "history-card" + (" kept" if entry.kept else "") + (" picked" if side else "")
    return (f'<div class="{classes}" data-id="{html.escape(entry.id)}" data-kind="{entry.kind}">'
            f'<img class="history-thumb" src="{file_url(entry.thumbnail_path)}" alt="log-mel spectrogram">'
            f'<div class="history-main"><div class="history-title">{"★ " if entry.kept else ""}'
            f'{html.escape(title)} <span class="history-settings">{made}</span></div>'
            f'<div class="history-settings" title="{html.escape(entry.recipe)}">'
            f'{html.escape(rest)}{level}</div>'
            f'<audio controls preload="metadata" src="{file_url(entry.audio_path)}"></audio></div>'
            f'<div class="history-actions">{"".join(buttons)}</div></div>')


def list_html(entries: Sequence[HistoryEntry], view: str, picked: Sequence[str], limit: int) -> str:
    """The cards of the entries `view` shows (all, or the kept ones), the newest `limit` of them."""
    kept = sum(e.kept for e in entries)
    shown = [e for e in entries if e.kept] if view != VIEWS[0] else list(entries)
    if not entries:
        return ('<div class="history-empty">No sounds yet: what you generate or transform with this model lands '
                'here, and stays after a reload or a restart.</div>')
    head = f"{len(entries)} sound{'s' if len(entries) != 1 else ''} · {kept} kept"
    if len(shown) > limit:
        head += f" · showing the newest {limit} of {len(shown)}"
    if not shown:
        return f'<div class="history-head">{head}</div><div class="history-empty">Nothing kept yet: ☆ Keep the ' \
               'sounds you like.</div>'
    return f'<div class="history-head">{head}</div>' + "".join(entry_card(e, picked) for e in shown[:limit])


def ab_html(entries: Sequence[HistoryEntry], picked: Sequence[str]) -> str:
    by_id = {e.id: e for e in entries}
    pair = [by_id[i] for i in picked if i in by_id]
    if len(pair) < 2:
        return (f'<div class="ab-hint">A/B: pick two sounds with their <b>A/B</b> buttons'
                f'{" (one picked)" if pair else ""}, then press <kbd>{AB_KEY.upper()}</kbd> to switch between them '
                f'while they play.</div>')
    sides = "".join(f'<div class="ab-side" data-side="{s.lower()}" data-id="{html.escape(e.id)}">'
                    f'<div class="ab-name"><span class="ab-tag">{s}</span>{html.escape(" · ".join(entry_title(e)))}</div>'
                    f'<audio controls preload="auto" src="{file_url(e.audio_path)}"></audio></div>'
                    for s, e in zip("AB", pair))
    return (f'<div class="ab" data-active="a">{sides}<button class="ab-switch" title="or press {AB_KEY.upper()}">'
            f'A ⇄ B</button><span class="ab-hint">press <kbd>{AB_KEY.upper()}</kbd></span></div>')


def remember(record: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Put new sounds in the history without ever failing what made them: a history that
    cannot be written (an old model file without an id, a damaged history.json, a full disk)
    is a warning, and the sounds are still shown."""
    try:
        record(*args, **kwargs)
    except DistillError as exc:
        gr.Warning(f"Not kept in the history: {exc}")
    except Exception:  # noqa: BLE001 - the sounds are made; the history is a bonus
        log.exception("history: could not record")
        gr.Warning("Not kept in the history (details are in the server log).")


def remember_sounds(ws: Workspace, model: str, sounds: Sequence[Any], griffin_lim: bool) -> None:
    remember(record_sounds, ws, model, sounds, griffin_lim=griffin_lim)


def remember_transforms(ws: Workspace, model: str, results: Sequence[Any], strength: float, griffin_lim: bool) -> None:
    remember(record_transforms, ws, model, results, strength=strength, griffin_lim=griffin_lim)


@dataclass
class HistoryPanel:
    refresh: Callable  # (model, view, picked, limit) → the panel's outputs
    inputs: list[Any]
    outputs: list[Any]


def build(ws: Workspace, model: gr.Dropdown, mode: gr.Radio, clip: gr.Dropdown, upload: gr.File,
          morph_a: gr.Dropdown, tabs: gr.Tabs, variation_label: str, morph_label: str) -> HistoryPanel:
    """The panel; `mode`, `clip`, `upload`, `morph_a` are the Generate panel's (vary this, morph
    from this set them), `tabs` holds it (they open it, tab id "generate")."""
    gr.Markdown("### History\n<small>Every sound made here with this model, newest first: keep the good ones "
                "(☆), compare two (A/B), make one again, or start from it.</small>", elem_id="history-intro")
    with gr.Row(equal_height=True):
        view = gr.Radio(VIEWS, value=VIEWS[0], label="Show", show_label=False, container=False,
                        elem_id="history-view", scale=3)
        more = gr.Button(f"Show {PAGE} more", size="sm", visible=False, elem_id="history-more", scale=1,
                         min_width=110)
    ab = gr.HTML(ab_html([], []), elem_id="history-ab", css_template=AB_CSS, js_on_load=AB_JS)
    listing = gr.HTML(list_html([], VIEWS[0], [], PAGE), elem_id="history-list", css_template=LIST_CSS,
                      js_on_load=LIST_JS)
    with gr.Group():
        with gr.Row(elem_classes=["bottom-aligned"]):
            pack_format, pack_rate = format_controls("WAV 24-bit")
        with gr.Row(elem_classes=["bottom-aligned"]):
            pack_instruments = instrument_choice("history-pack-instrument")
            pack_button = gr.Button("Make a pack of the kept sounds", elem_id="history-pack", min_width=160)
        pack_download = gr.DownloadButton("Download the kept sounds (.zip)", visible=False,
                                          elem_id="history-pack-download")
        pack_summary = gr.Markdown(elem_id="history-pack-summary", padding=True)
    picked = gr.State([])
    limit = gr.State(PAGE)

    def draw(name: str | None, view_label: str, chosen: list[str], count: int) -> tuple:
        """(the list, the A/B strip, the picked ids still there, the Show more button)."""
        entries = list_history(ws, name) if name else []
        chosen = [i for i in chosen or [] if any(e.id == i for e in entries)]
        count = int(count or PAGE)
        shown = sum(1 for e in entries if e.kept or view_label == VIEWS[0])
        return (list_html(entries, view_label, chosen, count), ab_html(entries, chosen), chosen,
                gr.update(visible=shown > count))

    @handle_errors
    def refresh(name: str | None, view_label: str, chosen: list[str], count: int):
        return draw(name, view_label, chosen, count)

    @handle_errors
    def pick_model(name: str | None, view_label: str):
        return (*draw(name, view_label, [], PAGE), PAGE)

    @handle_errors
    def show_more(name: str | None, view_label: str, chosen: list[str], count: int):
        return (*draw(name, view_label, chosen, int(count) + PAGE), int(count) + PAGE)

    @handle_errors
    def act(name: str | None, view_label: str, chosen: list[str], count: int, event: gr.EventData):
        data = getattr(event, "_data", None) or {}
        return do(name, str(data.get("action", "")), str(data.get("id", "")), view_label, chosen, count)

    def do(name: str | None, action: str, entry_id: str, view_label: str, chosen: list[str], count: int) -> tuple:
        if not name:
            raise DistillError("pick a model first")
        chosen = list(chosen or [])
        keep = (gr.skip(),) * 5  # mode, clip, upload, morph A, tabs: as they are
        if action == "keep":
            entries = {e.id: e for e in list_history(ws, name)}
            keep_entry(ws, name, entry_id, not entries[entry_id].kept if entry_id in entries else True)
        elif action == "delete":
            delete_entry(ws, name, entry_id)
            chosen = [i for i in chosen if i != entry_id]
        elif action == "ab":
            chosen = [i for i in chosen if i != entry_id] if entry_id in chosen else (chosen + [entry_id])[-2:]
        elif action == "again":
            again = make_again(ws, name, entry_id)
            gr.Info("Made again: the same samples as the original." if again.identical else
                    "Made again, but not the same samples: the model file has changed since (a vocoder trained?).")
        elif action in ("vary", "morph"):
            entry = next((e for e in list_history(ws, name) if e.id == entry_id), None)
            if entry is None:
                raise DistillError("that sound is no longer in the history")
            source = str(entry.audio_path)
            if action == "vary":
                keep = (gr.update(value=variation_label), gr.update(value=source), None, gr.skip(),
                        gr.Tabs(selected="generate"))
                gr.Info(f"Generate now varies {entry.audio}: press Generate.")
            else:
                keep = (gr.update(value=morph_label), gr.skip(), gr.skip(), gr.update(value=source),
                        gr.Tabs(selected="generate"))
                gr.Info(f"Generate now morphs from {entry.audio} (A): pick B and press Generate.")
        else:
            raise DistillError(f"unknown history action {action!r}")
        return (*draw(name, view_label, chosen, count), *keep)

    @handle_errors
    def pack(name: str | None, format_label: str, rate_label: str, instrument_labels: list[str],
             progress=gr.Progress()):
        if not name:
            raise DistillError("pick a model first")
        fmt = output_format(format_label, rate_label)

        def step(done: int, total: int) -> None:
            progress(done / total, desc=f"{done} of {total} sounds")

        result = pack_kept(ws, name, fmt=fmt, progress=step, instruments=instrument_formats(instrument_labels))
        return (gr.update(value=str(result.zip_path), visible=True),
                f"<small>**{len(result.files)} kept sounds** in `{result.folder}`: trimmed, at the clips' median "
                f"loudness ({result.manifest['loudness_target_lufs']:g} LUFS), "
                f"{fmt.describe(result.manifest['model_sample_rate'])}, with `pack.json`."
                f"{instrument_line(result.manifest)}</small>")

    shown = [listing, ab, picked, more]
    model.change(pick_model, [model, view], [*shown, limit], api_visibility="private", show_progress="hidden")
    view.change(refresh, [model, view, picked, limit], shown, api_visibility="private", show_progress="hidden")
    more.click(show_more, [model, view, picked, limit], [*shown, limit], api_visibility="private",
               show_progress="hidden")
    listing.action(act, [model, view, picked, limit], [*shown, mode, clip, upload, morph_a, tabs],
                   api_visibility="private", show_progress="hidden")
    pack_button.click(pack, [model, pack_format, pack_rate, pack_instruments], [pack_download, pack_summary],
                      api_name="history_pack")

    def history_action(name: str, action: str, entry_id: str) -> list[dict]:
        """Act on a history entry as its button does (keep, delete, ab, again, vary, morph); the
        model's history after it, newest first."""
        do(name, action, entry_id, VIEWS[0], [], PAGE)
        return [e.to_dict() for e in list_history(ws, name)]

    def history_api(name: str) -> list[dict]:
        """A model's history, newest first (the page's list)."""
        return [{**e.to_dict(), "audio_path": str(e.audio_path)} for e in list_history(ws, name)]

    gr.api(handle_errors(history_api), api_name="history")
    gr.api(handle_errors(history_action), api_name="history_action")
    return HistoryPanel(refresh=refresh, inputs=[model, view, picked, limit], outputs=shown)
