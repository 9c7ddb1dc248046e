"""A real 2-process distributed training (gloo on CPU, launched by torchrun) through the same Trainer path.

The U-Net uses instance norm: BatchNorm running statistics are per process under DDP (as in plain PyTorch;
rank 0 saves its own), so only a model without them can be compared byte for byte across ranks.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch.distributed as dist

RANK_SCRIPT = textwrap.dedent('''
    import hashlib, json, os, sys
    import torch
    from medhub.training import Recipe, train

    out = sys.argv[1]
    recipe = Recipe.from_dict({
        "name": "ddp-tiny-unet", "seed": 5,
        "model": {"type": "unet", "config": {"in_channels": 1, "num_labels": 2, "base_width": 4, "depth": 2,
                                             "padding": "same", "norm": "instance", "dropout": 0.0, "loss": "ce"}},
        "data": {"name": "isbi2012", "options": {"val_slices": 4}, "crop": [64, 64],
                 "label_values": {255: 1}},
        "training": {"max_steps": 8, "per_device_train_batch_size": 2, "learning_rate": 0.01, "logging_steps": 1,
                     "save_strategy": "no", "disable_tqdm": True, "use_cpu": True, "ddp_backend": "gloo"},
    })
    result = train(recipe, os.path.join(out, "model"))
    digest = hashlib.sha256()
    for key, value in sorted(result.model.state_dict().items()):
        digest.update(key.encode()); digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    losses = [log["loss"] for log in result.trainer.state.log_history if "loss" in log]
    rank = torch.distributed.get_rank()
    report = {"rank": rank, "world_size": torch.distributed.get_world_size(), "hash": digest.hexdigest(),
              "losses": losses, "processes": result.model.config.weights_info["hyperparameters"]["processes"],
              "step": result.trainer.state.global_step}
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(report, f)
''')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")
def test_two_process_ddp_agrees_on_weights_and_learns(shared_data, tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MEDHUB_DATA_DIR": str(shared_data),
           "TOKENIZERS_PARALLELISM": "false"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    command = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
               str(free_port()), str(script), str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert reports[0]["hash"] == reports[1]["hash"]  # DDP kept the replicas identical
    assert reports[0]["step"] == 8 and reports[0]["processes"] == 2
    losses = reports[0]["losses"]
    assert len(losses) == 8 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # the loss went down
    assert (tmp_path / "model" / "model.safetensors").is_file()  # written once, by rank 0
    info = json.loads((tmp_path / "model" / "config.json").read_text())["weights_info"]
    assert info["hyperparameters"]["batch_size"] == 4  # 2 per process x 2 processes
