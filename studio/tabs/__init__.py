"""One module per tab; each has build(studio) that lays out the tab inside the current gr.Tab."""
