"""Rebuilds a lepton checkpoint as a PyTorch module, from docs/checkpoint-format.md alone.

    from lepton_policy import load_policy
    policy = load_policy("checkpoints/deeprm_hold_ppo/seed1/best.json")
    action = policy.greedy_action(obs, mask)  # obs float32 [B, obs_dim], mask bool [B, A]

Needs only torch: the .safetensors weights are read by `read_safetensors` below. The module is
TorchScript-compatible (`torch.jit.script(policy)`), which is how `lepton-train export` writes it.
"""

import hashlib
import json
import struct
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

# The format versions this loader reads (the `versions.format` key).
FORMATS = (1, 2)
# The variance floor of lepton's observation normaliser.
VAR_EPS = 1e-8

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


class CheckpointError(ValueError):
    """A checkpoint this loader cannot rebuild; the message names the file and the reason."""


def read_safetensors(data: bytes, path: Path) -> Dict[str, Tensor]:
    """The tensors of a .safetensors file's bytes: an 8-byte little-endian header size, a JSON
    header naming each tensor's dtype, shape and byte range, then the raw little-endian data."""
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise CheckpointError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = (8 + header_len + offset for offset in info["data_offsets"])
        flat = torch.frombuffer(bytearray(data[start:end]), dtype=_DTYPES[info["dtype"]])
        tensors[name] = flat.reshape(info["shape"])
    return tensors


def _act(x: Tensor, activation: str) -> Tensor:
    return torch.tanh(x) if activation == "tanh" else torch.relu(x)


class Trunk(nn.Sequential):
    """Linear layers with the activation after each (names `<trunk>.<i>.weight|bias`)."""

    def __init__(self, inputs: int, widths: List[int], activation: str):
        super().__init__(*(nn.Linear(i, o) for i, o in zip([inputs] + widths, widths)))
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        for layer in self:
            x = _act(layer(x), self.activation)
        return x


class Mlp(nn.Module):
    def __init__(self, net: dict, obs_dim: int, num_actions: int):
        super().__init__()
        hidden, act = net["hidden"], net["activation"]
        if net.get("shared_trunk", False):
            self.trunk = Trunk(obs_dim, hidden, act)
        else:
            self.actor = Trunk(obs_dim, hidden, act)
            self.critic = Trunk(obs_dim, hidden, act)
        self.policy_head = nn.Linear(hidden[-1], num_actions)
        self.value_head = nn.Linear(hidden[-1], 1)

    def forward(self, obs: Tensor) -> Tensor:
        if hasattr(self, "trunk"):  # resolved when scripted: one branch exists
            return self.policy_head(self.trunk(obs))
        return self.policy_head(self.actor(obs))


def _split_rows(obs: Tensor, layout: List[int]) -> Tuple[Tensor, Tensor, Tensor]:
    """[B, dim] → global [B, g], servers [B, S, fs], slots [B, K, fk]."""
    g, s, fs, k, fk = layout
    b = obs.size(0)
    servers = obs[:, g : g + s * fs].reshape(b, s, fs)
    slots = obs[:, g + s * fs : g + s * fs + k * fk].reshape(b, k, fk)
    return obs[:, :g], servers, slots


def _with_global(rows: Tensor, glob: Tensor) -> Tensor:
    """The global features appended to every row: [B, R, f] → [B, R, f + g]."""
    return torch.cat([rows, glob.unsqueeze(1).expand(-1, rows.size(1), -1)], 2)


def _pair_features(slots: Tensor, servers: Tensor, r: int) -> Tensor:
    """[B, K, S, r + 2]: Tetris's alignment, the free fraction left per resource and the fit
    margin of every (slot, server) pair, in the server's own units (checkpoint-format.md)."""
    demand_of_max = slots[:, :, 1 : 1 + r].unsqueeze(2)
    free = servers[:, :, :r].unsqueeze(1)
    capacity_of_max = servers[:, :, r : 2 * r].unsqueeze(1)
    demand = (demand_of_max / capacity_of_max.clamp(min=1e-6)).clamp(max=2.0)
    alignment = (demand * free).sum(-1, keepdim=True)
    left = free - demand
    return torch.cat([alignment, left, left.amin(-1, keepdim=True)], 3)


