"""Drive Distill from Python, end to end: example corpus → dataset → training → model file
→ catalog → new sounds, and your own clips through the model.

    .venv/bin/python examples/python_api.py [--workspace DIR] [--preset tiny] [--epochs 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from distill.catalog import models_table
from distill.datasets import create_dataset
from distill.example_corpus import write_example_corpus
from distill.export import export_model
from distill.generate import generate_sounds
from distill.jobs import EpochFinished, Failed, PreviewWritten
from distill.train import start_training
from distill.train_config import TrainConfig
from distill.transform import transform_files
from distill.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", default=None, help="default: a fresh temporary folder")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    ws = Workspace.open(args.workspace or tempfile.mkdtemp(prefix="distill-example-"))
    print(f"workspace: {ws.root}")

    # 1. A dataset from files (here: the synthesised example corpus).
    corpus = write_example_corpus(ws.root / "example-corpus")
    report = create_dataset(ws, "plucks-and-drums", corpus)
    print(f"dataset: {len(report.kept)} clips kept, {len(report.rejected)} rejected")

    # 2. Train on a background thread and follow its events.
    job = start_training(ws, TrainConfig(dataset="plucks-and-drums", preset=args.preset, epochs=args.epochs,
                                         preview_every=max(1, args.epochs // 2)))
    for event in job.events():
        if isinstance(event, EpochFinished):
            print(f"epoch {event.epoch}/{event.total_epochs}: train {event.train_loss:.3f}, val {event.val_loss:.3f}")
        elif isinstance(event, PreviewWritten):
            print(f"previews: {', '.join(Path(p).name for p in event.paths)}")
        elif isinstance(event, Failed):
            raise SystemExit(f"training failed: {event.message}")
    job.join()

    # 3. Save the best checkpoint as a model file; it shows up in the catalog.
    path = export_model(ws, job.experiment_id, name="plucks-and-drums")
    print(f"model: {path}")
    print(models_table(ws).to_string(index=False))

    # 4. Generate: whole sounds as long as a typical clip; a seed gives the same sound every time.
    for sound in generate_sounds(ws, "plucks-and-drums", n=3, seed=1):
        print(f"{sound.path.name}: {sound.seconds:.2f} s, peak {sound.peak_dbfs:.1f} dBFS ({sound.recipe})")

    # 5. Transform: any clip through the model, at its own length and the model's level.
    for result in transform_files(ws, "plucks-and-drums", corpus[:2]):
        if not result.ok:
            raise SystemExit(result.error)
        print(f"{result.path.name}: {result.seconds:.2f} s, rms {result.input_rms_dbfs:.1f} → "
              f"{result.output_rms_dbfs:.1f} dBFS")


if __name__ == "__main__":
    main()
