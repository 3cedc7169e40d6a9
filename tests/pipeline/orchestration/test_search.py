import pytest

from pipeline.config import load_job
from pipeline.errors import ConfigError
from pipeline.orchestration.search import grid, parse_search, trial_jobs
from tests.conftest import REPO

JOB = REPO / "jobs" / "mnist_4_9.yaml"


def test_the_grid_is_every_combination_as_overrides_that_load_back():
    search = parse_search(
        ["train.lr=[0.001, 0.003]", "train.loss=[neg, infonce]", "train.loss_options.exaggeration=[1, 4.5]"]
    )
    points = grid(search)
    assert len(points) == 8 and points[0] == ["train.lr=0.001", "train.loss=neg", "train.loss_options.exaggeration=1"]
    jobs = trial_jobs(JOB, ["evaluate.validation=0.1"], points)
    assert {(j.train.lr, j.train.loss, j.train.loss_options["exaggeration"]) for j in jobs} == {
        (lr, loss, ex) for lr in (0.001, 0.003) for loss in ("neg", "infonce") for ex in (1, 4.5)
    }
    assert all(j == load_job(JOB, ["evaluate.validation=0.1", *p]) for j, p in zip(jobs, points))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give at least one --search key=[values]"),
        (["train.lr=0.001"], "the values must be a non-empty YAML list, e.g. train.lr=[1, 2]"),
        (["train.lr=[]"], "must be a non-empty YAML list"),
        (["train.lr=[1]", "train.lr=[2]"], "train.lr is searched twice"),
        (["pairs.k=[5, 10]"], "trials share the data and pair stages, so pairs.k cannot vary"),
        (["evaluate.validation=[0.1, 0.2]"], "so evaluate.validation cannot vary"),
    ],
)
def test_bad_searches_are_refused_naming_the_argument(args, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_search(args)


def test_an_invalid_point_is_refused_before_anything_runs():
    with pytest.raises(ConfigError, match=r"(?s)search point train.loss=triplet: .*unknown loss 'triplet'"):
        trial_jobs(JOB, [], grid(parse_search(["train.loss=[neg, triplet]"])))
