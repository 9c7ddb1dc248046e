"""Turn a 3D BraTS training run into a zoo folder: float16 weights and a card whose numbers are `medhub evaluate`'s.

    python -m medhub.training.brats_zoo out/deepmedic-brats out/deepmedic-brats/test.json model_zoo/deepmedic-brats \\
        --repo-id medhub/deepmedic-brats --recipe recipes/zoo/deepmedic-brats.yaml [--note-file notes.md]

The test metrics JSON is what `medhub evaluate RUN brats2015-examples --split test --out test.json` wrote; its
rows become the card's model-index (with the training-subject validation-patch rows the run recorded).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

BRATS_LICENCE = "cc-by-nc-sa-3.0"
LIMITATIONS = (
    "Trained on 2 subjects (BraTS 2013 pat0005 and pat0006, as redistributed with the original DeepMedic) and tested "
    "on 2 others (pat0003, pat0004): four glioma scans cannot represent the variety of scanners, protocols and "
    "tumours of clinical practice, and a 2-subject test set gives wide uncertainty on every number. Inputs must be "
    "skull-stripped, 1 mm isotropic FLAIR and T1c volumes z-scored inside the brain like the training data. "
    "NOT FOR CLINICAL OR DIAGNOSTIC USE."
)


def publish(run_dir: str | Path, test_json: str | Path, out_dir: str | Path, repo_id: str, recipe: str,
            notes: str = "") -> Path:
    from .. import MedModel

    model = MedModel.from_pretrained(str(run_dir))
    info = dict(model.config.weights_info or {})
    test = json.loads(Path(test_json).read_text(encoding="utf-8"))
    validation_rows = [dict(r, name=f"patch_{r['name']}", split="validation-patches (training subjects)")
                       for r in info.get("metrics") or [] if r["name"] in ("mean_dice",)]
    patches = info.get("patches") or {}
    subjects = patches.get("subjects") or {}
    info.update(
        repo_id=repo_id,
        license=BRATS_LICENCE,
        datasets=["BraTS 2015 (four example subjects redistributed with DeepMedic)"],
        dataset_name="brats2015-examples",
        tags=["brain-tumour", "brats", "mri", "3d"],
        metrics=list(test["metrics"]) + validation_rows,
        evaluation_command=f"medhub evaluate {repo_id} brats2015-examples --split test",
        training_data=(f"brats2015-examples: train subjects {subjects.get('train')}; test subjects "
                       f"{subjects.get('test')} (whole volumes, never used for training or model choice). "
                       f"Patches {patches.get('patch_size')} (labels {patches.get('label_size')}), "
                       f"{patches.get('fg_fraction', 0.5):.0%} centred on tumour, mirrored along axes "
                       f"{patches.get('flip_axes')}. Labels: 0 background, 1 necrosis, 2 oedema, "
                       "3 non-enhancing, 4 enhancing. BraTS: Menze et al., IEEE TMI 2015."),
        limitations=LIMITATIONS + (" " + notes if notes else ""),
        intended_use="Research and teaching on 3D brain-tumour segmentation; a reproducible zoo baseline.",
        recipe=recipe,
        training_procedure=(f"Recipe `{recipe}` (`medhub train {recipe}`), on a 2-core CPU. "
                            f"Training time: {info.get('training_time', '?')}. Weights stored in float16 "
                            "(evaluated after loading as float32 on the CPU)." + (" " + notes if notes else "")),
    )
    model.config.weights_info = info
    model = model.to(torch.float16)
    model.save_pretrained(out_dir)
    return Path(out_dir)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("test_json")
    parser.add_argument("out_dir")
    parser.add_argument("--repo-id", required=True)
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--note-file", default=None)
    args = parser.parse_args(argv)
    notes = Path(args.note_file).read_text(encoding="utf-8").strip() if args.note_file else ""
    out = publish(args.run_dir, args.test_json, args.out_dir, args.repo_id, args.recipe, notes)
    print(f"wrote {out}: {sum(p.stat().st_size for p in out.glob('*.safetensors')) / 1e6:.2f} MB of weights")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
