"""What the Runs tab says of a super-resolution run: its PSNR and SSIM against bicubic's, in a sentence each."""
from __future__ import annotations


def summary(store, name: str) -> str:
    """A super-resolution run's latest validation and its final test scores, in a sentence each."""
    keys = ["psnr", "ssim", "psnr_bicubic", "ssim_bicubic"]
    finals = [f"{split}_{k}" for split in ("test", "val", "train") for k in keys]
    last = {k: rows[-1] for k in keys + finals if (rows := store.last_metrics(name, k, 1))}
    lines = []
    if "psnr" in last and "psnr_bicubic" in last:
        v = {k: last[k]["value"] for k in keys if k in last}
        lines.append(f"**Latest validation** (step {last['psnr']['step']}): PSNR **{v['psnr']:.2f} dB** "
                     f"(bicubic {v['psnr_bicubic']:.2f}, {v['psnr'] - v['psnr_bicubic']:+.2f} dB)"
                     + (f" · SSIM {v['ssim']:.4f} (bicubic {v['ssim_bicubic']:.4f})" if "ssim" in v and "ssim_bicubic" in v else ""))
    for split in ("test", "val", "train"):
        if f"{split}_psnr" in last and f"{split}_psnr_bicubic" in last:
            p, b = last[f"{split}_psnr"]["value"], last[f"{split}_psnr_bicubic"]["value"]
            lines.append(f"**Final evaluation** of best/ on the {split} images: PSNR **{p:.2f} dB** (bicubic {b:.2f}, "
                         f"{p - b:+.2f} dB) · SSIM {last[f'{split}_ssim']['value']:.4f} (bicubic {last[f'{split}_ssim_bicubic']['value']:.4f})")
            break
    return "\n\n".join(lines)
