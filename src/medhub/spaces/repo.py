"""The files of a zoo checkpoint's Hugging Face Space repo, as the Hub builds it (`medhub spaces build` writes them).

A Space folder stands on its own: nothing in it refers to a medhub checkout or to ../shared/data.

- `README.md`: the Space configuration of the Hub's Spaces config reference (`sdk: gradio`, `sdk_version`,
  `python_version`, `app_file`, `models: [<org>/<id>]`, `license` = the weights' licence, `suggested_hardware`,
  `short_description`) as a `huggingface_hub.SpaceCard`, then what the Space does and where its parts come from;
- `requirements.txt`: medhub from the wheel beside it (no package index has medhub), referenced by relative path
  (the Hub installs the requirements from the Space's root), gradio pinned to `sdk_version`, and `spaces`
  (ZeroGPU's package: the inference functions run under `spaces.GPU`, a no-op on other hardware);
- `app.py`: `medhub.spaces.space_demo(<id>, ...)`, serving `<org>/<id>` from the Hub, `<org>` being the Space
  variable MEDHUB_ORG or else the organisation the folder was built for, with the examples of `examples/`;
- `examples/`: the catalogue's `space_examples` (`medhub.zoo.catalog.SpaceExample`), cut from a folder laid out
  like ../shared/data by `write_examples`, with `examples/CREDITS.md` naming each file's source and licence.

The wheel and `examples/` are build products (`medhub.spaces.publish`), kept out of git by the checkout's
.gitignore; the three text files are committed, and a test keeps them equal to what this module writes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ConfigError, InputError
from ..zoo.catalog import Checkpoint, SpaceExample
from .app import EXAMPLES
from .ui import DISCLAIMER

GRADIO_VERSION = "6.31.0"  # the gradio the demos are tested with (constraints.txt): every Space's sdk_version
PYTHON_VERSION = "3.11"  # the Python the Spaces are tested with
DEFAULT_ORG = "medhub"
COLOURS = {"classify": "blue", "segment2d": "green", "segment3d": "purple"}


def wheel_name(version: str = __version__) -> str:
    """The file name of medhub's wheel (pure Python, any platform), as `pip wheel` names it."""
    return f"medhub-{version}-py3-none-any.whl"


def front_matter(entry: Checkpoint, org: str = DEFAULT_ORG) -> dict:
    """The Space configuration (README front matter) of `entry`'s Space serving `<org>/<id>`."""
    return {"title": f"medhub {entry.title}", "emoji": "🩻", "colorFrom": COLOURS[entry.demo], "colorTo": "gray",
            "sdk": "gradio", "sdk_version": GRADIO_VERSION, "python_version": PYTHON_VERSION, "app_file": "app.py",
            "pinned": False, "license": entry.license, "models": [f"{org}/{entry.id}"],
            "suggested_hardware": entry.hardware,
            "short_description": f"{entry.short_title} demo - research use only",
            "tags": ["medical-imaging", "medhub"]}


def readme(entry: Checkpoint, org: str = DEFAULT_ORG) -> str:
    from huggingface_hub import SpaceCard, SpaceCardData

    repo = f"{org}/{entry.id}"
    examples = "".join(f"\n  - `{EXAMPLES}/{e.path}`: {e.credit}" for e in entry.space_examples)
    body = f"""
# {repo}: {entry.title}

{entry.description}

{entry.usage}

{DISCLAIMER}

- Model: [`{repo}`](https://huggingface.co/{repo}), loaded with `MedModel.from_pretrained("{repo}")`; \
set the Space variable `MEDHUB_ORG` to serve `<MEDHUB_ORG>/{entry.id}` instead. The app says which weights it \
serves, and runs the reference configuration with random weights under a red banner when the repo is not \
published yet.
- Training data: {entry.data_credit}.
- Examples (in `{EXAMPLES}/`, see `{EXAMPLES}/CREDITS.md`):{examples or " none"}
- Runs on the GPU when there is one (`spaces.GPU` on ZeroGPU hardware); on CPU everything still works.
- medhub is installed from the wheel in this folder (`{wheel_name()}`); the interface is \
`medhub.spaces.space_demo("{entry.id}", ...)`. This folder is written by `medhub spaces build` in the medhub \
repository.
"""
    card = SpaceCard("---\n" + SpaceCardData(**front_matter(entry, org)).to_yaml() + "\n---\n" + body)
    return str(card)


