"""Child process of the crash and lock tests (run as a script, not collected by pytest).

Usage: python _writer_child.py PROJECT MODE
  MODE=loop: create a run and write history forever (flush every 5 steps of 200 rows),
             printing "flushed <n_steps>" after each flush, until killed.
  MODE=hold: create a run, print "run <id>", and hold its lock until stdin closes.
"""

from __future__ import annotations

import sys

import numpy as np

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.storage import Project

FLUSH_EVERY = 5
ROWS = 200


def main() -> None:
    folder, mode = sys.argv[1], sys.argv[2]
    project = Project.open(folder)
    ids = project.patches().id
    run_id = project.create_run(
        RunConfig(seed=1, sampler=SamplerConfig(rule="cdf")), n_train=len(ids), device="cpu"
    )
    if mode == "hold":
        print(f"run {run_id}", flush=True)
        sys.stdin.read()
        return
    rng = np.random.default_rng(0)
    writer = project.history_writer(run_id, flush_every_steps=FLUSH_EVERY)
    step = 0
    while True:
        chosen = np.zeros(ROWS, np.int32)
        chosen[:20] = 1
        writer.record(
            step,
            step // 50,
            rng.choice(ids, ROWS, replace=False),
            rng.random(ROWS, dtype=np.float32),
            np.full(ROWS, 1 / ROWS, np.float32),
            chosen,
            chosen.astype(np.float32),
        )
        step += 1
        if writer.pending_steps == 0:
            print(f"flushed {step}", flush=True)


if __name__ == "__main__":
    main()
