import numpy as np

from pipeline.pairs.labels import label_pairs


def test_each_labelled_sample_gets_k_partners_of_its_own_label_and_unlabelled_ones_none():
    labels = np.array([0] * 50 + [1] * 3 + [-1] * 5 + [2])
    left, right = label_pairs(labels, k=4, seed=1)
    assert (left != right).all() and (labels[left] == labels[right]).all()
    counts = np.bincount(left, minlength=len(labels))
    assert (counts[:50] == 4).all()  # drawn from a class of 50
    assert (counts[50:53] == 2).all()  # a class of 3: both others
    assert (counts[53:] == 0).all()  # unlabelled, and a class of one
    again = label_pairs(labels, k=4, seed=1)
    np.testing.assert_array_equal(again[1], right)  # seeded
