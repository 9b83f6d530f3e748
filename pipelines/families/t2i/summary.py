"""What the Runs tab says of a text-to-image run: its latest prompt alignment on shapes."""
from __future__ import annotations


def summary(store, name: str) -> str:
    last = {k: rows[-1] for k in ("align_seen", "align_heldout") if (rows := store.last_metrics(name, k, 1))}
    if "align_seen" not in last:
        return ""
    held = f" · held-out combinations **{last['align_heldout']['value']:.0%}**" if "align_heldout" in last else ""
    return f"**Latest alignment** (step {last['align_seen']['step']}): seen combinations **{last['align_seen']['value']:.0%}**{held}"