def requirements(entry: Checkpoint) -> str:
    return (f"# medhub from the wheel beside this file (built by `medhub spaces build`; no package index has it)\n"
            f"./{wheel_name()}\n"
            f"gradio=={GRADIO_VERSION}\n"
            "spaces\n")


def app_py(entry: Checkpoint, org: str = DEFAULT_ORG) -> str:
    """`medhub.spaces.space_demo`: the weights of `<MEDHUB_ORG or org>/<id>`, the examples of `examples/`."""
    return f'''"""A Hugging Face Space written by `medhub spaces build` (see README.md): medhub.spaces."""

from medhub.spaces import launch, space_demo

demo = space_demo("{entry.id}", __file__, default_org="{org}")

if __name__ == "__main__":
    launch(demo)
'''


def space_texts(entry: Checkpoint, org: str = DEFAULT_ORG) -> dict[str, str]:
    """The Space's text files (README.md, requirements.txt, app.py), by name."""
    return {"README.md": readme(entry, org), "requirements.txt": requirements(entry), "app.py": app_py(entry, org)}


# -- examples ---------------------------------------------------------------------------------------------------
def write_examples(entry: Checkpoint, data: Path, folder: Path) -> list[Path]:
    """Write `entry.space_examples`, cut from `data` (laid out like ../shared/data), into `folder/examples/`
    (replacing what was there), with CREDITS.md. Returns the files written."""
    target = folder / EXAMPLES
    shutil.rmtree(target, ignore_errors=True)
    written = []
    for example in entry.space_examples:
        source = data / example.path
        if not source.is_file():
            raise InputError(f"{entry.id}: example source {source} does not exist (expected a folder laid out like "
                             "../shared/data; set MEDHUB_DATA_DIR)")
        out = target / example.path
        out.parent.mkdir(parents=True, exist_ok=True)
        _cut(example, source, out)
        written.append(out)
    if written:
        credits = "".join(f"- `{e.path}`: {e.credit}\n" for e in entry.space_examples)
        (target / "CREDITS.md").write_text(f"# Example inputs of this Space\n\n{credits}", encoding="utf-8")
        written.append(target / "CREDITS.md")
    return written


def _cut(example: SpaceExample, source: Path, out: Path) -> None:
    """Copy `source` to `out`, cropped to `example.crop` (PNG/JPEG with Pillow, NIfTI with nibabel)."""
    if not example.crop:
        shutil.copyfile(source, out)
        return
    name = source.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        image = nib.load(source)
        _check_crop(example, image.shape)
        crop = image.slicer[tuple(slice(a, b) for a, b in example.crop)]  # the affine follows the crop
        nib.save(nib.Nifti1Image(np.asarray(crop.dataobj), crop.affine, crop.header), out)
    elif name.endswith((".png", ".jpg", ".jpeg")):
        from PIL import Image

        with Image.open(source) as image:
            _check_crop(example, (image.height, image.width))
            (rows, cols) = example.crop
            image.crop((cols[0], rows[0], cols[1], rows[1])).save(out, quality=95)  # quality: JPEG only
    else:
        raise ConfigError(f"space example {example.path}: cannot crop this kind of file (PNG, JPEG or NIfTI "
                          "expected); ship it whole (crop=())")


def _check_crop(example: SpaceExample, shape: tuple[int, ...]) -> None:
    if len(example.crop) != len(shape) or any(not 0 <= a < b <= s for (a, b), s in zip(example.crop, shape)):
        raise ConfigError(f"space example {example.path}: crop {example.crop} does not fit its shape {tuple(shape)} "
                          "(expected one (start, stop) per axis, 0 <= start < stop <= size)")


__all__ = ["DEFAULT_ORG", "EXAMPLES", "GRADIO_VERSION", "PYTHON_VERSION", "app_py", "front_matter", "readme",
           "requirements", "space_texts", "wheel_name", "write_examples"]
