"""``bpftop exporter``: the tabs' numbers as Prometheus metrics
(``totals`` keeps the counters, ``metrics`` builds the families, ``serve``
runs the loop and the HTTP server)."""
