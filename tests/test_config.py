import pytest

from pipelines.config import ConfigError, load_config, save_config, validate_config
from pipelines.families.ddpm.config import DDPMConfig
from tests.conftest import ROOT


def fields(exc: ConfigError) -> list[str]:
    return [f for f, _ in exc.errors]


def test_every_field_has_a_description_and_a_default():
    def walk(model_cls):
        for name, field in model_cls.model_fields.items():
            assert field.description, f"{model_cls.__name__}.{name} has no description"
            assert not field.is_required(), f"{model_cls.__name__}.{name} has no default"
            ann = field.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                walk(ann)
    walk(DDPMConfig)


def test_unknown_key_is_refused_naming_it_and_listing_allowed():
    with pytest.raises(ConfigError) as err:
        validate_config({"training": {"batchsize": 8}})
    assert fields(err.value) == ["training.batchsize"]
    assert "unknown key" in str(err.value) and "batch_size" in str(err.value)


def test_invalid_values_name_the_field_and_what_is_allowed():
    with pytest.raises(ConfigError) as err:
        validate_config({"training": {"batch_size": 0}, "diffusion": {"beta_schedule": "quadratic"}})
    msg = str(err.value)
    assert set(fields(err.value)) == {"training.batch_size", "diffusion.beta_schedule"}
    assert "training.batch_size: at least 1 (got 0)" in msg
    assert "'linear', 'cosine' or 'sigmoid'" in msg


def test_geometry_error_names_image_size():
    with pytest.raises(ConfigError) as err:
        validate_config({"data": {"image_size": 20}, "model": {"channel_mults": [1, 2, 2, 2]}})
    assert fields(err.value) == ["data.image_size"]


def test_unknown_family_lists_known_ones():
    with pytest.raises(ConfigError, match="allowed: ddpm"):
        validate_config({"family": "vae"})


def test_yaml_round_trip_and_overrides(tmp_path):
    cfg = load_config(ROOT / "configs" / "ddpm_digits16.yaml", ["training.epochs=3", "model.channel_mults=[1, 2]"])
    assert cfg.training.epochs == 3 and cfg.model.channel_mults == [1, 2]
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_bad_override_value_names_field():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["training.learning_rate=fast"])
    assert fields(err.value) == ["training.learning_rate"]


@pytest.mark.parametrize("preset", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_presets_are_valid(preset):
    load_config(ROOT / "configs" / preset)


def test_yes_no_on_off_stay_words():
    cfg = load_config(None, ["training.mixed_precision=no", "training.compile=off", "data.random_flip=true"])
    assert cfg.training.mixed_precision == "no" and cfg.training.compile == "off" and cfg.data.random_flip is True


def test_run_names_cannot_escape_the_workspace():
    with pytest.raises(ConfigError) as err:
        validate_config({"name": "../../etc"})
    assert fields(err.value) == ["name"]


def test_evaluation_on_an_empty_split_is_refused():
    from pipelines.config import ConfigError, validate_config

    with pytest.raises(ConfigError) as info:
        validate_config({"data": {"val_fraction": 0}, "evaluation": {"split": "val"}})
    assert info.value.errors[0][0] == "evaluation.split" and "data.val_fraction is 0" in info.value.errors[0][1]
    validate_config({"data": {"val_fraction": 0}, "evaluation": {"split": "val", "every_epochs": 0}})  # off: fine


@pytest.mark.parametrize("override, field, words", [
    ("training.max_minutes=.inf", "training.max_minutes", "finite number"),
    ("training.max_minutes=1e308", "training.max_minutes", "at most 10080"),
    ("training.learning_rate=.nan", "training.learning_rate", "finite number"),
    ("gan.collapse_fd_jump=.inf", "gan.collapse_fd_jump", "finite number"),
    ("training.seed=-1", "training.seed", "at least 0"),
    ("data.split_seed=-1", "data.split_seed", "at least 0"),
    ("training.seed=4294967296", "training.seed", "at most 4294967295"),
])
def test_absurd_numbers_are_refused_naming_the_field(override, field, words, tmp_path):
    """Probe: an infinite budget 'completed' at step 1 and a negative seed made a failed run; both are refused first."""
    family = ["family=gan"] if override.startswith("gan.") else []
    with pytest.raises(ConfigError) as err:
        load_config(None, [*family, override])
    assert fields(err.value) == [field] and words in str(err.value)
    assert load_config(None, ["training.seed=4294967295", "training.max_minutes=10080"]).training.seed == 2**32 - 1