def _pair_options(net: dict, resources: int) -> Tuple[bool, float, int]:
    """(pair_features, tetris_prior, resources) of a set or kernel network."""
    return bool(net.get("pair_features", False)), float(net.get("tetris_prior", 0.0)), resources


class SetNet(nn.Module):
    def __init__(self, net: dict, layout: List[int], pairs: bool, resources: int):
        super().__init__()
        g, _, fs, _, fk = layout
        e, p, act = net["embed_dim"], net["pair_dim"], net["activation"]
        self.layout, self.pairs, self.activation = layout, pairs, act
        self.pair_features, self.tetris_prior, self.resources = _pair_options(net, resources)
        # Identity stands in when off, so that TorchScript compiles either branch.
        self.score_pair = nn.Linear(resources + 2, p) if self.pair_features else nn.Identity()
        self.server_encoder = Trunk(fs + g, [e, e], act)
        self.slot_encoder = Trunk(fk + g, [e, e], act)
        self.context = Trunk(2 * e + g, [e], act)
        self.score_slot = nn.Linear(e, p)
        self.score_server = nn.Linear(e, p)
        self.score_context = nn.Linear(e, p)
        self.score_head = nn.Linear(p, 1)
        self.wait_head = nn.Linear(e, 1)
        self.value_trunk = Trunk(e, [e], act)
        self.value_head = nn.Linear(e, 1)

    def forward(self, obs: Tensor) -> Tensor:
        glob, servers, slots = _split_rows(obs, self.layout)
        e_server = self.server_encoder(_with_global(servers, glob))
        e_slot = self.slot_encoder(_with_global(slots, glob))
        ctx = self.context(torch.cat([e_server.mean(1), e_slot.mean(1), glob], 1))
        a_slot = self.score_slot(e_slot)
        c = self.score_context(ctx)
        b = obs.size(0)
        if self.pairs:
            z = a_slot.unsqueeze(2) + self.score_server(e_server).unsqueeze(1)
            z = z + c.unsqueeze(1).unsqueeze(1)
            pairs = slots  # unused unless a pair option is on
            if self.pair_features or self.tetris_prior > 0.0:
                pairs = _pair_features(slots, servers, self.resources)
            if self.pair_features:
                z = z + self.score_pair(pairs)
            scores = self.score_head(_act(z, self.activation)).reshape(b, -1)
            if self.tetris_prior > 0.0:
                scores = scores + pairs[:, :, :, 0].reshape(b, -1) * self.tetris_prior
        else:
            z = a_slot + c.unsqueeze(1)
            scores = self.score_head(_act(z, self.activation)).reshape(b, -1)
        return torch.cat([scores, self.wait_head(ctx)], 1)


