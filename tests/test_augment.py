"""medhub.augment: invariants of the U-Net elastic deformation, flips/rotations/scaling, intensity
transforms, DeepMedic's 50/50 patch sampling and on-the-fly use through datasets + DataLoader."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medhub.augment import (
    CentreSampler,
    Compose,
    RandomElastic,
    RandomFlip,
    RandomGamma,
    RandomGaussianNoise,
    RandomPatch,
    RandomRot90,
    RandomRotate,
    RandomScale,
    RandomScaleShift,
    coarse_displacements,
    dense_displacement_field,
    extract_patch,
    flip,
    sample_centres,
    sample_patches,
)
from medhub.errors import InputError

BRATS = "brats2015-examples/brats_2013_pat0003_1"


@pytest.fixture(scope="module")
def isbi(shared_data):
    """A 128x128 crop of ISBI 2012 training image 0 and its label (255 cell, 0 membrane)."""
    image = np.asarray(Image.open(shared_data / "isbi2012-em/train/image/0.png"))[:128, :128]
    label = np.asarray(Image.open(shared_data / "isbi2012-em/train/label/0.png"))[:128, :128]
    return image, label


@pytest.fixture(scope="module")
def brats(shared_data):
    nib = pytest.importorskip("nibabel")
    folder = shared_data / BRATS
    label = np.asarray(nib.load(folder / "OTMultiClass.nii.gz").dataobj).astype(np.int16)
    mask = np.asarray(nib.load(folder / "brainmask.nii.gz").dataobj) > 0
    flair = np.asarray(nib.load(folder / "Flair_subtrMeanDivStd.nii.gz").dataobj, dtype=np.float32)
    return flair, label, mask


@pytest.fixture(scope="module")
def brats_crop(brats):
    """A 48^3 block around the tumour centre: 3D tests stay fast."""
    flair, label, _ = brats
    centre = np.round(np.argwhere(label > 0).mean(axis=0)).astype(int)
    box = tuple(slice(c - 24, c + 24) for c in centre)
    return flair[box][None], label[box]


def test_flip_twice_is_identity_2d_and_3d(isbi, brats_crop):
    image, _ = isbi
    volume, _ = brats_crop
    np.testing.assert_array_equal(flip(flip(image, (0, 1), 2), (0, 1), 2), image)
    np.testing.assert_array_equal(flip(flip(volume, (0, 2), 3), (0, 2), 3), volume)
    assert not np.array_equal(flip(volume, (0,), 3), volume)
    flipper = RandomFlip(3, p=1.0)
    twice = flipper(flipper({"image": volume}, np.random.default_rng(0)), np.random.default_rng(0))
    np.testing.assert_array_equal(twice["image"], volume)


def test_flip_moves_image_and_label_together(isbi):
    image, label = isbi
    out = RandomFlip(2, axes=(1,), p=1.0)({"image": image, "label": label}, np.random.default_rng(1))
    np.testing.assert_array_equal(out["image"], image[:, ::-1])
    np.testing.assert_array_equal(out["label"], label[:, ::-1])


def test_rot90_four_quarter_turns_and_label_values(brats_crop):
    volume, label = brats_crop
    out = {"image": volume, "label": label}
    rot = RandomRot90(3, plane=(0, 1), p=1.0)
    rng = np.random.default_rng(3)
    ks = []
    for _ in range(4):
        before = out["label"]
        out = rot(out, rng)
        ks.append(next(k for k in range(1, 4) if np.array_equal(np.rot90(before, k, axes=(0, 1)), out["label"])))
    assert set(np.unique(out["label"])) == set(np.unique(label))
    if sum(ks) % 4 == 0:
        np.testing.assert_array_equal(out["label"], label)


def test_elastic_zero_sigma_is_identity(isbi, brats_crop):
    image, label = isbi
    out = RandomElastic(2, sigma=0.0)({"image": image, "label": label}, np.random.default_rng(0))
    np.testing.assert_allclose(out["image"], image.astype(np.float32), atol=1e-3)
    np.testing.assert_array_equal(out["label"], label)
    volume, vlabel = brats_crop
    out3 = RandomElastic(3, sigma=0.0)({"image": volume, "label": vlabel}, np.random.default_rng(0))
    np.testing.assert_allclose(out3["image"], volume, atol=1e-4)
    np.testing.assert_array_equal(out3["label"], vlabel)


def test_elastic_keeps_label_values_and_moves_pixels(isbi, brats_crop):
    image, label = isbi
    out = RandomElastic(2)({"image": image, "label": label}, np.random.default_rng(5))
    assert out["image"].shape == image.shape and out["label"].shape == label.shape
    assert set(np.unique(out["label"])) == {0, 255}
    assert out["label"].dtype == label.dtype
    assert 0.02 < np.mean(out["label"] != label) < 0.6  # deformed, not destroyed
    volume, vlabel = brats_crop
    out3 = RandomElastic(3)({"image": volume, "label": vlabel}, np.random.default_rng(5))
    assert out3["image"].shape == volume.shape
    assert set(np.unique(out3["label"])) <= set(np.unique(vlabel))
    assert len(np.unique(out3["label"])) >= 3


def test_coarse_grid_statistics_match_unet_paper():
    rng = np.random.default_rng(0)
    draws = np.stack([coarse_displacements(2, rng) for _ in range(2000)])
    assert draws.shape == (2000, 2, 3, 3)
    assert abs(draws.std() - 10.0) < 0.2  # 36 000 samples: std error of the std ~0.04 px
    assert abs(draws.mean()) < 0.2
    draws3 = np.stack([coarse_displacements(3, rng) for _ in range(300)])
    assert draws3.shape == (300, 3, 3, 3, 3) and abs(draws3.std() - 10.0) < 0.2


def test_dense_field_interpolates_the_coarse_grid():
    rng = np.random.default_rng(1)
    coarse = coarse_displacements(3, rng)
    field = dense_displacement_field(coarse, (41, 21, 11))  # odd sizes: grid nodes fall on voxels
    assert field.shape == (3, 41, 21, 11)
    np.testing.assert_allclose(field[:, ::20, ::10, ::5], coarse, atol=1e-9)
    # Smooth: neighbouring pixels differ by far less than the 10 px displacements themselves.
    assert np.abs(np.diff(field, axis=1)).max() < 5.0
    with pytest.raises(InputError, match="shape"):
        dense_displacement_field(coarse, (10, 10))


def test_rotation_and_scaling_keep_label_values(isbi, brats_crop):
    image, label = isbi
    rng = np.random.default_rng(2)
    for transform in (RandomRotate(2, max_degrees=15, p=1.0), RandomScale(2, (0.8, 1.2), p=1.0)):
        out = transform({"image": image, "label": label}, rng)
        assert out["image"].shape == image.shape and set(np.unique(out["label"])) == {0, 255}
    same = RandomRotate(2, max_degrees=0.0, p=1.0)({"image": image, "label": label}, rng)
    np.testing.assert_array_equal(same["label"], label)
    np.testing.assert_allclose(same["image"], image, atol=1e-3)
    unit = RandomScale(2, (1.0, 1.0), p=1.0)({"image": image, "label": label}, rng)
    np.testing.assert_array_equal(unit["label"], label)
    volume, vlabel = brats_crop
    out3 = RandomRotate(3, max_degrees=10, p=1.0)({"image": volume, "label": vlabel}, rng)
    assert out3["image"].shape == volume.shape and set(np.unique(out3["label"])) <= set(np.unique(vlabel))
    # A 90 degree rotation by resampling equals the exact np.rot90 (up to direction).
    rotated = RandomRotate(2, max_degrees=90, p=1.0)
    rotated.draw_matrix = lambda rng: np.array([[0.0, -1.0], [1.0, 0.0]])
    out = rotated({"label": label}, rng)["label"]
    assert any(np.array_equal(out, np.rot90(label, k)) for k in (1, 3))


def test_intensity_transforms_touch_images_only(brats_crop):
    volume, label = brats_crop
    rng = np.random.default_rng(4)
    sample = {"image": volume, "label": label}
    gamma = RandomGamma(3, (1.5, 1.5), p=1.0)(sample, rng)
    np.testing.assert_array_equal(gamma["label"], label)
    assert np.isclose(gamma["image"].min(), volume.min()) and np.isclose(gamma["image"].max(), volume.max())
    assert gamma["image"].mean() < volume.mean()  # gamma > 1 darkens the mid-range
    shifted = RandomScaleShift(3, shift_std=0.0, scale_std=0.0)(sample, rng)
    np.testing.assert_allclose(shifted["image"], volume)
    noisy = RandomGaussianNoise(3, (0.04, 0.04), p=1.0)(sample, rng)
    assert abs(np.std(noisy["image"] - volume) - 0.2) < 0.005  # variance 0.04 -> std 0.2
    never = RandomGaussianNoise(3, p=0.0)(sample, rng)
    assert never["image"] is volume


def test_compose_is_deterministic_given_the_seed(isbi):
    image, label = isbi

    def pipeline(seed):
        return Compose(
            [RandomFlip(2), RandomRot90(2), RandomElastic(2), RandomRotate(2, p=0.5), RandomScale(2, p=0.5),
             RandomGamma(2, p=0.5), RandomScaleShift(2), RandomGaussianNoise(2, p=0.5)],
            seed=seed,
        )

    a, b, c = pipeline(7), pipeline(7), pipeline(8)
    for _ in range(3):
        sample = {"image": image, "label": label}
        out_a, out_b, out_c = a(sample), b(sample), c(sample)
        np.testing.assert_array_equal(out_a["image"], out_b["image"])
        np.testing.assert_array_equal(out_a["label"], out_b["label"])
        assert not np.array_equal(out_a["image"], out_c["image"])
        assert set(np.unique(out_a["label"])) == {0, 255}


def test_patch_centres_are_half_foreground_on_brats(brats):
    _, label, mask = brats
    rng = np.random.default_rng(0)
    centres, is_fg = sample_centres(label, 400, rng, fg_fraction=0.5, mask=mask)
    assert centres.shape == (400, 3) and is_fg.sum() == 200
    at_centre = label[tuple(centres.T)]
    np.testing.assert_array_equal(at_centre > 0, is_fg)
    assert mask[tuple(centres.T)].all()
    # One patch per call (on-the-fly sampling): foreground with probability 0.5.
    sampler = CentreSampler(label, mask)
    single = [sampler.sample(1, rng) for _ in range(400)]
    fraction = np.mean([label[tuple(c[0])] > 0 for c, _ in single])
    assert abs(fraction - 0.5) < 0.1  # 4 binomial standard deviations
    assert all(mask[tuple(c[0])] for c, _ in single)


def test_deepmedic_patches_with_context_and_border_padding(brats):
    flair, label, mask = brats
    image = np.stack([flair, flair * 2])  # two channels
    rng = np.random.default_rng(1)
    out = sample_patches(image, label, (25, 25, 25), rng, num_patches=6, label_size=(9, 9, 9),
                         context_size=(57, 57, 57), mask=mask)
    assert out["image"].shape == (6, 2, 25, 25, 25)
    assert out["label"].shape == (6, 9, 9, 9)
    assert out["context"].shape == (6, 2, 57, 57, 57)
    for i, centre in enumerate(out["centres"]):
        assert out["label"][i][4, 4, 4] == label[tuple(centre)]
        assert out["image"][i][0][12, 12, 12] == flair[tuple(centre)]
        np.testing.assert_array_equal(out["context"][i][:, 16:41, 16:41, 16:41], out["image"][i])
    corner = extract_patch(image, (0, 0, 0), (5, 5, 5), pad_value=-9.0)
    assert corner.shape == (2, 5, 5, 5)
    assert (corner[:, :2] == -9.0).all() and (corner[:, 2:, 2:, 2:] == image[:, :3, :3, :3]).all()
    with pytest.raises(InputError, match="mask"):
        sample_centres(label, 4, rng, mask=np.zeros_like(mask))


def test_random_patch_in_compose_2d(isbi):
    image, label = isbi
    compose = Compose([RandomPatch((32, 32), label_size=(16, 16)), RandomFlip(2)], seed=0)
    out = compose({"image": image, "label": label})
    assert out["image"].shape == (32, 32) and out["label"].shape == (16, 16)


def test_set_transform_runs_on_the_fly_in_a_dataloader(isbi):
    datasets = pytest.importorskip("datasets")
    torch = pytest.importorskip("torch")
    image, label = isbi
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Image(), "id": datasets.Value("int32")})
    ds = datasets.Dataset.from_dict(
        {"image": [Image.fromarray(image)] * 4, "label": [Image.fromarray(label)] * 4, "id": [0, 1, 2, 3]},
        features=features,
    )
    compose = Compose([RandomFlip(2), RandomElastic(2), RandomGaussianNoise(2, p=0.5)], seed=0)
    ds.set_transform(compose.batch_transform())
    first, again = ds[0:2], ds[0:2]
    assert first["image"][0].shape == (128, 128) and first["id"] == [0, 1]
    assert not np.array_equal(first["image"][0], again["image"][0])  # re-augmented on every read
    loader = torch.utils.data.DataLoader(ds, batch_size=2)
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 128, 128) and batch["image"].dtype == torch.float32
    assert set(torch.unique(batch["label"]).tolist()) == {0, 255}
