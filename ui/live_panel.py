"""The Catalog's "Play it live" accordion: the picked model as a TorchScript file for nn~
(Max/MSP, Pure Data) and NN.ar (SuperCollider), with its download (`distill.live`)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from distill import DistillError
from distill.workspace import Workspace
from ui.common import handle_errors

HOW_TO = ("A TorchScript file the **nn~** object (Max/MSP, Pure Data) and **NN.ar** (SuperCollider) "
          "load: `forward` plays audio through the model, `encode` / `decode` give and take its latent, "
          "`random` plays its own training sounds. The lines to type are in the README.")


@dataclass
class LivePanel:
    export: gr.Button
    download: gr.DownloadButton
    result: gr.Markdown


def build(ws: Workspace, model: gr.Dropdown) -> LivePanel:
    gr.Markdown(HOW_TO)
    export = gr.Button("Export for Max / Pd / SuperCollider (.ts)", size="md", elem_id="live-export")
    result = gr.Markdown(elem_id="live-result")
    download = gr.DownloadButton("Download the live model (.ts)", visible=False, elem_id="live-download")

    @handle_errors
    def export_live(name: str | None):
        from distill.live import export_live_model  # torch.jit: only when asked

        if not name:
            raise DistillError("pick a model to export")
        info = export_live_model(ws, name)
        forward = info["methods"]["forward"]
        text = (f"**{name}.ts** · {info['size_bytes'] / 1e6:.1f} MB · {info['sampling_rate']} Hz, "
                f"{forward[0]} channel{'s' if forward[0] > 1 else ''} · latency {info['latency_samples']} samples "
                f"({info['latency_ms']:g} ms) · buffers of {info['ratio']} samples or a multiple")
        return gr.update(value=info["path"], visible=True), text

    export.click(export_live, [model], [download, result], api_name="export_live")
    model.change(lambda _: (gr.update(visible=False), ""), [model], [download, result], api_visibility="private",
                 show_progress="hidden")
    return LivePanel(export=export, download=download, result=result)
