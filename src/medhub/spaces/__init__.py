"""Gradio demos of the medhub zoo: a browser UI per model kind, one Space per model, all of them in tabs.

- `build_space("chexnet-pneumonia")`: one model's app (`space_demo`: as a Space folder's app.py serves it);
  `build_app()`: every model in tabs
  (`medhub demo`); `launch(app, host, port)`: serve with upload/queue limits.
- `classify` (CheXNet, ResNet, VGG), `segment2d` (U-Net), `segment3d` (DeepMedic, Attention U-Net): the tabs.
- `loading` (the models, untrained fallback flagged), `uploads` (input checks, clean-up of uploads), `ui` (the
  notice, error messages, pictures and downloads). Which demos exist is the zoo catalogue (`medhub.zoo`).

Research use only, not a medical device. Requires the `spaces` extra (`pip install medhub[spaces]`).
"""

from .app import build_app, build_space, launch, space_demo
from .loading import load_model
from .ui import DISCLAIMER

__all__ = ["DISCLAIMER", "build_app", "build_space", "launch", "load_model", "space_demo"]
