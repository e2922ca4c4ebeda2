"""What every tab shares: turning exceptions into readable messages, and small formatters."""

from __future__ import annotations

import functools
import inspect
import logging
import math
from typing import Any, Callable

import gradio as gr

from distill import DistillError

log = logging.getLogger("distill.ui")


def user_message(exc: BaseException) -> str:
    """What a person reads when an action fails: a DistillError as it is, anything else as
    one line (the traceback goes to the server log, never to the page)."""
    if isinstance(exc, DistillError):
        return str(exc)
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"Something went wrong ({type(exc).__name__}{': ' + text if text else ''}). Details are in the server log."


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
