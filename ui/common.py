"""What every tab shares: turning exceptions into readable messages, following a background
job into the page, and small formatters."""

from __future__ import annotations

import functools
import inspect
import logging
import math
from typing import Any, Callable, Iterator

import gradio as gr

from distill import DistillError
from distill import user_message as engine_message
from distill.jobs import BackgroundJob, Cancelled, Event, Failed, Finished, Warning

log = logging.getLogger("distill.ui")


def user_message(exc: BaseException) -> str:
    """What a person reads when an action fails: a DistillError as it is, anything else as
    one line (the traceback goes to the server log, never to the page)."""
    if isinstance(exc, (DistillError, OSError)):
        return engine_message(exc)
    return f"Something went wrong ({engine_message(exc)}). Details are in the server log."


def _as_gr_error(exc: BaseException) -> gr.Error:
    if isinstance(exc, gr.Error):
        return exc
    if not isinstance(exc, DistillError):
        log.exception("handler failed")
    return gr.Error(user_message(exc), print_exception=False)


def handle_errors(fn: Callable) -> Callable:
    """Wrap a handler (plain or generator) so every failure reaches the user as a gr.Error
    with a readable message: never a stack trace, never a frozen page."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except GeneratorExit:
                raise
            except Exception as exc:  # noqa: BLE001
                raise _as_gr_error(exc) from None
        return generator

    @functools.wraps(fn)
    def plain(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise _as_gr_error(exc) from None
    return plain


# A job that publishes nothing for this long still gets a fresh view (elapsed time, ETA).
FOLLOW_QUIET_SECONDS = 2.0


def follow_job(job: BackgroundJob, first: tuple, draw: Callable[[dict | None], tuple],
               toast: Callable[[Event], None]) -> Iterator[tuple]:
    """Yield `first`, then `draw(state)` at each of the job's events and every few quiet
    seconds until it ends, then one whole view (`draw({})`: no skipped parts, which is what
    an API caller gets back). A view's last element is the page state the next one is drawn
    against; `toast` turns events into messages."""
    outputs = first
    yield outputs
    index = 0
    while True:
        for event in job.events(start=index, timeout=FOLLOW_QUIET_SECONDS):
            index += 1
            toast(event)
            outputs = draw(outputs[-1])
            yield outputs
        if job.done and index >= len(job.history):
            job.join(30)  # its files are written and its lock let go
            yield draw({})
            return
        outputs = draw(outputs[-1])
        yield outputs


def job_toast(event: Event, subject: str, finished: str) -> None:
    """A job's warnings and failure as warning toasts, its stop and end as info toasts.
    `finished` may name `{epochs}`."""
    if isinstance(event, Warning):
        gr.Warning(event.message)
    elif isinstance(event, Failed):
        gr.Warning(f"{subject} failed: {event.message}")
    elif isinstance(event, Cancelled):
        gr.Info(f"{subject} stopped after epoch {event.epoch}: Resume continues from there.")
    elif isinstance(event, Finished):
        gr.Info(finished.format(epochs=event.epoch))


def clock(seconds: float | None) -> str:
    """`0:42`, `12:05`, `1:02:03`; `—` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def number(value: Any, digits: int = 4) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "—"
    return f"{value:.{digits}g}" if math.isfinite(value) else "—"


# The file formats the page offers for packs and transforms (`distill.audio.OutputFormat`).
FORMATS = {"WAV 24-bit": ("wav", 24), "WAV 16-bit": ("wav", 16), "WAV 32-bit float": ("wav", 32),
           "FLAC 24-bit": ("flac", 24), "FLAC 16-bit": ("flac", 16)}
RATES = {"44.1 kHz": None, "48 kHz": 48000}  # 44.1: the models' own rate, as it is


def format_controls(default: str) -> tuple[gr.Dropdown, gr.Dropdown]:
    """(file format, sample rate) dropdowns."""
    return (gr.Dropdown(label="File format", choices=list(FORMATS), value=default, min_width=150, scale=1),
            gr.Dropdown(label="Sample rate", choices=list(RATES), value=next(iter(RATES)), min_width=150, scale=1))


INSTRUMENTS = {"SFZ": "sfz", "DecentSampler": "dspreset"}


def instrument_choice(elem_id: str) -> gr.CheckboxGroup:
    """Which playable instruments a pack also gets (`distill.instrument`)."""
    return gr.CheckboxGroup(list(INSTRUMENTS), value=[], label="Also as a playable instrument", elem_id=elem_id,
                            info="pitched sounds on their notes, others as a kit from C1", min_width=150, scale=1)


def instrument_formats(labels: list[str] | None) -> tuple[str, ...]:
    return tuple(INSTRUMENTS[label] for label in labels or () if label in INSTRUMENTS)


def instrument_line(manifest: dict) -> str:
    """` Also playable as …` for a pack summary, when the pack has instruments."""
    from distill.instrument import summary

    return f" Also {summary(manifest['instrument'])}." if manifest.get("instrument") else ""


def output_format(format_label: str | None, rate_label: str | None):
    """The OutputFormat two `format_controls` ask for."""
    from distill.audio import OutputFormat

    container, bits = FORMATS.get(format_label or "", ("wav", 24))
    return OutputFormat(container, bits, RATES.get(rate_label or ""))