class KernelNet(nn.Module):
    def __init__(self, net: dict, layout: List[int], pairs: bool, resources: int):
        super().__init__()
        g, s, fs, k, fk = layout
        hidden, act = net["hidden"], net["activation"]
        self.layout, self.pairs = layout, pairs
        self.pair_features, self.tetris_prior, self.resources = _pair_options(net, resources)
        extra = resources + 2 if self.pair_features else 0
        self.kernel = Trunk(fk + fs + g + extra, hidden, act)
        self.kernel_head = nn.Linear(hidden[-1], 1)
        self.wait_head = nn.Linear(hidden[-1], 1)
        self.critic = Trunk(g + s * fs + k * fk, hidden, act)
        self.value_head = nn.Linear(hidden[-1], 1)

    def forward(self, obs: Tensor) -> Tensor:
        glob, servers, slots = _split_rows(obs, self.layout)
        b, k, n = obs.size(0), slots.size(1), servers.size(1)
        pairs = slots  # unused unless a pair option is on
        if self.pairs and (self.pair_features or self.tetris_prior > 0.0):
            pairs = _pair_features(slots, servers, self.resources)
        if self.pairs:  # one row per (slot, server): [B, K*S, fk + fs + g (+ r + 2)]
            parts = [
                slots.unsqueeze(2).expand(-1, k, n, -1),
                servers.unsqueeze(1).expand(-1, k, n, -1),
                glob.unsqueeze(1).unsqueeze(1).expand(-1, k, n, -1),
            ]
            if self.pair_features:
                parts.append(pairs)
            inputs = torch.cat(parts, 3).reshape(b, k * n, -1)
        else:  # one row per slot, with the mean server row
            inputs = torch.cat(
                [
                    slots,
                    servers.mean(1, keepdim=True).expand(-1, k, -1),
                    glob.unsqueeze(1).expand(-1, k, -1),
                ],
                2,
            )
        hidden = self.kernel(inputs)
        scores = self.kernel_head(hidden).squeeze(-1)
        if self.pairs and self.tetris_prior > 0.0:
            scores = scores + pairs[:, :, :, 0].reshape(b, -1) * self.tetris_prior
        return torch.cat([scores, self.wait_head(hidden.mean(1))], 1)


class LeptonPolicy(nn.Module):
    """A checkpoint's action head behind lepton's decision rule.

    `obs` is the env's raw observation (this module applies the checkpoint's normaliser),
    `mask` is True for legal actions, with at least one per row.
    """

    def __init__(self, net: nn.Module, meta: dict):
        super().__init__()
        self.net = net
        norm = meta.get("normalizer")
        dim = meta["obs_dim"]
        self.normalize = norm is not None
        mean = norm["mean"] if norm else [0.0] * dim
        std = [(v + VAR_EPS) ** 0.5 for v in norm["var"]] if norm else [1.0] * dim
        self.register_buffer("obs_mean", torch.tensor(mean, dtype=torch.float64))
        self.register_buffer("obs_std", torch.tensor(std, dtype=torch.float64))
        self.clip = float(norm["clip"]) if norm else 0.0
        blocks = meta["action_layout"]["blocks"]
        # (slots, servers) when the greedy rule is the per-slot decoding, else (0, 0).
        slot_mass = meta["greedy"] == "slot_mass" and meta["head"] == "logits"
        slot_mass = slot_mass and [b["kind"] for b in blocks] == ["placements", "wait"]
        self.slot_mass = (blocks[0]["slots"], blocks[0]["servers"]) if slot_mass else (0, 0)

    @torch.jit.export
    def head(self, obs: Tensor) -> Tensor:
        """The head's outputs for every action, legal or not: [B, num_actions]."""
        if self.normalize:  # in float64 like lepton, then rounded to float32
            z = (obs.to(torch.float64) - self.obs_mean) / self.obs_std
            obs = z.clamp(-self.clip, self.clip).to(torch.float32)
        return self.net(obs.to(torch.float32))

    def forward(self, obs: Tensor, mask: Tensor) -> Tensor:
        """The head's outputs with illegal actions at -inf ([B, num_actions]); for a logits
        head, `softmax` of this is the policy's action distribution."""
        return self.head(obs).masked_fill(~mask, float("-inf"))

    @torch.jit.export
    def greedy_action(self, obs: Tensor, mask: Tensor) -> Tensor:
        """lepton's greedy action for each row (int64 [B])."""
        masked = self.forward(obs, mask)
        k, s = self.slot_mass
        if k == 0:
            return masked.argmax(-1)
        # Older checkpoints: the most likely slot (its placements' mass summed) or wait, then
        # that slot's most likely server.
        probs = torch.log_softmax(masked, -1).exp()  # as lepton computes it, to the last bit
        pairs = probs[:, : k * s].reshape(-1, k, s)
        decision = torch.cat([pairs.sum(2), probs[:, k * s :]], 1).argmax(-1)
        server = pairs.argmax(-1).gather(1, decision.clamp(max=k - 1).unsqueeze(1)).squeeze(1)
        return torch.where(decision < k, decision * s + server, torch.full_like(decision, k * s))


