"""Checkpoint state round trips through safetensors + JSON without pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gansim.errors import ModelFileError
from gansim.training.checkpoint import flatten_state, latest_checkpoint, load_checkpoint, prune_checkpoints, save_checkpoint, unflatten_state


def test_optimizer_state_round_trip(tmp_path: Path) -> None:
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.9))
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {"opt": opt.state_dict(), "net": net.state_dict(), "rng": torch.get_rng_state(), "np": np.random.default_rng(3).bit_generator.state, "inf": float("inf")}
    path = save_checkpoint(tmp_path, 10, state)
    back = load_checkpoint(path)
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    opt2.load_state_dict(back["opt"])
    assert back["opt"]["param_groups"][0]["betas"] == (0.5, 0.9)
    for k, v in opt.state_dict()["state"][0].items():
        assert torch.equal(torch.as_tensor(v), torch.as_tensor(back["opt"]["state"][0][k]))
    assert torch.equal(back["rng"], state["rng"])
    assert back["np"] == state["np"]
    assert back["inf"] == float("inf")
    # the JSON part is plain JSON
    json.loads((path / "state.json").read_text())


def test_flatten_refuses_arbitrary_objects() -> None:
    with pytest.raises(TypeError, match="cannot store"):
        flatten_state({"f": object()})


def test_unflatten_is_inverse_for_nested_keys() -> None:
    state = {1: {"a": (1, 2.5, None)}, "x": [torch.arange(3)]}
    skeleton, tensors = flatten_state(state)
    back = unflatten_state(json.loads(json.dumps(skeleton)), tensors)
    assert back[1]["a"] == (1, 2.5, None)
    assert torch.equal(back["x"][0], torch.arange(3))


def test_prune_and_latest(tmp_path: Path) -> None:
    for rows in (1, 2, 3, 4):
        save_checkpoint(tmp_path, rows, {"rows": rows})
    prune_checkpoints(tmp_path, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["ckpt-000000000003", "ckpt-000000000004"]
    assert load_checkpoint(latest_checkpoint(tmp_path))["rows"] == 4


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 1, {"w": torch.ones(3)})
    (path / "tensors.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="tensors.safetensors"):
        load_checkpoint(path)
