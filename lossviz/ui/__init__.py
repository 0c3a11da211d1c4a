"""The Streamlit layer: widgets from Fields and the registry, cached compute, URL/session state, the page
skeleton. The only package that imports streamlit.

Importing it pins torch to one intra-op thread for the whole server process, once: the thread count is
process-wide, the app's models are tiny (splitting a 32-wide matmul over threads costs more than it
gains), and on a shared 2-core machine spinning threads made a 0.1 s training run take 3-15 s (measured).
It also warms the process up in the background (Plotly's validators, torch's first kernels): cold, the
first Train waited 2.7 s for its first boundary; warm, 0.14 s.

warm_up (app.py calls it, once per server process) also takes the server's long-lived objects out of the
garbage collector's view (gc.freeze): with torch, pandas and Plotly loaded a full collection walks ~300,000
objects in 0.1-0.25 s while holding the GIL, so the messages of a finished rerun waited for it before they
could be sent (Streamlit's own collection after every run is switched off in .streamlit/config.toml for the
same reason).
"""

import gc
import sys
import threading

import pandas  # noqa: F401  imported here, in the importing thread: two threads importing one module race
import plotly.graph_objects as go
import torch

from lossviz import experiment

torch.set_num_threads(1)


# Plotly imports its validators lazily on first use: build one figure here, in the importing thread, so that
# no two threads ever import the same module at once (that race broke pandas' import once in six starts).
go.Figure([go.Heatmap(z=[[0, 1], [1, 0]]), go.Scatter(x=[0, 1], y=[1, 0]), go.Contour(z=[[0, 1]])]).to_json()


def _warm_up() -> None:
    """One tiny training run, so the first Train does not pay for torch's first calls (its modules are
    imported above, never in this thread)."""
    tiny = experiment.Experiment(
        experiment.DataSpec(n=40),
        experiment.ModelSpec(width=4, depth=1),
        experiment.OptimSpec(epochs=2, snapshots=2),
    )
    experiment.run(tiny, "cross_entropy")
    freeze_long_lived_objects()  # again: what the first training run imported lives as long as the server


def freeze_long_lived_objects() -> int:
    """Move every object alive now out of the collector's generations (modules, classes, caches: they live
    as long as the server), so a full collection walks only what reruns create. Returns the frozen count."""
    gc.freeze()
    return gc.get_freeze_count()


_started = False


def warm_up() -> None:
    """Start the warm-up once per server process (app.py calls it). Not under pytest: tests run many apps in
    one process, where a background thread would only add nondeterminism."""
    global _started
    if _started or "pytest" in sys.modules:
        return
    _started = True
    freeze_long_lived_objects()
    threading.Thread(target=_warm_up, name="lossviz-warm-up", daemon=True).start()
