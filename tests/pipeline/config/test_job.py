import pytest

from pipeline.config import EvaluateConfig, JobConfig, TrainConfig, load_job
from pipeline.errors import ConfigError
from tests.conftest import REPO


def test_defaults_are_the_papers_mnist_setup():
    job = load_job()
    assert job.data.digits == [4, 9] and job.data.train_per_digit == 3000
    assert job.pairs.k == 5 and job.pairs.index == "flat"
    assert job.encoder.name == "lenet" and job.encoder.output_dim == 2
    assert job.train.margin > 0


def test_shipped_job_file_validates_and_equals_the_defaults_but_for_epochs_weight_average_and_validation():
    job = load_job(REPO / "jobs" / "mnist_4_9.yaml")
    assert job == JobConfig(train=TrainConfig(epochs=45, ema_decay=0.9995), evaluate=EvaluateConfig(validation=0))


def _write(tmp_path, text):
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return path


def _error(tmp_path, text, overrides=()):
    with pytest.raises(ConfigError) as info:
        load_job(_write(tmp_path, text), overrides)
    return str(info.value)


@pytest.mark.parametrize("name", ["mnist_translated_knn", "mnist_translated_invariant"])
def test_translated_jobs_ask_for_the_papers_shifts(name):
    job = load_job(REPO / "jobs" / f"{name}.yaml")
    assert job.data.transforms == {"shift_x": [-6, -3, 3, 6]} and job.pairs.k == 5
    assert job.pairs.sources == (["knn"] if name.endswith("knn") else ["knn", "transform", "transform_knn"])


def test_unknown_key_suggests_the_close_one(tmp_path):
    message = _error(tmp_path, "train:\n  epoch: 3\n")
    assert "train.epoch" in message and "did you mean 'train.epochs'" in message


def test_unknown_section_lists_valid_keys(tmp_path):
    message = _error(tmp_path, "trainer: {}\n")
    assert "'trainer'" in message and "did you mean 'train'" in message


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("train:\n  margin: 0\n", "train.margin", "greater than 0"),
        ("train:\n  epochs: many\n", "train.epochs", "integer"),
        ("encoder:\n  output_dim: 0\n", "encoder.output_dim", "greater than or equal to 1"),
        ("data:\n  digits: []\n", "data.digits", "at least one digit"),
        ("data:\n  digits: [4, 12]\n", "data.digits", "0..9"),
        ("train:\n  negatives_per_positive: -1\n", "train.negatives_per_positive", "greater than or equal to 0"),
        ("train:\n  optimizer: adagrad\n", "train.optimizer", "choose one of ['adam', 'adamw', 'sgd']"),
        ("encoder:\n  name: vgg\n", "encoder.name", "choose one of ['lenet', 'mlp', 'resnet18']"),
        ("data:\n  source: parquet\n", "data.path", "set data.path to the training file"),
        ("data:\n  path: x.parquet\n", "data.path", "set data.source: parquet or numpy"),
        ("data:\n  source: airplane\n  path: x.parquet\n", "data.path", "source 'airplane' is read from the data root"),
        (
            "data:\n  source: csv\n",
            "data.source",
            "choose one of ['airplane', 'infimnist', 'mnist', 'norb', 'numpy', 'parquet']",
        ),
        ("data:\n  source: numpy\n  path: x.npy\n  feature_shape: [0, 3]\n", "data.feature_shape", "positive sizes"),
        ("pairs:\n  sources: [knn, prior]\n", "pairs", "add a rule, e.g. prior: {same: [object]}"),
        ("pairs:\n  prior: {same: [a], adjacent: {a: {step: 1}}}\n  sources: [prior]\n", "pairs.prior", "in both"),
        ("encoder:\n  options: {depth: 3}\n", "encoder.options", "valid options: ['c1', 'c3', 'activation', 'pool']"),
        ("tracking:\n  alias: latest\n", "tracking.alias", "reserved by MLflow"),
        ("pairs:\n  k: 10\ndata:\n  train_per_digit: 4\n  digits: [1, 2]\n", "pairs.k", "lower pairs.k"),
        ("pairs:\n  sources: [knn, transform]\n", "pairs.sources", "data.transforms is empty"),
        ("pairs:\n  sources: [transform_knn]\n", "pairs.sources", "list knn too"),
        (
            "pairs:\n  sources: [knn, rules]\n",
            "pairs.sources",
            "choose one of ['knn', 'label', 'prior', 'transform', 'transform_knn']",
        ),
        ("pairs:\n  index: ivf\n  index_options: {nprobes: 4}\n", "pairs.index_options", "valid options"),
        ("pairs:\n  index: annoy\n", "pairs.index", "choose one of ['flat', 'hnsw', 'ivf'], or a FAISS index-factory"),
        ("pairs:\n  index: factory\n", "pairs.index", "by its index-factory string"),
        ("pairs:\n  index: PCA64,IVF64,Flat\n  index_options: {nlist: 4}\n", "pairs.index_options", "'nprobe'"),
        ("data:\n  transforms: {shift: [3]}\n", "data.transforms", "choose one of ['rotate', 'shift_x', 'shift_y']"),
        ("train:\n  loss: triplet\n", "train.loss", "choose one of ['contrastive', 'infonce', 'neg']"),
        (
            "train:\n  loss: neg\n  loss_options: {z: 1}\n",
            "train.loss_options",
            "loss 'neg' has no option 'z'; valid options: ['exaggeration', 'normalization', 'dof']",
        ),
        ("train:\n  loss: infonce\n  loss_options: {exaggeration: 0}\n", "train.loss_options", "positive number"),
        ("train:\n  loss_options: {margin: 2}\n", "train.loss_options", "margin is train.margin"),
        ("train:\n  source_weights: {transform: 0}\n", "train.source_weights", "positive numbers"),
        (
            "train:\n  source_weights: {copies: 2}\n",
            "train.source_weights",
            "choose one of ['knn', 'label', 'prior', 'transform', 'transform_knn']",
        ),
        ("train:\n  source_weights: {transform: 2}\n", "train.source_weights", "add them to pairs.sources"),
    ],
)
def test_bad_values_name_key_and_problem(tmp_path, text, key, words):
    message = _error(tmp_path, text)
    assert key in message and words in message


