"""Memory of a process as the benches report it: RSS and PSS (RSS with each
shared page divided among the processes that map it), from smaps_rollup."""


def memory_mb(pid):
    """(RSS, PSS) in MB."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        kb = {line.split(":")[0]: int(line.split()[1]) for line in f if line.split()[0] in ("Rss:", "Pss:")}
    return kb["Rss"] / 1024, kb["Pss"] / 1024
