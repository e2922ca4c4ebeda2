"""Latent trajectories: what a model file stores of its clips, and how new ones are made from
them (lengths, decays, sustains, temperature, perturbations), on latents alone."""

from __future__ import annotations

import torch

from distill.audio import AudioSettings
from distill.trajectories import (MAX_COMPRESSION, PERTURB_DIRECTIONS, Generator, Trajectory, TrajectoryBank,
                                  build_bank, compress, fit_frames, frame_levels, perturb, retime, smooth_noise)
from test_modelfile import TINY, make_clip_mels, make_segments, tiny_model
from distill.modelfile import analyse_latents, direction_width

SETTINGS = AudioSettings()


def bank_and_generator(seed: int = 0) -> tuple[TrajectoryBank, Generator]:
    model = tiny_model(seed)
    bank = build_bank(model, make_clip_mels(seed), SETTINGS, -24.0)
    return bank, Generator(bank, analyse_latents(model, make_segments(seed=seed)), SETTINGS, TINY.time_stride)


def decaying(frames: int = 30, dim: int = 4) -> Trajectory:
    """A trajectory that rises for 3 frames, then falls 3 dB a frame."""
    level = torch.cat([torch.tensor([-20.0, -6.0, 0.0]), -3.0 * torch.arange(1, frames - 2)])
    latents = torch.arange(frames, dtype=torch.float32).expand(dim, frames).clone()
    return Trajectory(latents, level)


