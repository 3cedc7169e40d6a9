import numpy as np

from pipeline.config import DataConfig
from pipeline.data.infimnist import BLOCK, DeformedPart, InfiniteMnistSource, deform
from pipeline.data.mnist import load_mnist, select_digits


def test_deform_moves_ink_but_keeps_it_a_digit(mnist):
    images, _ = load_mnist(mnist, train=True, download=False)
    digits = images[:50]
    out = deform(digits, np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == digits.shape
    assert (out != digits).any(axis=(1, 2)).all()  # every digit is changed
    ink_before, ink_after = digits.sum(axis=(1, 2)), out.astype(np.int64).sum(axis=(1, 2))
    # A mild affine map and elastic field keep most of the ink (little leaves the frame).
    np.testing.assert_array_less(np.abs(ink_after / ink_before - 1), 0.5)
    # Still nearer its own original than any other of the 50 digits.
    flat_out, flat_in = out.reshape(len(out), -1).astype(float), digits.reshape(len(digits), -1).astype(float)
    distances = ((flat_out[:, None] - flat_in[None]) ** 2).sum(-1)
    assert (distances.argmin(axis=1) == np.arange(len(out))).mean() >= 0.8
    # Seeded: the same generator state gives the same digits.
    np.testing.assert_array_equal(out, deform(digits, np.random.default_rng(0)))


def test_parts_cover_the_samples_and_a_sample_is_the_same_however_they_are_cut(mnist):
    cfg = DataConfig(source="infimnist", digits=[4, 9], samples=20_000, root=str(mnist))
    parts = InfiniteMnistSource(cfg, mnist).parts()
    train = [p for p in parts if p.split == "train"]
    assert [p.split for p in parts][-1] == "test"
    assert sum(p.stop - p.start for p in train) == 20_000

    images, labels = load_mnist(mnist, train=True, download=False)
    m = len(select_digits(labels, [4, 9], None))  # 11 791 originals
    whole = DeformedPart("all", "train", 0, mnist, (4, 9), m - 5, m + BLOCK + 5).read()
    # The same samples read as two parts that split a block of deformations.
    cut = m + 100
    left = DeformedPart("a", "train", 0, mnist, (4, 9), m - 5, cut).read()
    right = DeformedPart("b", "train", 0, mnist, (4, 9), cut, m + BLOCK + 5).read()
    np.testing.assert_array_equal(np.concatenate([left.features, right.features]), whole.features)
    np.testing.assert_array_equal(np.concatenate([left.labels, right.labels]), whole.labels)

    # The first m samples are the originals, untouched; the rest deformed copies with their originals' labels.
    originals = select_digits(labels, [4, 9], None)
    np.testing.assert_array_equal(whole.features[:5, 0], images[originals[-5:]])
    np.testing.assert_array_equal(whole.metadata["copy"], [0] * 5 + [1] * (BLOCK + 5))
    np.testing.assert_array_equal(whole.labels[5:], labels[originals[: BLOCK + 5]])
    assert (whole.features[5:, 0] != images[originals[: BLOCK + 5]]).any(axis=(1, 2)).all()
    assert whole.features.dtype == np.uint8 and whole.divisor == 255.0


def test_the_fingerprint_changes_with_the_sample_count(mnist):
    small = InfiniteMnistSource(DataConfig(source="infimnist", samples=1000), mnist).fingerprint()
    large = InfiniteMnistSource(DataConfig(source="infimnist", samples=2000), mnist).fingerprint()
    assert small != large


def test_the_preview_tells_the_facts_without_making_the_part(mnist):
    from pipeline.data.layout import inspect_part

    part = DeformedPart("p", "train", 0, mnist, (4, 9), 0, 50_000)
    facts = inspect_part(part, DataConfig(source="infimnist"))
    assert facts.rows == 50_000 and facts.feature_shape == (1, 28, 28)
    assert (
        facts.feature_dtype == "uint8" and facts.divisor == 255.0 and sorted(facts.metadata) == ["copy", "mnist_index"]
    )


def test_the_validation_split_holds_out_whole_digits_with_all_their_deformations(mnist, tmp_path):
    from pipeline.data import ingest

    cfg = DataConfig(source="infimnist", digits=[4, 9], samples=30_000)
    store = ingest(cfg, mnist, tmp_path, validation=0.1)
    validation = set(store.metadata("validation", ["mnist_index"])["mnist_index"].tolist())
    train = set(store.metadata("train", ["mnist_index"])["mnist_index"].tolist())
    assert validation and not validation & train  # no digit on both sides
    assert abs(len(validation) / len(validation | train) - 0.1) < 0.01
    assert store.manifest["splits"]["test"] == 1991 and store.feature_dtype == np.uint8
