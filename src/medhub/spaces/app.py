"""The demo apps: one Space per model (`build_space`) and every model in tabs (`build_app`, `medhub demo`).

`launch(app, ...)` applies the serving limits every app needs: uploads above MAX_FILE_SIZE are refused, at most
QUEUE_SIZE requests wait (more are refused), one request at a time per event (models are not thread-safe when
Grad-CAM hooks are attached), gradio's cache swept every 5 minutes, no SSR (no Node.js), no analytics.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from ..zoo.catalog import CHECKPOINTS  # noqa: E402
from ..zoo.loading import organisation  # noqa: E402
from . import classify, segment2d, segment3d  # noqa: E402
from .loading import LoadedModel, load_model  # noqa: E402
from .ui import DISCLAIMER  # noqa: E402
from .uploads import MAX_FILE_SIZE, QUEUE_SIZE, examples_dir, watch_queue  # noqa: E402

EXAMPLES = "examples"  # a Space folder's examples (medhub.spaces.repo writes them)
_EXAMPLES_OF: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # app -> the examples folder it shows
BUILDERS = {"classify": classify.build_tab, "segment2d": segment2d.build_tab, "segment3d": segment3d.build_tab}
# System fonts only: the page must render offline (the default theme would fetch Google Fonts).
THEME = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
CSS = ".medhub-untrained{border:3px solid #d93025;background:#fdecea;padding:6px 12px;border-radius:8px}" \
      ".medhub-notice{border-left:6px solid #f29900;background:#fef7e0;padding:4px 12px}"


def _model_section(loaded: LoadedModel, folder: Path | None) -> None:
    gr.Markdown(f"### {loaded.entry.title}\n{loaded.entry.description}")
    gr.Markdown(serving_line(loaded), elem_id=f"{loaded.entry.slug}-weights")
    if not loaded.trained:
        gr.Markdown(loaded.banner, elem_classes=["medhub-untrained"], elem_id=f"{loaded.entry.slug}-untrained")
    BUILDERS[loaded.entry.demo](loaded, folder)


def serving_line(loaded: LoadedModel) -> str:
    """Which weights the tab serves and where they came from (the Hub, the local zoo, or random weights)."""
    state = "trained weights" if loaded.trained else "**random weights** (untrained)"
    return f"Serving `{loaded.repo_id}`: {state} from {loaded.source}."


def _blocks(title: str) -> gr.Blocks:
    return gr.Blocks(title=title, delete_cache=(300, 600))


def build_space(model_id: str, examples_folder: str | Path | None = None, model: LoadedModel | None = None,
                org: str | None = None) -> gr.Blocks:
    """One model's demo (what `spaces/<id>/app.py` serves): the weights of `<org>/<id>` (org default MEDHUB_ORG,
    else "medhub"), the examples in `examples_folder` (default MEDHUB_EXAMPLES_DIR or ../shared/data)."""
    folder = Path(examples_folder) if examples_folder else examples_dir()
    loaded = model or load_model(model_id, org)
    with _blocks(f"medhub - {loaded.entry.title}") as app:
        gr.Markdown(f"# medhub: {loaded.entry.title}")
        gr.Markdown(DISCLAIMER, elem_classes=["medhub-notice"], elem_id="medhub-disclaimer")
        _model_section(loaded, folder)
    _EXAMPLES_OF[app] = folder
    return app


def space_demo(model_id: str, app_file: str | Path, default_org: str) -> gr.Blocks:
    """The demo of a Space folder's app.py (`medhub.spaces.repo`): the weights of `<org>/<id>`, org the Space
    variable MEDHUB_ORG, else `default_org`; the examples of the folder's `examples/`."""
    examples = Path(app_file).resolve().parent / EXAMPLES
    return build_space(model_id, examples_folder=examples, org=organisation(default_org))


def build_app(model_ids: Sequence[str] | None = None, examples_folder: str | Path | None = None,
              models: dict[str, LoadedModel] | None = None) -> gr.Blocks:
    """Every demo model in one app, a tab each (what `medhub demo` serves)."""
    folder = Path(examples_folder) if examples_folder else examples_dir()
    ids = list(model_ids or [c.id for c in CHECKPOINTS])
    models = models or {}
    loaded = {i: models.get(i) or load_model(i) for i in ids}
    with _blocks("medhub demos") as app:
        gr.Markdown("# medhub: medical imaging CNNs\nEvery model of the medhub zoo, loaded with "
                    f"`MedModel.from_pretrained(\"{organisation()}/<id>\")`. Upload an image or click an example.")
        gr.Markdown(DISCLAIMER, elem_classes=["medhub-notice"], elem_id="medhub-disclaimer")
        with gr.Tabs():
            for model_id, model in loaded.items():
                title = model.entry.short_title + ("" if model.trained else " ⚠ untrained")
                with gr.Tab(title, id=model.entry.slug, elem_id=f"tab-{model.entry.slug}"):
                    _model_section(model, folder)
    return app


def launch(app: gr.Blocks, host: str | None = None, port: int | None = None, examples_folder: str | Path | None = None,
           max_file_size: str | int | None = None, queue_size: int | None = None, block: bool = True, **kwargs):
    """Serve `app` with the demo's limits (see the module docstring); returns gradio's (app, local url, share url).
    examples_folder: readable by the page; default the one `app` was built with."""
    folder = Path(examples_folder) if examples_folder else _EXAMPLES_OF.get(app) or examples_dir()
    app.queue(max_size=queue_size or QUEUE_SIZE, default_concurrency_limit=1)
    watch_queue(app)
    return app.launch(server_name=host, server_port=port, max_file_size=max_file_size or MAX_FILE_SIZE,
                      allowed_paths=[str(folder)] if folder else None, show_error=True, ssr_mode=False,
                      prevent_thread_lock=not block, theme=THEME, css=CSS, footer_links=["api"], **kwargs)
