"""A small synthetic ChestX-ray14 folder for tests: the published CSV layout, split lists, and real NIH PNGs
copied from the shared data's chest-xray-samples into a tmp folder (never into the repository)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

# The real Data_Entry_2017.csv header, trailing comma included.
CXR_HEADER = ["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age", "Patient Gender",
              "View Position", "OriginalImage[Width", "Height]", "OriginalImagePixelSpacing[x", "y]", ""]
CXR_ROWS = [  # image, findings, follow-up, patient
    ("00000001_000.png", "Cardiomegaly", 0, 1), ("00000001_001.png", "Cardiomegaly|Emphysema", 1, 1),
    ("00000002_000.png", "No Finding", 0, 2), ("00027426_000.png", "Effusion|Hernia", 0, 27426),
    ("00000003_000.png", "Infiltration", 0, 3),
]
TEST_IMAGES = {"00027426_000.png"}


def write_chestxray14(root: Path, shared_data: Path, rows=CXR_ROWS, test_images=TEST_IMAGES) -> Path:
    """Write root/Data_Entry_2017.csv, root/images_001/images/*.png, train_val_list.txt and test_list.txt."""
    images = root / "images_001" / "images"
    images.mkdir(parents=True)
    samples = shared_data / "chest-xray-samples"
    for i, (name, *_) in enumerate(rows):
        real = "00027426_000.png" if name == "00027426_000.png" or i % 2 else "00000001_000.png"
        shutil.copy(samples / real, images / name)
    with open(root / "Data_Entry_2017.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CXR_HEADER)
        for name, findings, follow_up, patient in rows:
            writer.writerow([name, findings, follow_up, patient, 58, "M", "PA", 2682, 2749, 0.143, 0.143, ""])
    (root / "train_val_list.txt").write_text("".join(r[0] + "\n" for r in rows if r[0] not in test_images))
    (root / "test_list.txt").write_text("".join(r[0] + "\n" for r in rows if r[0] in test_images))
    return root
