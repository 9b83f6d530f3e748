"""The app's named endpoints through gradio_client, against `python app.py` on a free port."""
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines import checkpoints as ckpt
from tests.studio.conftest import tiny_yaml, wait_for, wait_for_status


def run_row(client, name):
    return next(r for r in client.predict(api_name="/list_runs") if r["name"] == name)


def test_start_watch_stop_resume_and_generate(launch):
    app = launch()
    client = app.client()
    started = client.predict(tiny_yaml(epochs=2000, checkpoint_every_epochs=5), api_name="/start")
    name = started["name"]
    assert name == "ddpm-digits-8"
    wait_for(lambda: run_row(client, name)["step"] >= 10, what="training steps")
    metrics = client.predict(name, -1, api_name="/run_metrics")
    assert {"loss", "lr", "images_per_s"} <= set(metrics) and len(metrics["loss"]) >= 5
    assert client.predict(name, api_name="/stop").startswith(f"{name}: stopping")
    row = wait_for_status(lambda: run_row(client, name), "stopped", what="the stop")
    assert ckpt.resolve_resume(row["folder"]).name == f"checkpoint-{row['step']}"
    assert "queued to resume" in client.predict(name, api_name="/resume")
    wait_for(lambda: run_row(client, name)["step"] > row["step"] + 3, what="the resumed run to train")
    client.predict(name, api_name="/stop")
    row = wait_for_status(lambda: run_row(client, name), "stopped", what="the second stop")
    files, took = client.predict(str(ckpt.list_checkpoints(row["folder"])[-1]), "ddim", 5, 0, 3, None, 1.0, api_name="/generate")
    assert len(files) == 3 and "3 images of 8x8" in took
    image = np.asarray(Image.open(files[0]))
    assert image.shape == (8, 8) and image.std() > 5


def test_a_bad_config_is_refused_naming_the_field(launch):
    client = launch().client()
    result = client.predict(tiny_yaml().replace("batch_size: 16", "batch_size: 0"), api_name="/start")
    assert result["errors"][0][0] == "training.batch_size"
    result = client.predict(tiny_yaml().replace("dataset: digits", "dataset: /no/such/folder"), api_name="/start")
    assert result["errors"] == [["data.dataset", "folder /no/such/folder does not exist"]]
    assert client.predict(api_name="/list_runs") == []


def test_only_localhost_without_auth(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    done = subprocess.run([sys.executable, "app.py", "--host", "0.0.0.0"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--auth user:password" in done.stderr and "--no-auth" in done.stderr


def test_runs_started_from_the_command_line_show_up(launch, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    app = launch()
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_yaml(epochs=1))
    subprocess.run([sys.executable, "-m", "pipelines", "train", "--config", str(config), "--workspace", str(app.workspace),
                    "--name", "from_terminal", "--quiet"], cwd=ROOT, check=True, timeout=300)
    assert run_row(app.client(), "from_terminal")["status"] == "completed"


def test_killed_app_leaves_runs_interrupted_and_resumable(launch, tmp_path):
    app = launch()
    client = app.client()
    name = client.predict(tiny_yaml(epochs=5000, checkpoint_every_epochs=2), api_name="/start")["name"]
    wait_for(lambda: run_row(client, name)["step"] >= 15, what="checkpoints")  # 5 steps an epoch: past checkpoint-10
    app.kill()
    folder = Path(app.workspace) / name
    for c in ckpt.list_checkpoints(folder):  # every checkpoint that looks complete is complete
        state = ckpt.load_training_state(c)
        assert state["loop"]["global_step"] == int(c.name.split("-")[1])
    again = launch(workspace=app.workspace)
    client = again.client()
    row = run_row(client, name)
    assert row["status"] == "interrupted"
    client.predict(name, api_name="/resume")
    wait_for_status(lambda: run_row(client, name), "running", what="resume")
    client.predict(name, api_name="/stop")
    wait_for_status(lambda: run_row(client, name), "stopped", what="stop after resume")


def test_evaluations_through_the_api(launch):
    import yaml

    from tests.conftest import tiny_config

    client = launch().client()
    config = tiny_config(training={"epochs": 2}, evaluation={"every_epochs": 1, "num_samples": 32, "steps": 4, "final": True,
                                                              "final_split": "val", "final_num_samples": 24})
    name = client.predict(yaml.safe_dump(config.model_dump(mode="json")), api_name="/start")["name"]
    row = wait_for_status(lambda: run_row(client, name), "completed", what="the run to complete")
    assert row["best_metric"] == "FD (digits-cnn)"
    evaluations = client.predict(name, api_name="/run_evaluations")
    assert [(e["kind"], e["split"], e["num_samples"]) for e in evaluations] == [
        ("training", "train", 32), ("training", "train", 32), ("final", "val", 24)]
    assert all(e["metric"] == "FD (digits-cnn)" and e["fd"] > 0 and e["seconds"] > 0 for e in evaluations)


def test_a_gan_trains_and_generates_through_the_api(launch):
    import yaml

    from tests.train.test_gan import tiny_gan

    client = launch().client()
    name = client.predict(yaml.safe_dump(tiny_gan().model_dump(mode="json")), api_name="/start")["name"]
    row = wait_for_status(lambda: run_row(client, name), "completed", what="the GAN run")
    assert row["family"] == "gan"
    metrics = client.predict(name, -1, api_name="/run_metrics")
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(metrics)
    files, took = client.predict(f"{row['folder']}/final", "dpm++", 20, 0, 4, 3, 1.0, 1.5, api_name="/generate")
    assert len(files) == 4 and "GAN, truncation 1.5" in took
    assert np.asarray(Image.open(files[0])).shape == (16, 16)


def test_super_resolution_trains_and_upscales_through_the_api(launch, tmp_path):
    import yaml

    from tests.train.test_sr import tiny_sr

    client = launch().client()
    config = tiny_sr(model={"scale": 2}, training={"epochs": 2}, evaluation={"every_epochs": 1})
    name = client.predict(yaml.safe_dump(config.model_dump(mode="json")), api_name="/start")["name"]
    row = wait_for_status(lambda: run_row(client, name), "completed", what="the SR run")
    assert row["family"] == "sr" and row["best_metric"] == "PSNR"
    metrics = client.predict(name, -1, api_name="/run_metrics")
    assert {"l1", "psnr", "ssim", "psnr_bicubic", "ssim_bicubic", "test_psnr"} <= set(metrics)
    photo = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(photo)
    (tmp_path / "note.txt").write_text("not an image")
    result = client.predict([str(photo), str(tmp_path / "note.txt")], row["folder"], 0, 8, 4, api_name="/upscale")
    assert len(result["outputs"]) == 1 and Image.open(result["outputs"][0]).size == (60, 40)
    assert result["skipped"] == [["note.txt", "not an image file"]] and "x2" in result["model"]