def test_loss_and_its_options(tmp_path):
    assert load_job().train.loss == "contrastive" and load_job().train.loss_options == {}
    job = load_job(
        _write(tmp_path, "train:\n  loss: neg\n"), ["train.loss_options={normalization: 50, exaggeration: 2}"]
    )
    assert job.train.loss == "neg" and job.train.loss_options == {"normalization": 50.0, "exaggeration": 2.0}
    message = _error(tmp_path, "train:\n  loss: tsne\n  loss_options: {exaggeration: 4}\n")
    assert "train.loss: unknown loss 'tsne'" in message and "loss_options" not in message


def test_not_a_mapping_and_bad_yaml(tmp_path):
    assert "must be a mapping" in _error(tmp_path, "- 1\n- 2\n")
    assert "not valid YAML" in _error(tmp_path, "train: [unclosed\n")


def test_missing_job_file_says_where_jobs_are(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_job(tmp_path / "nope.yaml")


def test_overrides_parse_yaml_values(tmp_path):
    job = load_job(_write(tmp_path, "{}\n"), ["train.epochs=3", "data.digits=[1, 7]", "train.use_gpu=false"])
    assert job.train.epochs == 3 and job.data.digits == [1, 7] and job.train.use_gpu is False
    with pytest.raises(ConfigError, match="section.key=value"):
        load_job(None, ["train.epochs"])


def test_flat_params_are_dotted():
    flat = load_job().flat()
    assert flat["train.margin"] == 1.0 and flat["data.digits"] == [4, 9]


def test_a_faiss_index_factory_string_is_an_index_with_its_own_options():
    from pipeline.config import PairsConfig

    cfg = PairsConfig(index="PCA64,IVF2048,Flat", index_options={"nprobe": 16})
    assert cfg.index == "PCA64,IVF2048,Flat" and cfg.index_options == {"nprobe": 16}