def _legacy_action_layout(layout: dict, num_actions: int) -> dict:
    """The action layout format 1 implied by its sizes."""
    k, s = layout["slot_rows"], layout["server_rows"]
    if k > 0 and s > 0 and num_actions == k * s + 1:
        return {"blocks": [{"kind": "placements", "slots": k, "servers": s}, {"kind": "wait"}]}
    if k > 0 and num_actions == k + 1:
        return {"blocks": [{"kind": "slots", "slots": k}, {"kind": "wait"}]}
    return {"blocks": [{"kind": "plain", "n": num_actions}]}


def read_meta(json_path) -> dict:
    """The metadata of a checkpoint, with format 1 brought to format 2's keys."""
    path = Path(json_path)
    if path.suffix != ".json":
        kind = path.suffix or "directory"
        raise CheckpointError(f"{path}: pass the checkpoint's metadata .json, not its {kind}")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read the metadata: {e}") from e
    version = meta.get("versions", {}).get("format")
    if version not in FORMATS:
        raise CheckpointError(f"{path}: format version {version}, this loader reads {FORMATS}")
    if version == 1:
        meta["action_layout"] = _legacy_action_layout(meta["obs_layout"], meta["num_actions"])
        meta["head"] = "q" if "num_updates" in meta["trainer_state"] else "logits"
        meta["weights"] = {"file": meta["weights_file"], "sha256": meta["weights_sha256"]}
    meta.setdefault("greedy", "slot_mass")  # checkpoints older than the key
    return meta


def _network(path: Path, meta: dict) -> nn.Module:
    """The untrained network the metadata describes."""
    net, lay = meta["network"], meta["obs_layout"]
    names = ("global", "server_rows", "server_features", "slot_rows", "slot_features")
    layout = [lay[name] for name in names]
    blocks = meta["action_layout"]["blocks"]
    if net["arch"] == "mlp":
        return Mlp(net, meta["obs_dim"], meta["num_actions"])
    # Set and kernel networks score the observation's slot (and server) rows, then wait.
    k, s = lay["slot_rows"], lay["server_rows"]
    pairs = blocks == [{"kind": "placements", "slots": k, "servers": s}, {"kind": "wait"}]
    slots = blocks == [{"kind": "slots", "slots": k}, {"kind": "wait"}]
    if net["arch"] in ("set", "kernel") and k > 0 and s > 0 and (pairs or slots):
        resources = lay.get("resources", 0)
        if (net.get("pair_features") or net.get("tetris_prior", 0.0) > 0.0) and not (
            pairs and resources > 0
        ):
            raise CheckpointError(
                f"{path}: network.pair_features and tetris_prior need placements and "
                f"obs_layout.resources > 0"
            )
        return (SetNet if net["arch"] == "set" else KernelNet)(net, layout, pairs, resources)
    raise CheckpointError(
        f"{path}: network.arch {net['arch']!r} with actions {blocks} is not a lepton network"
    )


def load_policy(json_path) -> LeptonPolicy:
    """The policy of a checkpoint's metadata file, in eval mode on the CPU."""
    path = Path(json_path)
    meta = read_meta(path)
    net = _network(path, meta)
    weights_path = path.parent / meta["weights"]["file"]
    try:
        data = weights_path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the weights: {e}") from e
    if hashlib.sha256(data).hexdigest() != meta["weights"]["sha256"]:
        raise CheckpointError(f"{path}: {weights_path.name} does not match its recorded SHA-256")
    try:
        net.load_state_dict(read_safetensors(data, weights_path), strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: the weights do not fit the network: {e}") from e
    net.requires_grad_(False)
    return LeptonPolicy(net, meta).eval()
