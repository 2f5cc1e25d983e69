"""TimeBudget: the step count a time limit allows, from timed steps and extras (a fake clock)."""

import pytest

from nbp_ext.train.time_budget import MARGIN, TimeBudget


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_steps(budget: TimeBudget, clock: FakeClock, n: int, seconds: float) -> None:
    for _ in range(n):
        clock.now += seconds
        budget.step_done()


def test_no_limit_plans_the_ceiling():
    clock = FakeClock()
    budget = TimeBudget(None, 500, clock=clock)
    run_steps(budget, clock, 10, 100.0)
    assert not budget.enabled and budget.plan(10, {"eval": 50}) == 500


def test_plan_fills_the_limit_with_steps_and_extras():
    clock = FakeClock()
    budget = TimeBudget(1000.0, 10_000, skip_first=0, clock=clock)
    run_steps(budget, clock, 10, 1.0)
    every = {"eval": 100, "ckpt": 50}
    with budget.extra("eval"):
        clock.now += 20.0
    with budget.extra("ckpt"):
        clock.now += 2.0
    assert budget.step_seconds() == 1.0 and budget.extra_seconds("eval") == 20.0
    planned = budget.plan(10, every)
    left = 1000.0 * (1 - MARGIN) - budget.elapsed()
    assert budget.cost(10, planned, every) <= left < budget.cost(10, planned + 1, every)
    # about 1 s per step plus 0.2 s of evaluation and 0.04 s of checkpoint per step
    assert 700 < planned < 800
    # an extra timed inside a step's interval is not counted as step time
    clock.now += 30.0
    with budget.extra("eval"):
        clock.now += 20.0
    clock.now += 1.0
    budget.step_done()
    assert budget.step_seconds() == 1.0


def test_plan_respects_the_ceiling_and_stops_when_time_is_up():
    clock = FakeClock()
    budget = TimeBudget(100.0, 50, skip_first=0, clock=clock)
    run_steps(budget, clock, 5, 0.5)
    assert budget.plan(5, {}) == 50  # 45 more steps of 0.5 s fit easily
    clock.now = 99.0
    assert budget.plan(5, {}) == 5  # nothing fits any more: stop now


def test_untimed_extras_are_guessed_in_steps_and_warm_up_steps_are_skipped():
    clock = FakeClock()
    budget = TimeBudget(1000.0, 10_000, guesses={"samples": 10}, skip_first=2, clock=clock)
    run_steps(budget, clock, 2, 50.0)  # warm-up: not timed
    assert budget.step_seconds() is None and budget.plan(2, {"samples": 100}) == 10_000
    run_steps(budget, clock, 3, 2.0)
    assert budget.step_seconds() == 2.0 and budget.extra_seconds("samples") == 20.0
    assert budget.extra_seconds("unknown") == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="time limit must be > 0"):
        TimeBudget(0.0, 10)
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        TimeBudget(10.0, 0)
