"""Small real data sets shipped inside the package, for examples and benchmarks.

Nothing is downloaded: each loader reads a compressed file installed with
codax, and needs NumPy only.

``load_breast_cancer()``: the Breast Cancer Wisconsin (Diagnostic) data set,
569 fine-needle aspirates of breast masses, each described by 30 real-valued
features of the imaged cell nuclei (mean, standard error and worst value of
radius, texture, perimeter, area, smoothness, compactness, concavity, concave
points, symmetry and fractal dimension), labelled malignant (212) or benign
(357)::

    from codax.datasets import load_breast_cancer
    data = load_breast_cancer()
    X, y = data.X, data.y        # float64 (569, 30), float64 (569,) of 0.0 / 1.0

Credit. W. H. Wolberg, W. N. Street and O. L. Mangasarian, "Breast Cancer
Wisconsin (Diagnostic)", UCI Machine Learning Repository, 1995,
https://archive.ics.uci.edu/dataset/17/breast+cancer+wisconsin+diagnostic,
licensed under Creative Commons Attribution 4.0 International (CC BY 4.0,
https://creativecommons.org/licenses/by/4.0/). First described in W. N.
Street, W. H. Wolberg and O. L. Mangasarian, "Nuclear feature extraction for
breast tumor diagnosis", IS&T/SPIE Electronic Imaging 1993, vol. 1905,
pp. 861-870.

Changes from the UCI file: the patient ID column is dropped, the label is
encoded as in scikit-learn's copy of the data (0 = malignant, 1 = benign; the
values are that copy's, row for row), a header line of feature names is added,
and the file is gzip-compressed (``breast_cancer.csv.gz``).
"""
import gzip
from collections import namedtuple
from importlib import resources

import numpy as np

__all__ = ['Dataset', 'load_breast_cancer']

Dataset = namedtuple('Dataset', 'X y feature_names target_names')
Dataset.__doc__ = """A labelled data set: X float64 [n, d], y float64 [n] (class
indices 0.0, 1.0, ...), feature_names (d strings), target_names (the class of
each label value, in order)."""


def _read_csv_gz(filename):
    with resources.files(__name__).joinpath(filename).open('rb') as raw, \
            gzip.open(raw, 'rt', encoding='ascii') as fh:
        header = fh.readline().rstrip('\n').split(',')
        table = np.loadtxt(fh, delimiter=',', dtype=np.float64, ndmin=2)
    return header, table


def load_breast_cancer():
    """Breast Cancer Wisconsin (Diagnostic): 569 examples, 30 features.

    Returns a ``Dataset(X, y, feature_names, target_names)``: ``X`` float64
    of shape (569, 30), unscaled (standardize before training); ``y`` float64
    of shape (569,), 0.0 for malignant and 1.0 for benign, as in scikit-learn;
    ``feature_names`` a tuple of 30 strings ("mean radius", ..., "worst
    fractal dimension"); ``target_names`` ``("malignant", "benign")``.
    Every call returns fresh arrays. Data: UCI, CC BY 4.0 (see the module
    docstring for the credit).
    """
    header, table = _read_csv_gz('breast_cancer.csv.gz')
    return Dataset(X=np.ascontiguousarray(table[:, :-1]), y=table[:, -1].copy(),
                   feature_names=tuple(header[:-1]), target_names=('malignant', 'benign'))
