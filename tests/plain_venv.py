"""A virtualenv with plain transformers and none of medhub: what a Hub user without medhub has.

Like tests/space_venv.py, the virtualenv reaches this interpreter's installed packages through one `.pth` line
naming a folder of links (a fresh install of torch and transformers takes minutes on the 2-core machine), but
the folder leaves out medhub and every package medhub brings that transformers does not (`HIDDEN`): the remote
code must load with torch, transformers, safetensors, huggingface_hub, numpy and pillow alone.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

HIDDEN = ("medhub", "_editable_impl_medhub", "__editable__", "__pycache__", "pydicom", "scipy", "nibabel",
          "skimage", "scikit_image", "highdicom", "datasets", "accelerate", "gradio", "sklearn", "scikit_learn",
          "monai", "olah")


def plain_transformers_venv(folder: Path, also: tuple[str, ...] = ()) -> Path:
    """A virtualenv at `folder` seeing this interpreter's packages except `HIDDEN` (less those in `also`, e.g.
    ("pydicom",): a transformers user who installed pydicom); returns its python."""
    hidden_names = tuple(name for name in HIDDEN if name not in also)
    shared = folder / "site-links"
    shared.mkdir(parents=True, exist_ok=True)
    for site in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]):
        for entry in Path(site).iterdir():
            hidden = entry.name.lower().startswith(hidden_names) or entry.suffix == ".pth"
            if not hidden and not (shared / entry.name).exists():
                (shared / entry.name).symlink_to(entry)
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "_plain_transformers.pth").write_text(f"{shared}\n", encoding="utf-8")
    return python
