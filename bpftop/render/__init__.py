"""Per tab: the snapshot as tables (what the screen and the text output show) and as JSON."""
