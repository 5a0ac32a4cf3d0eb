"""The fast prediction path of plain float rows validates as the full path does."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from skprune import PrunedNetClassifier


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("n_rows", [1, 3])
def test_float64_values_beyond_float32_range_raise_the_same_value_error_as_a_dataframe(n_rows):
    X, y = load_iris(return_X_y=True)
    net = PrunedNetClassifier(max_epochs=2, random_state=0).fit(X, y)
    X_big = X[:n_rows].copy()
    X_big[:, 0] = 1e39
    with pytest.raises(ValueError, match="too large for dtype\\('float32'\\)") as from_frame:
        net.predict(pd.DataFrame(X_big))
    for method in (net.predict, net.predict_proba):
        with pytest.raises(ValueError) as from_array:
            method(X_big)
        assert str(from_array.value) == str(from_frame.value)
    assert np.isfinite(net.predict_proba(X[:n_rows])).all()  # values in range still take the fast path