def test_the_bank_round_trips_through_plain_values_and_keeps_each_clip():
    bank, _ = bank_and_generator()
    again = TrajectoryBank.from_plain(bank.to_plain())
    assert again.names == bank.names == [name for name, _ in make_clip_mels()]
    for a, b in zip(bank.trajectories, again.trajectories):
        torch.testing.assert_close(a.latents, b.latents, atol=2e-2, rtol=1e-3)  # stored in half precision
        assert a.frames == b.frames
    assert again.median_seconds == bank.median_seconds and again.loudness_lufs == -24.0
    lengths = sorted(mel.shape[1] for _, mel in make_clip_mels())
    assert bank.median_seconds == SETTINGS.frames_to_seconds(lengths[len(lengths) // 2])


def test_frame_levels_are_db_under_the_loudest_frame():
    mel = torch.full((128, 8), -11.5)
    mel[:, :4] = 0.0
    levels = frame_levels(mel, 4)
    assert levels[0] == 0.0 and -120 <= float(levels[1]) < -90


def test_a_one_shot_decays_and_a_cut_sustain_does_not():
    bank, _ = bank_and_generator()
    assert [t.decays for t in bank.trajectories] == [True] * 6 + [False]


def test_a_short_one_shot_goes_on_in_silence_and_a_sustain_goes_on_sounding():
    bank, _ = bank_and_generator()
    g = torch.Generator().manual_seed(0)
    short = bank.trajectories[0]
    fitted = fit_frames(short, short.frames + 20, bank, g)
    torch.testing.assert_close(fitted.latents[:, :short.frames], short.latents)
    torch.testing.assert_close(fitted.latents[:, short.frames:], bank.silence[:, None].expand(-1, 20))
    sustained = bank.trajectories[6]
    longer = fit_frames(sustained, 200, bank, g)
    assert longer.frames == 200
    assert float(longer.level_db[sustained.frames:].max()) > -40  # still sounding after the clip's end


def test_splices_of_a_long_sustain_are_as_smooth_as_the_clips_themselves():
    bank, _ = bank_and_generator()
    sustained = bank.trajectories[6]
    longer = fit_frames(sustained, 400, bank, torch.Generator().manual_seed(3))
    steps = (longer.latents[:, 1:] - longer.latents[:, :-1]).norm(dim=0)
    own = max(float((t.latents[:, 1:] - t.latents[:, :-1]).norm(dim=0).max()) for t in bank.trajectories)
    assert float(steps.max()) <= own * 1.05


def test_a_long_one_shot_decays_faster_rather_than_being_cut():
    shot = decaying(40)
    fitted = compress(shot, 20)
    assert fitted.frames == 20
    torch.testing.assert_close(fitted.latents[:, :3], shot.latents[:, :3])  # the attack as it was
    # the end is farther into the decay than a cut at 20 frames would be
    assert float(fitted.level_db[-1]) < float(shot.level_db[19]) - 10
    far = compress(decaying(400), 20)  # never more than MAX_COMPRESSION times faster: then it is cut
    assert float(far.latents[0, -1]) <= 3 + (17 - 1) * MAX_COMPRESSION + 1e-4


def test_retime_keeps_the_attack_and_changes_the_pace_after_it():
    shot = decaying(30)
    slower, faster = retime(shot, 0.5), retime(shot, 2.0)
    assert slower.frames > shot.frames > faster.frames
    for made in (slower, faster):
        torch.testing.assert_close(made.latents[:, :3], shot.latents[:, :3])
    torch.testing.assert_close(faster.latents[0, 3:6], torch.tensor([3.0, 5.0, 7.0]))


def test_temperature_zero_is_the_medoid_and_consecutive_seeds_start_from_different_clips():
    bank, generator = bank_and_generator()
    g = torch.Generator().manual_seed(0)
    medoid = int(generator.typicality().argmin())
    assert {generator.pick_seed_clip(0.0, seed, g) for seed in range(10)} == {medoid}
    picks = [generator.pick_seed_clip(1.0, seed, g) for seed in range(5, 5 + len(bank))]
    assert sorted(picks) == list(range(len(bank)))  # any len(bank) consecutive seeds: every clip once
    cool = [generator.pick_seed_clip(0.3, seed, g) for seed in range(300)]
    assert cool.count(medoid) > 300 / len(bank) * 1.5  # typical clips favoured below 1


def test_a_perturbation_is_smooth_grows_with_its_amount_and_leaves_silence_alone():
    bank, generator = bank_and_generator()
    source = fit_frames(bank.trajectories[2], 40, bank, torch.Generator().manual_seed(0))
    moves = []
    for amount in (0.25, 0.5, 1.0):
        moved = perturb(source, amount, generator.analysis, 4.0, torch.Generator().manual_seed(9))
        moves.append(float((moved.latents - source.latents).norm()))
        silent = source.level_db <= -60
        assert silent.any()
        torch.testing.assert_close(moved.latents[:, silent], source.latents[:, silent])
    assert moves[0] < moves[1] < moves[2]
    noise = smooth_noise((3, 500), 8.0, torch.Generator().manual_seed(1))
    assert abs(float(noise.std()) - 1.0) < 0.15
    assert float((noise[:, 1:] - noise[:, :-1]).abs().mean()) < 0.5  # white noise would step ~1.1


def test_a_stereo_models_perturbation_holds_the_width_and_a_mono_ones_moves_freely():
    bank, generator = bank_and_generator()
    source = fit_frames(bank.trajectories[2], 40, bank, torch.Generator().manual_seed(0))
    analysis = dict(generator.analysis)
    k = min(PERTURB_DIRECTIONS, analysis["directions"].shape[0])
    widening = torch.linspace(1.0, -0.5, k) * analysis["direction_std"][:k]  # per spread of each direction

    def width_moved(analysis: dict) -> tuple[torch.Tensor, Trajectory]:
        moved = perturb(source, 1.0, analysis, 4.0, torch.Generator().manual_seed(9))
        coords = analysis["directions"][:k].float() @ (moved.latents - source.latents)  # (k, frames)
        return (widening / analysis["direction_std"][:k]) @ coords, moved

    free, _ = width_moved(analysis)
    analysis["direction_width"] = widening / analysis["direction_std"][:k]
    held, moved = width_moved(analysis)
    assert float(free.abs().max()) > 0.1
    assert float(held.abs().max()) < 1e-4 and float((moved.latents - source.latents).norm()) > 0.1


def test_direction_width_reads_the_side_against_the_mid_through_the_linear_path():
    """A step that raises only the side widens by its rise; one that raises every row alike
    (louder, not wider) does not widen; one that raises only the mid narrows."""
    from dataclasses import replace

    from distill.model import ConvVAE

    rows, side_rows = TINY.n_mels + 4, 4
    model = ConvVAE(replace(TINY, n_mels=rows))
    d, stride = model.config.latent_dim, model.config.time_stride
    with torch.no_grad():
        weight = torch.zeros(rows, stride, d)  # (rows, frames of a patch, latent)
        weight[rows - side_rows:, :, 0] = 1.0  # latent 0: the side up
        weight[:, :, 1] = 1.0  # latent 1: everything up
        weight[:rows - side_rows, :, 2] = 1.0  # latent 2: the mid up
        model.patch_out.weight.copy_(weight.reshape(rows * stride, d, 1))
        model.patch_out.bias.copy_(torch.linspace(-8.0, -2.0, rows * stride))
    width = direction_width(model, torch.eye(d)[:3], side_rows, torch.zeros(d)) / model.config.feature_std
    torch.testing.assert_close(width, torch.tensor([1.0, 0.0, -1.0]), atol=1e-5, rtol=0)
    assert "direction_width" not in analyse_latents(tiny_model(), make_segments())  # a mono model: none
