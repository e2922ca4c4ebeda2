"""The web app in a real browser: Playwright driving Debian's Chromium through one user's
journey, from dropping clips to playing a generated sound and a transformed clip, with what
a new user tripped over checked on the way (the loss chart before the first epoch, where the
stop message sits and when it goes, the preview pair, the form after a reload, spectrogram
axes, a refused import). Every request the page makes is recorded: none may leave 127.0.0.1.
Screenshots of each tab (1280×800) are written to artifacts/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from distill.example_corpus import write_example_corpus  # noqa: E402
from distill.train import current_job  # noqa: E402
from distill.workspace import Workspace  # noqa: E402
from conftest import running_app, wait_until  # noqa: E402

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
EPOCHS = 40  # more than the journey ever reaches: it stops the run itself


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ws = Workspace.open(tmp_path_factory.mktemp("ui-browser") / "workspace")
    with running_app(ws) as url:
        yield ws, url


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian's chromium is not installed: scripts/setup.sh --test installs it "
                    "(apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for close in page.locator("button.toast-close").all():  # toasts would hide the page's top
        if close.is_visible():
            close.click()
    page.wait_for_timeout(400)  # let the last update paint
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.screenshot(path=str(SCREENSHOTS / f"{name}-full.png"), full_page=True)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def status_text(page) -> str:
    return page.locator("#train-status [data-testid=markdown]").inner_text()


def epoch_shown(page) -> int:
    match = re.search(r"epoch (\d+) / \d+", status_text(page))
    return int(match.group(1)) if match else 0


def chart_points(page) -> int:
    """How many points (epoch × curve) the loss chart draws."""
    return page.locator("#loss-chart circle[data-epoch]").count()


def texts(page, selector: str) -> list[str]:
    """The text of each element `selector` matches (SVG text has no innerText: textContent)."""
    return page.locator(selector).evaluate_all("els => els.map(e => e.textContent.trim())")


def record_texts(page, selector: str, name: str) -> None:
    """Keep every text the element shows from now on (in window[name]): a message that lasts
    less than a poll would slip past expect()."""
    page.evaluate("""([selector, name]) => {
        const element = document.querySelector(selector);
        window[name] = [element.innerText];
        new MutationObserver(() => window[name].push(element.innerText))
            .observe(element, {subtree: true, childList: true, characterData: true});
    }""", [selector, name])


def progress_shown(page, selector: str) -> list[str]:
    """The texts of Gradio's progress indicators a person could see on the element."""
    return page.locator(f"{selector} [data-testid=status-tracker]").evaluate_all(
        "ts => ts.filter(t => { const s = getComputedStyle(t); return s.display !== 'none' && "
        "s.visibility !== 'hidden' && parseFloat(s.opacity) > 0 && t.innerText.trim(); }).map(t => t.innerText)")


def no_share_buttons(page) -> bool:
    return page.locator("button[aria-label*='share' i], button[title*='share' i]").count() == 0


def assert_playable(page, player) -> None:
    """The player drew its waveform, and the browser decodes the file it offers for download."""
    expect(player.locator(".waveform-container")).to_be_visible(timeout=20_000)
    href = player.locator("a.download-link").get_attribute("href")
    assert urlparse(href).hostname == "127.0.0.1"
    duration = page.evaluate("""href => new Promise((resolve, reject) => {
        const audio = new Audio(href);
        audio.addEventListener('loadedmetadata', () => resolve(audio.duration));
        audio.addEventListener('error', () => reject(new Error('cannot decode ' + href)));
    })""", href)
    assert duration > 0.05


