"""The vocoder's pretraining corpus: what it plays (and never plays), its MIDI, its synthesised
sounds, and (where fluidsynth and the SoundFont are installed) a real render."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from distill.vocoder.corpus import (HELD_OUT_PROGRAMS, KITS, SOUNDFONT, Note, corpus_notes, midi_file, render_notes,
                                    synthesised, trim_tail, write_corpus)


def test_the_pianos_and_the_dev_corpora_instruments_are_never_played():
    notes = corpus_notes()
    melodic = {n.program for n in notes if not n.drum}
    assert melodic.isdisjoint(HELD_OUT_PROGRAMS) and HELD_OUT_PROGRAMS >= set(range(8)) | {8, 11, 12, 24, 46}
    assert 0 not in KITS and {n.program for n in notes if n.drum} == set(KITS)
    assert len(melodic) >= 80  # broad: most of General MIDI
    assert {n.pitch % 12 for n in notes if not n.drum} == set(range(12))
    assert {n.velocity for n in notes} == {48, 100}


def test_the_midi_file_plays_each_note_once_in_order():
    notes = [Note(40, 60, 100, 1.0), Note(56, 62, 48, 0.5, reverb=40), Note(8, 38, 90, 0.2, drum=True)]
    data, starts = midi_file(notes)
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    assert data.count(bytes([0x90, 60, 100])) == 1 and data.count(bytes([0x99, 38, 90])) == 1
    assert starts == [0.0, 4.0, 7.5]  # hold + 3 s gap each


def test_synthesised_sounds_are_seeded_varied_and_at_their_own_levels():
    first, again = synthesised(22050, 9), synthesised(22050, 9)
    assert [n for n, _ in first] == [n for n, _ in again]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(first, again))
    peaks = [20 * np.log10(np.abs(w).max()) for _, w in first]
    assert -40.5 <= min(peaks) and max(peaks) <= -2.9 and max(peaks) - min(peaks) > 6
    assert {n.split("-")[1] for n, _ in first} == {"noise", "sweep", "chord"}


def test_trim_tail_cuts_at_sixty_db_under_the_peak():
    wave = np.concatenate([np.ones(100), np.full(100, 2e-3), np.full(100, 5e-4)]).astype(np.float32)  # -54, -66 dB
    assert trim_tail(wave).shape[0] == 200
    assert trim_tail(np.zeros(10, dtype=np.float32)).shape[0] == 0


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not SOUNDFONT.is_file(),
                    reason="fluidsynth and fluid-soundfont-gm are not installed")
def test_a_real_render(tmp_path):
    notes = [Note(40, 60, 100, 0.6), Note(73, 84, 48, 0.25, reverb=40), Note(25, 38, 100, 0.2, drum=True)]
    waves = render_notes(notes, 22050)
    assert [w.dtype for w in waves] == [np.float32] * 3
    for wave in waves:
        assert 0.1 < wave.shape[0] / 22050 < 3.5 and np.abs(wave).max() > 1e-3
    manifest = write_corpus(tmp_path, notes=notes, synth_count=3)
    listed = json.loads(manifest.read_text())["files"]
    assert len(listed) == 6 and all((tmp_path / e["file"]).is_file() for e in listed)
