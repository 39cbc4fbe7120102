"""Start a training module as one process, or as torchrun's processes when its job holds GPUs.

    python -m musicot.launch --procs 4 [--nodes 2] musicot.lm.train --config ... --out ...

Training rules call this with their `gpu` resource (`--procs {resources.gpu}`), so one DAG runs
everywhere: 0 or 1 starts `python -m <module>` (a laptop, one GPU), N > 1 starts
`torch.distributed.run` (torchrun) with N processes per node, each with its own GPU, and the shared
training loop turns data-parallel (`musicot.distributed`). N processes also work without GPUs (gloo
on CPU), which is how the tests run a 2-process job on fake SLURM GPUs.

Several nodes (`--nodes M`, the rule's `nodes` resource) need one launcher per node: inside a SLURM
allocation that is `srun --ntasks-per-node=1 python -m musicot.launch ...` (the slurm profile's
`nodes` and `tasks_per_node`); the launchers meet at the first node of SLURM_JOB_NODELIST through
torchrun's c10d rendezvous (`--rdzv-endpoint`, `--rdzv-id` from SLURM_JOB_ID). Only one node is tested
here; see the README's "Running on a cluster".

The launcher replaces itself (exec) with the command, so SLURM's signals at a time limit reach the
trainer, which resumes from its checkpoint when the job is retried.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Sequence

log = logging.getLogger("musicot.launch")

RDZV_PORT = 29500


def head_node() -> str:
    """The first host of this SLURM allocation (the rendezvous), or this host outside SLURM."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST", "")
    if not nodelist:
        return "localhost"
    hosts = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    return hosts.stdout.split()[0]


def command(module: str, args: Sequence[str], procs: int, nodes: int = 1, endpoint: str = "") -> list[str]:
    """The argv that starts `module` with `args` as `procs` processes on each of `nodes` nodes."""
    if procs < 0 or nodes < 1:
        raise ValueError(f"--procs {procs} --nodes {nodes}: need procs >= 0 and nodes >= 1")
    python = [sys.executable]
    if procs <= 1 and nodes == 1:
        return [*python, "-m", module, *args]
    run = [*python, "-m", "torch.distributed.run", f"--nproc_per_node={max(procs, 1)}"]
    if nodes == 1:
        run.append("--standalone")  # a local rendezvous on a free port: jobs sharing a node do not collide
    else:
        run += [
            f"--nnodes={nodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={endpoint or f'{head_node()}:{RDZV_PORT}'}",
            f"--rdzv-id={os.environ.get('SLURM_JOB_ID', 'musicot')}",
        ]
    return [*run, "-m", module, *args]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, default=0, help="processes per node: the job's GPUs (0 or 1: one)")
    parser.add_argument("--nodes", type=int, default=1, help="nodes of the job (one launcher runs on each)")
    parser.add_argument("--rdzv-endpoint", default="", help="host:port of the rendezvous (default: the head node)")
    parser.add_argument("module", help="the training module, e.g. musicot.lm.train")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the module's own arguments")
    a = parser.parse_args(argv)
    argv_out = command(a.module, a.args, a.procs, a.nodes, a.rdzv_endpoint)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.info("%s", " ".join(argv_out))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv_out[0], argv_out)


if __name__ == "__main__":
    main()
