"""Sparse dictionaries: a TopK sparse autoencoder (Gao et al. 2024, "Scaling and evaluating
sparse autoencoders") over one layer's activations at every position of a probe set.

    z = TopK(relu(E (x - c) + b))        x̂ = D z + c

E is [F, C], D [F, C] with unit-norm rows (renormalized after every step), c the centre
(initialized to the data's mean, then learned), b per feature. Training follows the paper at
this scale: inputs scaled to unit root mean square (the scale is folded back into E, c and D
afterwards, so the saved dictionary reads raw activations), encoder initialized to the
decoder's transpose, Adam with the learning rate decayed linearly over the last fifth, and the
AuxK loss (the residual reconstructed by the top `k_aux` dead features, weight 1/32) so that
fewer features die. Written here rather than taken from sae-lens, which pulls in
transformer-lens, transformers and datasets for a module of forty lines.

Deterministic on a CPU: the initialization and the order of positions come from the job's
seed through one torch.Generator, and training runs on one thread; the same job gives the
same bytes on one machine (`dictionary.npz` is written without timestamps; another CPU's
floating-point kernels may differ in the last bits).
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile

import numpy as np
import torch

from distillgen import datasets
from distillgen.engine import Output, stream
from distillgen.engine.models import LoadedModel
from distillgen.engine.probe import peak, unit_maps
from distillgen.jobs import DictionaryJob, DictionaryResult, DictionarySettings

AUX_WEIGHT = 1 / 32
DEAD_AFTER_STEPS = 20  # a feature silent for this many steps counts as dead for AuxK (200: 49 of
# 384 features on shapes mixed4 never fired; 20: 8, and a slightly lower FVU)
PURITY_TOP = 16  # top probe images per unit for the purity measure


class TopKSAE(torch.nn.Module):
    def __init__(self, channels: int, features: int, k: int, generator: torch.Generator) -> None:
        super().__init__()
        decoder = torch.randn(features, channels, generator=generator)
        decoder = decoder / decoder.norm(dim=1, keepdim=True)
        self.decoder = torch.nn.Parameter(decoder)
        self.encoder = torch.nn.Parameter(decoder.clone())
        self.bias = torch.nn.Parameter(torch.zeros(features))
        self.center = torch.nn.Parameter(torch.zeros(channels))
        self.k = k

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        return feature_activations(self.encoder, self.center, self.bias, x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.decoder + self.center


def feature_activations(
    encoder: torch.Tensor, center: torch.Tensor, bias: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """Every feature's activation, the encoder on the centred activations, a_i = e_i·(x - c) + b_i
    (before ReLU and TopK): [N, C] -> [N, F], or [N, C, H, W] -> [N, F, H, W] at each position.
    The one formula for training, measures, purity and the feature layer (engine/features.py)."""
    if x.dim() == 4:
        out = torch.einsum("fc,nchw->nfhw", encoder, x - center[None, :, None, None])
        return out + bias[None, :, None, None]
    return (x - center) @ encoder.T + bias


def topk(pre: torch.Tensor, k: int) -> torch.Tensor:
    """The TopK code of activations [N, F]: relu of the k largest, 0 elsewhere."""
    values, indices = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))


def train(
    samples: np.ndarray, settings: DictionarySettings, progress=lambda steps: None
) -> dict[str, np.ndarray]:
    """A TopK SAE on `samples` [N, C]: its arrays (encoder, bias, center, decoder) reading raw
    activations. On one thread: the matrices are small, so threads only wait on each other
    (12x slower on a busy 2-core machine), and one thread gives the same bytes on one machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(samples, settings, progress)
    finally:
        torch.set_num_threads(threads)


