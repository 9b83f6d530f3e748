"""The form follows the dataset: the channels and size a folder's images have are proposed when the config's differ."""
import pytest
from PIL import Image

from pipelines.config import DataConfig
from pipelines.data.builtin import digits, whole_photos
from pipelines.data.preview import dataset_preview
from pipelines.data.propose import Proposal, is_colour, propose, propose_for


@pytest.fixture(scope="module")
def photo_folders(tmp_path_factory):
    """scikit-image's colour photos as JPEGs; the same photos in grey, saved as RGB JPEGs (as scanners do)."""
    root = tmp_path_factory.mktemp("photos")
    colour, grey = root / "colour", root / "grey"
    colour.mkdir()
    grey.mkdir()
    for r in whole_photos().records:
        r.image.save(colour / f"{r.name}.jpg", quality=90)
        r.image.convert("L").convert("RGB").save(grey / f"{r.name}.jpg", quality=90)
    return colour, grey


def test_colour_photos_at_one_channel_are_proposed_three(photo_folders, tmp_path):
    colour, _ = photo_folders
    proposal = propose_for(DataConfig(dataset=str(colour), channels=1, image_size=16))
    assert proposal.changes == {"data.channels": 3}  # big photos at 16 px: the size is the person's choice
    assert "colour" in proposal.reasons["data.channels"] and "grey" in proposal.reasons["data.channels"]
    # the preview says it too, for the command line
    shown = dataset_preview(DataConfig(dataset=str(colour), channels=1, image_size=16), tmp_path, prepare=False)
    assert shown.proposal.changes == {"data.channels": 3}
    assert "--set data.channels=3" in shown.text()


def test_grey_photos_saved_as_rgb_are_proposed_one_channel(photo_folders):
    _, grey = photo_folders
    assert not any(is_colour(Image.open(p)) for p in grey.iterdir())  # JPEG's colour noise is not colour
    proposal = propose_for(DataConfig(dataset=str(grey), channels=3, image_size=16))
    assert proposal.changes == {"data.channels": 1}
    # and a config that already fits gets nothing
    assert propose_for(DataConfig(dataset=str(grey), channels=1, image_size=16)).changes == {}


def test_small_images_are_not_enlarged(tmp_path):
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, r in enumerate(digits(0, 0).records[:40]):  # 8 x 8 grey digits, enlarged to 24 x 20 here
        r.image.resize((24, 20)).save(folder / f"{i}.png")
    proposal = propose_for(DataConfig(dataset=str(folder), channels=1, image_size=64))
    assert proposal.changes == {"data.image_size": 16}  # 20 px short side, down to a multiple of 8
    assert "20 px" in proposal.reasons["data.image_size"]


def test_built_in_sets_keep_their_presets_choices():
    assert propose_for(DataConfig(dataset="digits", channels=1, image_size=16)).changes == {}


def test_a_form_without_the_field_gets_no_proposal_for_it():
    colour = Image.new("RGB", (40, 40), (200, 30, 30))
    proposal = propose([colour] * 4, channels=1, image_size=64)
    assert proposal.changes == {"data.channels": 3, "data.image_size": 40}
    only_size = proposal.only({"data.image_size", "data.num_samples"})  # super-resolution's form has no channels
    assert only_size.changes == {"data.image_size": 40} and set(only_size.reasons) == {"data.image_size"}
    assert propose([], channels=1, image_size=64) == Proposal()


def test_optional_number_fields_say_what_zero_means_and_short_budgets_are_not_rounded():
    from studio.budget import _minutes
    from studio.forms import component_for, field_tip

    assert "0: all, otherwise at least 1" in field_tip("ddpm", "data.num_samples")
    assert component_for("ddpm", "data.num_samples", None).label == "num samples (0: all)"
    assert "0: no clipping" in field_tip("ddpm", "training.grad_clip")
    assert [_minutes(m) for m in (0.5, 1.5, 2, 45)] == ["30 s", "1.5 min", "2 min", "45 min"]
