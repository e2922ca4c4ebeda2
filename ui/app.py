"""`distill-ui`: the Distill web app.

    distill-ui [--workspace DIR] [--host 127.0.0.1] [--port 7860] [--no-browser]

The app is local and works with no internet at all: analytics and version checks are off
(the environment variable is set before Gradio is imported), the theme uses system fonts
only, and Gradio may serve the workspace's files and its own, nothing else.

Ctrl-C, SIGTERM (`kill`, a service manager) and SIGHUP (a closed terminal) stop the server
and then the training it runs, gracefully: the job finishes its batch and checkpoints, and
the experiment reads `stopped`, resumable, not `interrupted`.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported, on purpose

import argparse  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from distill import DistillError, __version__  # noqa: E402
from distill.example_corpus import ensure_example_dataset  # noqa: E402
from distill.stopping import StopSignals, stop_jobs_here  # noqa: E402
from distill.workspace import Workspace  # noqa: E402
from ui import catalog_tab, dataset_tab, previews_tab, training_tab, transform_panel  # noqa: E402

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial",
                "sans-serif"]
SYSTEM_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]

CSS = """
.gradio-container { max-width: 1400px !important; }
#train-status { min-height: 2.6em; }
#loss-chart svg { display: block; }
.log-mel { margin: 0; }
.log-mel figcaption { font-size: var(--block-label-text-size); color: var(--block-label-text-color); margin: var(--spacing-sm) 0; }
#model-details ul { margin-top: 0.2em; }
footer { display: none !important; }
.bottom-aligned { align-items: flex-end !important; }
.bottom-aligned > button { margin-bottom: var(--spacing-lg); }
"""


def theme() -> gr.themes.Base:
    """Gradio's default look with system fonts: plain font names, so nothing is fetched."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO)


def launch_options(ws: Workspace) -> dict[str, Any]:
    """Keyword arguments for `Blocks.launch` (Gradio 6 takes theme and css there)."""
    return dict(theme=theme(), css=CSS, allowed_paths=[str(ws.root)], ssr_mode=False, pwa=False,
                mcp_server=False, enable_monitoring=False, show_error=True, footer_links=[])


def build_app(ws: Workspace) -> gr.Blocks:
    """The whole page for workspace `ws`. Nothing global: tests build one per temp workspace."""
    with gr.Blocks(title="Distill", analytics_enabled=False) as app:
        gr.Markdown(f"## Distill · train sound models on your own clips\n"
                    f"<small>workspace `{ws.root}` · v{__version__}</small>", elem_id="header")
        with gr.Tabs():
            with gr.Tab("Dataset", id="dataset") as dataset_page:
                data = dataset_tab.build(ws)
            with gr.Tab("Training", id="training") as training_page:
                training = training_tab.build(ws)
            with gr.Tab("Previews", id="previews") as previews_page:
                previews = previews_tab.build(ws)
            with gr.Tab("Catalog", id="catalog") as catalog_page:
                catalog = catalog_tab.build(ws)

        # Initial values are drawn per page load (a reload must see what is on disk now), and
        # each tab redraws its lists when it is opened (a dataset or model made elsewhere).
        app.load(data.refresh, None, data.refresh_outputs, api_visibility="private")
        app.load(training.load, None, training.load_outputs, api_visibility="private", show_progress="hidden")
        app.load(previews.load, None, previews.load_outputs, api_visibility="private")
        app.load(catalog.load, None, catalog.load_outputs, api_visibility="private")
        dataset_page.select(data.refresh, [data.dataset], data.refresh_outputs, api_visibility="private")
        training_page.select(_refresh_datasets(ws), [training.dataset], [training.dataset],
                             api_visibility="private", show_progress="hidden")
        # Opening Previews shows the chosen experiment's newest epoch (it may have gained some).
        previews_page.select(previews.load, [previews.experiment], previews.load_outputs, api_visibility="private")
        catalog_page.select(catalog.load, [catalog.search, catalog.model], catalog.load_outputs,
                            api_visibility="private")
        catalog_page.select(transform_panel.refresh_datasets(ws), [catalog.transform.dataset],
                            [catalog.transform.dataset], api_visibility="private", show_progress="hidden")
    app.queue(default_concurrency_limit=2)
    return app


def _refresh_datasets(ws: Workspace):
    def refresh(current: str | None):
        names = dataset_tab.dataset_names(ws)
        return gr.update(choices=names, value=current if current in names else (names[0] if names else None))
    return refresh


def launch(ws: Workspace, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT, open_browser: bool = False,
           block: bool = True) -> tuple[gr.Blocks, str]:
    """Build and start the app; returns it and its local URL. `block=False` returns at once
    (tests); the server then runs on a background thread until `app.close()`."""
    app = build_app(ws)
    _, url, _ = app.launch(server_name=host, server_port=port, inbrowser=open_browser, prevent_thread_lock=True,
                           quiet=True, **launch_options(ws))
    if block:
        print(f"Distill is running at {url}\nWorkspace: {ws.root}\nPress Ctrl+C to stop.", flush=True)
        serve_until_stopped(app, ws)
    return app, url


def serve_until_stopped(app: gr.Blocks, ws: Workspace) -> None:
    """Serve until Ctrl-C, SIGTERM or SIGHUP; then stop this process's jobs gracefully (a
    daemon thread would otherwise die mid-batch with the process, its epoch lost). A second
    signal while they stop quits at once."""
    with StopSignals():
        try:
            app.block_thread()  # turns the first signal's KeyboardInterrupt into closing the server
        except KeyboardInterrupt:
            pass
        try:
            for line in stop_jobs_here(ws):
                print(line, flush=True)
        except KeyboardInterrupt:
            print("quitting without waiting for the training to checkpoint", flush=True)


def open_workspace(root: str | None) -> Workspace:
    """The workspace at `root` (default: $DISTILL_WORKSPACE or ~/distill-workspace); on a first
    start it gets the bundled example dataset, so Train works at once."""
    ws = Workspace.open(root)
    if ensure_example_dataset(ws) is not None:
        print("Created the example dataset 'example': open the Training tab and press Train.", flush=True)
    return ws


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distill-ui", description="The Distill web app.")
    parser.add_argument("--workspace", metavar="DIR", default=None,
                        help="workspace folder (default: $DISTILL_WORKSPACE, else ~/distill-workspace)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}: this computer only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    args = parser.parse_args(argv)
    try:
        ws = open_workspace(args.workspace)
        launch(ws, args.host, args.port, open_browser=not args.no_browser)
    except DistillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot start the web app on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    # The server is closed and every job has checkpointed and ended (serve_until_stopped).
    # What may still run is a page handler's worker thread inside a torch call; letting the
    # interpreter tear down around it aborted the process ("terminate called without an
    # active exception", exit -6) now and then. Nothing is left to save: leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