def _train(samples: np.ndarray, settings: DictionarySettings, progress) -> dict[str, np.ndarray]:
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    scale = float(x.pow(2).mean().sqrt()) or 1.0
    x = x / scale
    generator = torch.Generator().manual_seed(settings.seed)
    model = TopKSAE(x.shape[1], settings.features, min(settings.k, settings.features), generator)
    with torch.no_grad():
        model.center.copy_(x.mean(dim=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    decay_from = int(settings.steps * 0.8)
    k_aux = max(1, min(x.shape[1] // 2, settings.features))
    last_active = torch.zeros(settings.features, dtype=torch.long)
    order, cursor = torch.randperm(len(x), generator=generator), 0
    for step in range(settings.steps):
        if cursor + settings.batch > len(order):
            order, cursor = torch.randperm(len(x), generator=generator), 0
        batch = x[order[cursor : cursor + settings.batch]]
        cursor += settings.batch
        if step >= decay_from:
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * (settings.steps - step) / (settings.steps - decay_from)
        pre = model.pre(batch)
        z = topk(pre, model.k)
        error = batch - model.decode(z)
        loss = error.pow(2).sum(dim=1).mean()
        active = (z > 0).any(dim=0)
        last_active[active] = step
        dead = (step - last_active) >= DEAD_AFTER_STEPS
        if dead.any():
            masked = pre.masked_fill(~dead, float("-inf"))
            aux_z = topk(masked, min(k_aux, int(dead.sum())))
            aux_z = torch.nan_to_num(aux_z, nan=0.0, neginf=0.0)
            residual = error.detach()
            aux = (residual - aux_z @ model.decoder).pow(2).sum(dim=1).mean()
            loss = loss + AUX_WEIGHT * aux / residual.pow(2).sum(dim=1).mean().clamp_min(1e-12)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.decoder /= model.decoder.norm(dim=1, keepdim=True).clamp_min(1e-8)
        progress(1)
    with torch.no_grad():
        return {
            "encoder": (model.encoder / scale).numpy().astype(np.float32),
            "bias": model.bias.numpy().astype(np.float32).copy(),
            "center": (model.center * scale).numpy().astype(np.float32),
            "decoder": (model.decoder * scale).numpy().astype(np.float32),
        }


def _tensors(weights: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return tuple(torch.from_numpy(weights[n]) for n in ("encoder", "center", "bias"))


def encode(weights: dict[str, np.ndarray], samples: torch.Tensor, k: int) -> torch.Tensor:
    """The TopK codes of raw activations [N, C] -> [N, F]."""
    return topk(feature_activations(*_tensors(weights), samples), k)


def measures(weights: dict[str, np.ndarray], samples: np.ndarray, k: int) -> tuple[float, float, np.ndarray]:
    """(fraction of variance unexplained, mean L0, each feature's density) on `samples`."""
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    decoder, center = torch.from_numpy(weights["decoder"]), torch.from_numpy(weights["center"])
    squared, total, l0 = 0.0, 0.0, 0.0
    counts = torch.zeros(decoder.shape[0], dtype=torch.float64)
    mean = x.mean(dim=0)
    for start in range(0, len(x), 8192):
        part = x[start : start + 8192]
        z = encode(weights, part, k)
        squared += float((part - (z @ decoder + center)).double().pow(2).sum())
        total += float((part - mean).double().pow(2).sum())
        active = z > 0
        l0 += float(active.sum())
        counts += active.sum(dim=0).double()
    return squared / max(total, 1e-12), l0 / len(x), (counts / len(x)).numpy()


def samples_of(maps: torch.Tensor) -> np.ndarray:
    """Every position of every image as a sample: [N, C, H, W] -> [N·H·W, C] (or [N, C])."""
    if maps.dim() == 2:
        return maps.numpy()
    return maps.permute(0, 2, 3, 1).reshape(-1, maps.shape[1]).numpy()


def purity(peaks: np.ndarray, labels: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column of `peaks` [images, units]: the share of its top `top` images in their most
    common class, and that class."""
    order = np.argsort(-peaks, axis=0, kind="stable")[:top]  # [top, units]
    classes = labels[order]  # [top, units]
    count = labels.max() + 1
    tallies = np.stack([(classes == c).sum(axis=0) for c in range(count)])  # [classes, units]
    return tallies.max(axis=0) / len(order), tallies.argmax(axis=0)


def feature_peaks(weights: dict[str, np.ndarray], maps: torch.Tensor) -> np.ndarray:
    """Each feature's peak activation (`feature_activations`, max over positions) per image:
    [images, F]."""
    tensors = _tensors(weights)
    return torch.cat(
        [peak(feature_activations(*tensors, maps[start : start + 128])) for start in range(0, len(maps), 128)]
    ).numpy()


def npz_bytes(weights: dict[str, np.ndarray]) -> bytes:
    """An .npz numpy reads (`allow_pickle=False`), byte for byte the same for the same arrays:
    numpy's own `savez` stamps each member with the time."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, value in weights.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)
            archive.writestr(
                zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue()
            )
    return buffer.getvalue()


def layer_maps(
    model: LoadedModel, job: DictionaryJob, device: torch.device
) -> tuple[torch.Tensor, np.ndarray | None]:
    """The layer's every map over the probe set (the training sample: every position of every
    image) and the images' classes (None without classes). A generator's sample is drawn
    whole; a folder is streamed (engine/stream.py), its images never held, only their maps,
    and files that do not decode are left out."""
    units = list(range(model.layers[job.layer].channels))
    if not job.dataset.folder:
        images, labels = datasets.labelled(job.dataset, model.input_size)
        return unit_maps(model, job.layer, units, images, device), labels
    _files, labels = datasets.probe_files(job.dataset)
    maps, kept = [], []
    for batch in stream.batches(job.dataset, model.input_size):
        if len(batch.indices):
            maps.append(unit_maps(model, job.layer, units, batch.pixels.numpy(), device))
            kept.append(batch.indices)
    if not maps:
        raise OSError(f"none of the images in {job.dataset.source} can be decoded")
    return torch.cat(maps), None if labels is None else labels[np.concatenate(kept)]


def compute(
    model: LoadedModel, jobs: list[DictionaryJob], device: torch.device, progress, load
) -> list[Output]:
    outputs = []
    for job in jobs:
        start = time.perf_counter()
        maps, labels = layer_maps(model, job, device)
        samples = samples_of(maps)
        weights = train(samples, job.settings, progress)
        data = npz_bytes(weights)
        fvu, l0, density = measures(weights, samples, job.settings.k)
        neuron_purity = neuron_class = feature_purity = feature_class = np.zeros(0)
        top = min(PURITY_TOP, len(maps))  # the images each unit's purity is measured on
        if labels is not None:
            neuron_purity, neuron_class = purity(peak(maps).numpy(), labels, top)
            feature_purity, feature_class = purity(feature_peaks(weights, maps), labels, top)
        result = DictionaryResult(
            fvu=round(fvu, 6),
            mean_l0=round(l0, 4),
            dead=int((density == 0).sum()),
            samples=len(samples),
            channels=int(samples.shape[1]),
            density=tuple(round(float(d), 6) for d in density),
            neuron_purity=tuple(round(float(p), 4) for p in neuron_purity),
            neuron_class=tuple(int(c) for c in neuron_class),
            feature_purity=tuple(round(float(p), 4) for p in feature_purity),
            feature_class=tuple(int(c) for c in feature_class),
            classes=datasets.class_names(job.dataset),
            top=top,
            checksum=hashlib.sha256(data).hexdigest(),
        )
        seconds = round(time.perf_counter() - start, 3)
        outputs.append(Output({"dictionary.npz": data}, result, {"seconds": seconds}))
    return outputs
