"""Distill: train generative audio models on your own small collection of sounds.

The flow: clips on disk → `distill.datasets` → `distill.features` → `distill.segments` → `distill.train` → `distill.modelfile`
→ `distill.catalog` → `distill.generate` / `distill.transform` (audio out through
`distill.synthesis`). The CLI and the web UI are thin shells over it.
"""

__version__ = "0.1.0"


class DistillError(Exception):
    """A problem the user can act on: the message is shown as-is, without a traceback."""


def user_message(exc: BaseException) -> str:
    """One line a person can read for any failure: a DistillError as it is; an OS error with
    the file and the reason (`[Errno 28] No space left on device: 'x'` → `x: No space left on
    device`); anything else as its type and first line, marked as unexpected."""
    if isinstance(exc, DistillError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return f"{where}: {exc.strerror}" if where else exc.strerror
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"unexpected {type(exc).__name__}{': ' + text if text else ''}"
