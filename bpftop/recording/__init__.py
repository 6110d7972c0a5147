"""Recordings: every interval's snapshots of the active collectors in one
compressed, versioned, self-describing file, and reading them back for
replay (no root, no BPF)."""
