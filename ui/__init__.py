"""The Distill web app (`distill-ui`): a thin Gradio shell over the engine.

`ui.app.build_app(ws)` draws the page; each tab lives in its own module whose handlers are
small functions that call `distill.*` and turn the result into component values.
"""
