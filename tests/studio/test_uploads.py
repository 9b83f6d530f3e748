import io
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from studio.uploads import UploadError, unpack_images_zip


def png_bytes():
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def make_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_a_zip_of_class_folders_unpacks(tmp_path):
    z = make_zip(tmp_path / "pets.zip", {"pets/cats/a.png": png_bytes(), "pets/dogs/b.png": png_bytes()})
    folder = unpack_images_zip(z, tmp_path / "uploads")
    assert folder == tmp_path / "uploads" / "pets" / "pets"
    assert sorted(p.name for p in folder.iterdir()) == ["cats", "dogs"]


@pytest.mark.parametrize("member", ["../escape.png", "/etc/evil.png", "a/../../escape.png"])
def test_paths_that_escape_are_refused(tmp_path, member):
    z = make_zip(tmp_path / "evil.zip", {"ok.png": png_bytes(), member: png_bytes()})
    with pytest.raises(UploadError, match="outside the folder"):
        unpack_images_zip(z, tmp_path / "uploads")
    assert not (tmp_path / "escape.png").exists() and not (tmp_path / "uploads").exists()


def test_a_zip_bomb_is_refused(tmp_path):
    z = make_zip(tmp_path / "bomb.zip", {"a.png": png_bytes(), "zeros.bin": b"\0" * (50 * 1024**2)})
    with pytest.raises(UploadError, match="zip bomb"):
        unpack_images_zip(z, tmp_path / "uploads")
    z = make_zip(tmp_path / "big.zip", {"a.png": png_bytes(), "b.png": png_bytes()})
    with pytest.raises(UploadError, match="limit"):
        unpack_images_zip(z, tmp_path / "uploads", max_bytes=100)


def test_not_a_zip_and_no_images_are_refused(tmp_path):
    (tmp_path / "notes.zip").write_text("hello")
    with pytest.raises(UploadError, match="not a zip file"):
        unpack_images_zip(tmp_path / "notes.zip", tmp_path / "uploads")
    z = make_zip(tmp_path / "text.zip", {"readme.txt": "hi"})
    with pytest.raises(UploadError, match="contains no images"):
        unpack_images_zip(z, tmp_path / "uploads")


def test_an_upload_over_the_limit_is_refused_before_it_is_stored(launch):
    app = launch("--max-upload-mb", "1")
    big = b"\0" * (2 * 1024**2)
    response = httpx.post(app.url + "gradio_api/upload", files={"files": ("big.zip", big, "application/zip")}, timeout=60)
    assert response.status_code == 413 and "exceeded maximum allowed size" in response.text
    stored = [p for p in app.gradio_tmp.rglob("*") if p.is_file() and p.stat().st_size > 1024**2]
    assert stored == []
    small = httpx.post(app.url + "gradio_api/upload", files={"files": ("small.zip", b"x" * 100, "application/zip")}, timeout=60)
    assert small.status_code == 200


def test_a_zip_of_many_members_each_under_the_bomb_check_is_refused_before_anything_is_written(tmp_path):
    """The attack measured: members just under 1 MiB of zeros each (none trips the per-member check) in a tiny zip."""
    members = {"a.png": png_bytes(), **{f"pad/{i}.png": b"\0" * (1024**2 - 1) for i in range(100)}}
    z = make_zip(tmp_path / "many.zip", members)
    assert z.stat().st_size < 1024**2  # 100 MB of zeros in under 1 MB
    with pytest.raises(UploadError, match=r"would unpack to 100 MB; the limit for this zip is 64 MB"):
        unpack_images_zip(z, tmp_path / "uploads")
    assert not (tmp_path / "uploads").exists()


def test_a_zip_of_too_many_members_is_refused_before_anything_is_written(tmp_path):
    from studio.uploads import MAX_MEMBERS

    with zipfile.ZipFile(tmp_path / "swarm.zip", "w") as zf:  # empty members: a cheap zip
        zf.writestr("a.png", png_bytes())
        for i in range(MAX_MEMBERS):
            zf.writestr(f"{i}.png", b"")
    with pytest.raises(UploadError, match=f"holds {MAX_MEMBERS + 1:,} files; the limit is {MAX_MEMBERS:,}"):
        unpack_images_zip(tmp_path / "swarm.zip", tmp_path / "uploads")
    assert not (tmp_path / "uploads").exists()


@pytest.mark.parametrize("names", [["a.png", "a.png/b.png"], ["a.png/b.png", "a.png"], ["x/a.png", "x/a.png/c/b.png"]])
def test_a_name_that_is_both_a_file_and_a_folder_is_refused(tmp_path, names):
    z = make_zip(tmp_path / "clash.zip", {name: png_bytes() for name in names})
    with pytest.raises(UploadError, match=r"'(x/)?a.png' is both a file and a folder in the zip"):
        unpack_images_zip(z, tmp_path / "uploads")
    assert not (tmp_path / "uploads").exists()
