"""The History panel in a real browser (Playwright driving Debian's Chromium): generate, keep
one, generate again, A/B the two with the key, find them all after a reload, and download a
pack of the kept ones. Screenshots (1280×800) go to artifacts/screenshots/catalog-history*.png."""

from __future__ import annotations

import os
import zipfile

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from distill.history import list_history  # noqa: E402
from distill.workspace import Workspace  # noqa: E402
from conftest import running_app  # noqa: E402
from test_modelfile import make_model_file  # noqa: E402
import test_ui_browser as journey  # noqa: E402
from test_ui_browser import SCREENSHOTS, VIEWPORT, open_tab  # noqa: E402

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]
MODEL = "journey sounds"
browser = journey.browser  # the fixture: Debian's Chromium, once per module


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ws = Workspace.open(tmp_path_factory.mktemp("ui-history") / "workspace")
    make_model_file(ws.models_dir / f"{MODEL}.distillgan")
    with running_app(ws) as url:
        yield ws, url


def shoot_history(page, name: str) -> None:
    """The History panel as a person sees it at 1280×800 (scrolled to it), and the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for close in page.locator("button.toast-close").all():
        if close.is_visible():
            close.click()
    page.wait_for_timeout(400)
    page.locator("#history-panel").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.screenshot(path=str(SCREENSHOTS / f"{name}-full.png"), full_page=True)


def cards(page):
    return page.locator("#history-list .history-card")


def generate(page, seed: int) -> None:
    page.locator("#gen-seed input").fill(str(seed))
    page.locator("#gen-run").click()


def ab_state(page) -> dict:
    return page.locator("#history-ab .ab").evaluate(
        "box => ({active: box.dataset.active, paused: [...box.querySelectorAll('audio')].map(a => a.paused)})")


def test_generate_keep_generate_again_ab_and_pack_the_kept_ones(server, browser, tmp_path):
    ws, url = server
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.goto(url)
    open_tab(page, "Catalog")
    expect(page.locator("#catalog-model input")).to_have_value(MODEL, timeout=20_000)
    expect(page.locator("#history-list")).to_contain_text("No sounds yet")

    # -- generate two, keep the first --------------------------------------------------------
    page.locator("#gen-n input[type=number]").fill("2")
    page.locator("#gen-n input[type=number]").press("Enter")
    page.locator("#gen-duration input").fill("0.8")
    generate(page, 7)
    expect(cards(page)).to_have_count(2, timeout=60_000)
    expect(page.locator("#history-list")).to_contain_text("Random · seed 7")
    first = cards(page).filter(has_text="seed 7")
    first.locator("button[data-action=keep]").click()
    expect(first).to_have_class("history-card kept")
    expect(first.locator("button[data-action=keep]")).to_have_text("★ Kept")
    thumbnail = first.locator("img.history-thumb")
    expect(thumbnail).to_be_visible()
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth") > 0  # the PNG is served

    # -- generate again: the new ones on top, the kept one still kept ---------------------------
    generate(page, 40)
    expect(cards(page)).to_have_count(4, timeout=60_000)
    expect(cards(page).first).to_contain_text("seed 40")
    expect(page.locator("#history-list .history-card.kept")).to_have_count(1)

    # -- A/B: pick the kept one and a new one; the key switches which plays ---------------------
    cards(page).filter(has_text="seed 7").locator("button[data-action=ab]").click()
    expect(page.locator("#history-ab")).to_contain_text("one picked")
    cards(page).filter(has_text="seed 40").locator("button[data-action=ab]").click()
    expect(page.locator("#history-ab audio")).to_have_count(2)
    expect(page.locator("#history-ab .ab-side[data-side=a]")).to_contain_text("seed 7")
    expect(page.locator("#history-ab .ab-side[data-side=b]")).to_contain_text("seed 40")
    # Both files are served and decode (0.8 s each)
    page.wait_for_function("() => [...document.querySelectorAll('#history-ab audio')].every(a => a.duration > 0.7)",
                           timeout=10_000)
    page.locator("body").click(position={"x": 5, "y": 5})  # the focus out of any field
    page.keyboard.press("x")  # the first press plays A
    page.wait_for_function("() => !document.querySelectorAll('#history-ab audio')[0].paused", timeout=10_000)
    assert ab_state(page)["active"] == "a"
    page.keyboard.press("x")  # then B, from the same moment
    page.wait_for_function("() => document.querySelector('#history-ab .ab').dataset.active === 'b'", timeout=5000)
    page.wait_for_function("() => !document.querySelectorAll('#history-ab audio')[1].paused", timeout=10_000)
    assert ab_state(page)["paused"][0]  # A stopped
    page.locator("#history-ab .ab-switch").click()  # the button does what the key does
    page.wait_for_function("() => document.querySelector('#history-ab .ab').dataset.active === 'a'", timeout=5000)
    expect(cards(page).filter(has_text="seed 7").locator("button[data-action=ab]")).to_have_text("A/B: A")
    shoot_history(page, "catalog-history")

    # -- a reload finds the same history, read from disk ----------------------------------------
    page.reload()
    open_tab(page, "Catalog")
    expect(cards(page)).to_have_count(4, timeout=20_000)
    expect(page.locator("#history-list .history-card.kept")).to_contain_text("seed 7")

    # -- "vary this" sets up Generate with this sound as the source ------------------------------
    cards(page).filter(has_text="seed 40").locator("button[data-action=vary]").click()
    expect(page.locator("#gen-like-row")).to_be_visible(timeout=10_000)
    assert page.locator("#gen-like input").input_value().endswith(".wav")

    # -- keep one more, and make a pack of the kept ones ----------------------------------------
    cards(page).filter(has_text="seed 41").locator("button[data-action=keep]").click()
    expect(page.locator("#history-list .history-card.kept")).to_have_count(2)
    page.locator("#history-view").get_by_text("Kept ★").click()
    expect(cards(page)).to_have_count(2)
    page.locator("#history-pack").click()
    expect(page.locator("#history-pack-summary")).to_contain_text("2 kept sounds", timeout=60_000)
    with page.expect_download() as download:
        page.locator("#history-pack-download").click()
    path = tmp_path / "kept.zip"
    download.value.save_as(path)
    kept = [e for e in list_history(ws, MODEL) if e.kept]
    with zipfile.ZipFile(path) as archive:
        names = sorted(n.split("/", 1)[1] for n in archive.namelist())
    assert names == sorted(["pack.json"] + [f"{i + 1:03d}-{e.audio}" for i, e in enumerate(kept)])
    shoot_history(page, "catalog-history-pack")
    context.close()