def test_the_whole_journey_in_a_browser(server, browser, tmp_path):
    ws, url = server
    clips = write_example_corpus(tmp_path / "clips", n_clips=6)
    bad = tmp_path / "clips" / "bad.wav"
    bad.write_text("not audio at all\n")
    # What else a user's folder holds: a macOS metadata twin, notes, a name holding a Windows path.
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "._pluck.wav").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    (odd / "readme.txt").write_text("my sounds\n")
    (odd / "..\\notes.wav").write_text("not audio either\n")

    context = browser.new_context(viewport=VIEWPORT)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#header")).to_contain_text("Distill")

    # -- Dataset: drop good clips and a bad one; both kinds of result are listed --------------
    page.locator("#dataset-new-name input, #dataset-new-name textarea").first.fill("journey")
    page.locator("#dataset-upload input[type=file]").set_input_files([str(p) for p in clips] + [str(bad)]
                                                                     + [str(p) for p in sorted(odd.iterdir())])
    results = page.locator("#upload-results")
    expect(results).to_contain_text("rejected", timeout=60_000)
    expect(results).to_contain_text("kept")
    # Every file listed under the name it had (Gradio's copy of the last is "..notes.wav"), with the CLI's verdict.
    expect(page.locator("#upload-summary")).to_contain_text("6 kept, 2 rejected, 2 skipped")
    expect(results).to_contain_text("macOS metadata (the AppleDouble twin of pluck.wav)")
    expect(results).to_contain_text("not an audio file by its name (.txt)")
    expect(results).to_contain_text("..\\notes.wav")
    expect(page.locator("#clip-table")).to_contain_text(clips[0].name)
    expect(page.locator("#dataset-totals")).to_contain_text("6 clips")
    page.locator("#clip-table").get_by_text(clips[1].name, exact=True).click()  # a row plays its clip
    expect(page.locator("#clip-select")).to_contain_text(clips[1].name, timeout=10_000)
    assert_playable(page, page.locator("#clip-player"))
    shoot(page, "1-dataset")

    # -- Training: the tiny preset, previews every epoch --------------------------------------
    open_tab(page, "Training")
    expect(page.locator("#train-dataset input")).to_have_value("journey", timeout=10_000)
    expect(page.locator("#loss-chart")).to_contain_text("no training yet")
    page.locator("#train-preset").get_by_label("tiny").check()
    page.locator("#train-epochs input").fill(str(EPOCHS))
    page.locator("#train-preview-every input").fill("1")
    page.locator("#train-start").click()
    expect(page.locator("#train-status")).to_contain_text("running", timeout=30_000)
    # Before the first epoch: the chart says so, on whole-number epochs, with no stray legend title.
    expect(page.locator("#loss-chart")).to_contain_text("no epochs yet", timeout=10_000)
    ticks = texts(page, "#loss-chart .x-tick text")
    assert ticks and all(re.fullmatch(r"\d+", t) for t in ticks) and int(ticks[-1]) == EPOCHS, ticks
    assert "curve" not in page.locator("#loss-chart").text_content()
    shoot(page, "2a-training-before-the-first-epoch")
    wait_until(lambda: chart_points(page) >= 2)  # train + validation after epoch 1
    first_points = chart_points(page)
    wait_until(lambda: chart_points(page) > first_points)  # the chart gains points as epochs end
    expect(page.locator("#loss-chart")).not_to_contain_text("no epochs yet")
    assert texts(page, "#loss-chart .legend-item") == ["train", "validation"]
    assert "curve" not in page.locator("#loss-chart").text_content()
    # The newest previews: two random samples, and the pair: a validation clip beside its decoding.
    expect(page.locator("#train-preview-0")).to_contain_text("Random sample 1 · epoch", timeout=60_000)
    expect(page.locator("#train-preview-2")).to_contain_text("Original 1 (a validation clip)", timeout=30_000)
    expect(page.locator("#train-preview-3")).to_contain_text("Decoded 1 · epoch")
    expect(page.locator("#train-previews-note")).to_contain_text("a validation clip beside the model's version")
    for player in ("#train-preview-0", "#train-preview-2", "#train-preview-3"):
        assert_playable(page, page.locator(player))
    shoot(page, "2-training-running")

    # -- Stop, then Resume the same experiment ------------------------------------------------
    # The stop message is part of the status line while the run stops, and gone once it has.
    record_texts(page, "#train-status", "statusTexts")
    record_texts(page, "#save-result", "saveTexts")
    page.locator("#train-stop").click()
    try:  # a picture of the message, when the batch lasts long enough to take one
        expect(page.locator("#train-status")).to_contain_text("Stopping after", timeout=2000)
        page.screenshot(path=str(SCREENSHOTS / "2b-training-stopping.png"))
    except AssertionError:
        pass
    expect(page.locator("#train-status")).to_contain_text("stopped", timeout=60_000)
    shown = page.evaluate("window.statusTexts")
    assert any("Stopping after the current batch…" in t for t in shown), shown
    assert "Stopping" not in status_text(page)
    assert not any("Stopping" in t for t in page.evaluate("window.saveTexts"))
    stopped_at = epoch_shown(page) or int(re.search(r"(\d+) / \d+ epochs", status_text(page)).group(1))
    experiment_id = page.locator("#experiment-pick input").input_value()
    assert experiment_id and experiment_id in status_text(page)
    expect(page.locator("#experiments")).to_contain_text("stopped")
    page.locator("#train-resume").click()
    expect(page.locator("#train-status")).to_contain_text("running", timeout=30_000)
    wait_until(lambda: epoch_shown(page) > stopped_at, timeout=60)

    # -- A second tab shows the same job; a reload mid-training finds it still there ----------
    second = context.new_page()
    second.goto(url)
    open_tab(second, "Training")
    expect(second.locator("#train-status")).to_contain_text("running", timeout=20_000)
    expect(second.locator("#train-status")).to_contain_text(experiment_id)
    second.close()

    points_before = chart_points(page)
    page.reload()
    open_tab(page, "Training")
    expect(page.locator("#train-status")).to_contain_text("running", timeout=20_000)
    expect(page.locator("#train-status")).to_contain_text(experiment_id)
    wait_until(lambda: chart_points(page) >= points_before, timeout=20)  # the whole curve, rebuilt from disk
    expect(page.locator("#train-stop")).to_be_enabled()
    # The form shows what this experiment trains with, not the defaults; Model name stays empty.
    expect(page.locator("#train-preset").get_by_label("tiny")).to_be_checked()
    expect(page.locator("#train-epochs input")).to_have_value(str(EPOCHS))
    expect(page.locator("#train-preview-every input")).to_have_value("1")
    expect(page.locator("#save-name input, #save-name textarea").first).to_have_value("")
    # Gradio's own "processing | 1.2s" timer never shows over the status line (it is in the page,
    # transparent, while a handler runs: what counts is that nobody sees it).
    for _ in range(20):  # a few polls
        assert progress_shown(page, "#train-status") == [], progress_shown(page, "#train-status")
        page.wait_for_timeout(150)

    # -- Stop again and save a model ------------------------------------------------------------
    page.locator("#train-stop").click()
    expect(page.locator("#train-status")).to_contain_text("stopped", timeout=60_000)
    assert current_job(ws).done
    epochs_done = int(re.search(r"(\d+) / \d+ epochs", status_text(page)).group(1))
    wait_until(lambda: chart_points(page) == 2 * epochs_done, timeout=15)  # the chart shows every epoch
    page.locator("#save-name input, #save-name textarea").first.fill("journey model")
    page.locator("#save-model").click()
    expect(page.locator("#save-result")).to_contain_text("Saved", timeout=60_000)
    shoot(page, "3-training-stopped")

    # -- Previews: samples and reconstruction pairs with spectrograms ---------------------------
    open_tab(page, "Previews")
    expect(page.locator("#previews-summary")).to_contain_text("random sample", timeout=20_000)
    for picture in ("#preview-original-image-0", "#preview-decoded-image-0"):
        expect(page.locator(f"{picture} svg.spectrogram")).to_be_visible()
        expect(page.locator(picture)).to_contain_text("time (s)")
        expect(page.locator(picture)).to_contain_text("frequency (Hz)")
        assert page.locator(f"{picture} .x-tick").count() >= 2 and page.locator(f"{picture} .y-tick").count() >= 4
        drawn = page.locator(f"{picture} svg.spectrogram").bounding_box()["width"]
        column = page.locator(picture).bounding_box()["width"]
        assert drawn >= 0.95 * column, (drawn, column)  # it fills its box
    assert_playable(page, page.locator("#preview-decoded-0"))
    assert no_share_buttons(page)
    shoot(page, "4-previews")

    # -- Catalog: find the model, generate, play ------------------------------------------------
    open_tab(page, "Catalog")
    expect(page.locator("#models-table")).to_contain_text("journey model", timeout=20_000)
    expect(page.locator("#catalog-model input")).to_have_value("journey model")
    expect(page.locator("#model-details")).to_contain_text("Trained on")
    page.locator("#gen-n input[type=number]").fill("2")
    page.locator("#gen-n input[type=number]").press("Enter")
    page.locator("#gen-duration input").fill("1.5")
    page.locator("#gen-run").click()
    expect(page.locator("#gen-sound-1")).to_be_visible(timeout=60_000)
    assert_playable(page, page.locator("#gen-sound-0"))
    shoot(page, "5-catalog")

    # -- Variations of a training clip, then the same settings as a sample pack ------------------
    page.locator("#gen-mode").get_by_text("Variations of a clip").click()
    expect(page.locator("#gen-like-row")).to_be_visible()
    expect(page.locator("#gen-like input")).not_to_have_value("")  # the model's first clip, picked for you
    page.locator("#gen-duration input").fill("0")
    page.locator("#gen-run").click()
    expect(page.locator("#gen-sound-0")).to_contain_text("distance", timeout=60_000)
    assert_playable(page, page.locator("#gen-sound-1"))
    page.locator("#gen-pack-n input[type=number]").fill("2")
    page.locator("#gen-pack-n input[type=number]").press("Enter")
    page.locator("#gen-pack").click()
    expect(page.locator("#gen-pack-summary")).to_contain_text("2 sounds", timeout=60_000)
    expect(page.locator("#gen-pack-download")).to_be_visible()
    shoot(page, "5b-catalog-variations-pack")

    # -- Transform: a clip of the dataset through the model, beside its original ----------------
    page.get_by_role("tab", name="Transform your clips", exact=True).click()
    page.locator("#transform-dataset input").click()
    page.get_by_role("option", name="journey", exact=True).click()  # a dataset made after the page loaded
    page.locator("#transform-clips input").click()
    page.get_by_role("option", name=clips[0].name, exact=True).click()
    page.keyboard.press("Escape")
    page.locator("#transform-run").click()
    expect(page.locator("#transform-summary")).to_contain_text("Transformed 1 of 1 clip", timeout=60_000)
    assert_playable(page, page.locator("#transform-original-0"))
    assert_playable(page, page.locator("#transform-output-0"))
    expect(page.locator("#transform-files a[download]")).to_have_count(1)
    shoot(page, "6-catalog-transform")

    # -- A refused import: one message; the rest of the tab as it was; the box ready again --------
    hostile = tmp_path / "hostile.distillgan"
    hostile.write_bytes(b"PK\x03\x04 not a model at all")
    page.get_by_text("Import or delete").click()
    page.locator("#model-import input[type=file]").set_input_files(str(hostile))
    expect(page.locator("#import-result")).to_contain_text("Not imported", timeout=30_000)
    expect(page.locator("#import-result")).to_contain_text("hostile.distillgan")
    expect(page.locator(".toast-body")).to_have_count(0)
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)  # no red badge on any component
    expect(page.locator("#models-table")).to_contain_text("journey model")
    expect(page.locator("#model-import a.download-link, #model-import a[download]")).to_have_count(0)
    expect(page.locator("#model-import input[type=file]")).to_have_count(1)  # the drop zone again
    assert no_share_buttons(page)
    shoot(page, "7-catalog-refused-import")

    # -- Delete asks first (the accordion is open from the import) -------------------------------
    page.locator("#model-delete").click()
    expect(page.get_by_text("for good?")).to_be_visible(timeout=10_000)
    page.locator("#model-delete-confirm").click()
    expect(page.locator("#models-table")).not_to_contain_text("journey model", timeout=20_000)
    assert not (ws.models_dir / "journey model.distillgan").exists()

    # -- Nothing left 127.0.0.1 -----------------------------------------------------------------
    outside = [u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
               and urlparse(u).hostname not in ("127.0.0.1", "localhost")]
    assert not outside, outside
    assert requests
    context.close()
