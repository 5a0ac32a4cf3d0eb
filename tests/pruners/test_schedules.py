import pytest

from skprune import Iterative, OneShot, Polynomial


def test_oneshot_single_step():
    assert OneShot(at=0.5).steps(10) == [(5, 1.0)]
    assert OneShot(at=0.0).steps(10) == [(0, 1.0)]
    assert OneShot(at=1.0).steps(10) == [(10, 1.0)]


def test_iterative_equal_increments():
    steps = Iterative(n_steps=4, start=0.2, end=0.8).steps(10)
    assert [e for e, _ in steps] == [2, 4, 6, 8]
    assert [f for _, f in steps] == pytest.approx([0.25, 0.5, 0.75, 1.0])


def test_iterative_merges_steps_on_short_fits():
    steps = Iterative(n_steps=5, start=0.0, end=0.5).steps(2)
    assert steps[-1][1] == 1.0
    epochs = [e for e, _ in steps]
    assert epochs == sorted(set(epochs))


def test_polynomial_is_cubic_and_reaches_target():
    steps = Polynomial(start=0.0, end=1.0, power=3).steps(10)
    fractions = dict(steps)
    assert fractions[10] == 1.0
    # Zhu & Gupta: s_t = s_f (1 - (1 - t/T)^3)
    assert fractions[5] == pytest.approx(1 - 0.5**3)
    values = [f for _, f in steps]
    assert values == sorted(values)


def test_polynomial_leaves_fine_tuning_epochs():
    steps = Polynomial(start=0.1, end=0.7).steps(30)
    assert max(e for e, _ in steps) == 21


@pytest.mark.parametrize(
    "schedule, match",
    [
        (OneShot(at=1.5), "at"),
        (Iterative(n_steps=0), "n_steps"),
        (Iterative(start=0.8, end=0.2), "start <= end"),
        (Polynomial(power=0), "power"),
        (Polynomial(start=-0.1), "start"),
    ],
)
def test_bad_schedules(schedule, match):
    with pytest.raises(ValueError, match=match):
        schedule.steps(10)
