"""Distill: train generative audio models on your own small collection of sounds.

The flow: clips on disk → `distill.datasets` → `distill.features` → `distill.segments` → `distill.train` → `distill.modelfile`
→ `distill.catalog` → `distill.generate` / `distill.transform` (audio out through
`distill.synthesis`). The CLI and the web UI are thin shells over it.
"""

__version__ = "0.1.0"


class DistillError(Exception):
    """A problem the user can act on: the message is shown as-is, without a traceback."""
