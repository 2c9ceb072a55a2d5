"""Feature visualization: lucent's parameterizations, transforms and objectives in a batched loop.

lucent's `render_vis` optimizes one objective per call, runs the whole network every step,
leaves its hooks on the model and uses the device it picked at import time. This loop instead

- optimizes every job of a batch group together, one image (or `diversity` images) per job,
  in chunks sized to the memory at hand;
- runs the forward pass only up to the deepest layer an objective reads (`hooks.capture`);
- keeps parameters frozen (no weight gradients) and removes its hooks, also after an error;
- applies lucent's standard transforms with two resamplings where lucent makes four
  (engine/transforms.py);
- draws each job's initial image from the job's own seed and the random transforms from the
  settings' seed, so a unit's image is the same whichever units share its batch: every image's
  loss depends only on that image (a diversity set's on its own images), and Adam updates each
  element on its own.
"""

from __future__ import annotations

import base64
import io
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

with warnings.catch_warnings():  # kornia 0.4 (lucent's pin) scripts functions on import
    warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", FutureWarning)
    from lucent.optvis import objectives, transform
    from lucent.optvis.param import color, spatial

from distillgen.engine import Output, maco
from distillgen.engine.device import memory_budget
from distillgen.engine.hooks import capture, run
from distillgen.engine.models import LoadedModel
from distillgen.engine.transforms import standard as standard_transforms
from distillgen.jobs import FeatureVisJob, FeatureVisResult, FeatureVisSettings

DIVERSITY_WEIGHT = 1e2  # lucent's notebooks use 1e2 to 1e3 against a channel objective


@dataclass
class Rendered:
    images: list[np.ndarray]  # uint8 H×W×3, one per image of the job
    values: list[float]  # the objective each image reaches (higher is better)
    seconds: float  # this job's share of its batch's wall time
    batch: int  # how many jobs shared the batch


def render(
    model: LoadedModel,
    jobs: list[FeatureVisJob],
    device: torch.device,
    progress: Callable[[int], None] = lambda steps: None,
    chunk: int | None = None,
) -> list[Rendered]:
    """Render `jobs` (all of `model`), batching those that share settings; results in order.

    `progress(n)` is called after every optimizer step with the number of images it advanced.
    """
    # channels_last: oneDNN's and cuDNN's fast convolution layout (about 1.3x here on a CPU)
    model.module.to(device=device, memory_format=torch.channels_last)
    groups: dict[tuple, list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(job.batch_group(), []).append(index)
    results: dict[int, Rendered] = {}
    for indices in groups.values():
        size = chunk or chunk_size(model, [jobs[i] for i in indices], device)
        for start in range(0, len(indices), size):
            part = indices[start : start + size]
            for index, rendered in zip(
                part, _optimize(model, [jobs[i] for i in part], device, progress), strict=True
            ):
                results[index] = rendered
    return [results[i] for i in range(len(jobs))]


def chunk_size(model: LoadedModel, jobs: list[FeatureVisJob], device: torch.device) -> int:
    """How many images fit one batch: activations up to the deepest layer, about 4 copies each
    (output, gradient, saved inputs), within a quarter of free GPU memory or 2 GiB of RAM."""
    settings = jobs[0].settings
    deepest = max(list(model.layers).index(job.layer) for job in jobs)
    # layer shapes were measured at input_size; a model that takes no other is fed that size
    scale = 1.0 if model.fixed_size else ((settings.size + 24) / model.input_size) ** 2
    values = sum(int(np.prod(layer.shape)) for layer in list(model.layers.values())[: deepest + 1])
    per_image = 4 * 4 * values * scale + 1
    images_per_job = max(job.images for job in jobs)
    return max(1, int(memory_budget(device) // (per_image * images_per_job)))


def _optimize(
    model: LoadedModel, jobs: list[FeatureVisJob], device: torch.device, progress: Callable[[int], None]
) -> list[Rendered]:
    settings = jobs[0].settings
    start = time.perf_counter()
    with _isolated_rng(), _lucent_on(device):
        images, params = _parameterize(jobs, settings, device, model.input_size)
        objective, per_job = _objective(jobs, device)
        optimizer = torch.optim.Adam(params, lr=settings.lr)
        preprocess = model_input(model)
        transforms = [standard_transforms] if settings.transforms == "standard" else []
        augment = transform.compose([*transforms, preprocess])
        np.random.seed(settings.seed)  # the transforms draw from numpy's global generator
        layers = sorted({job.layer for job in jobs})
        count = sum(job.images for job in jobs)
        with capture(model.module, layers) as outputs:
            for _ in range(settings.steps):
                optimizer.zero_grad(set_to_none=True)
                run(model.module, augment(images()), outputs)
                objective(outputs.__getitem__).backward()
                optimizer.step()
                progress(count)
            with torch.no_grad():
                final = images()
                run(model.module, preprocess(final), outputs)
                values = [[-float(term(outputs.__getitem__)) for term in terms] for terms in per_job]
    seconds = (time.perf_counter() - start) / len(jobs)
    pixels = (final.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
    results, offset = [], 0
    for job, job_values in zip(jobs, values, strict=True):
        results.append(Rendered(list(pixels[offset : offset + job.images]), job_values, seconds, len(jobs)))
        offset += job.images
    return results


def _parameterize(
    jobs: list[FeatureVisJob], settings: FeatureVisSettings, device: torch.device, input_size: int = 0
) -> tuple[Callable[[], torch.Tensor], list[torch.Tensor]]:
    """One image parameterization for the whole batch (one inverse FFT per step): lucent's,
    with each job's slice of it drawn again from the job's own seed, exactly as lucent draws
    it; or MACO's, each image's phase drawn from the seed and its place in its set."""
    # Never a batch of one: a spare image, in no objective, keeps a lone image company, since
    # oneDNN computes a 3x3 convolution's input gradient in another order for a batch of one
    # (seen on AVX-512 CPUs). The spare is last, and no job's result reads it.
    spare = 1 if sum(job.images for job in jobs) == 1 else 0
    if settings.param == "maco":
        seeds = [settings.seed + i for job in jobs for i in range(job.images)]
        return maco.parameterize(_magnitude(jobs[0], input_size), seeds + [settings.seed + 1] * spare, device)
    total = sum(job.images for job in jobs) + spare
    shape = (total, 3, settings.size, settings.size)
    (tensor,), image = spatial.fft_image(shape) if settings.fft else spatial.pixel_image(shape, sd=0.01)
    offset = 0
    with torch.no_grad():
        for job in jobs:
            torch.manual_seed(settings.seed)  # lucent: torch.randn(...) * 0.01 on the CPU, then moved
            part = tensor[offset : offset + job.images]
            part.copy_(torch.randn(part.shape) * 0.01)
            offset += job.images
    # A matmul, not the cheaper 1x1 convolution: oneDNN's convolution sums in an order that
    # depends on the batch size, and an image must not depend on what shares its batch. On
    # contiguous pixels, each row's product (and gradient) is the same for any batch (checked:
    # 1-16 images, 32-224 px); a permuted view took other kernels at 32 px. MACO mixes its
    # colours elementwise instead (maco.py); doing so here would change every cached image's
    # last bits, where this changes none but those the batch used to change.
    decorrelate = torch.tensor(color.color_correlation_normalized.T, device=device)

    def images() -> torch.Tensor:
        # lucent's to_valid_rgb, with its colour matrix on our device instead of cuda:0
        pixels = image()
        if settings.decorrelate:
            pixels = (pixels.permute(0, 2, 3, 1).contiguous() @ decorrelate).permute(0, 3, 1, 2)
        return torch.sigmoid(pixels)

    return images, [tensor]


def _magnitude(job: FeatureVisJob, input_size: int) -> np.ndarray:
    """MACO's magnitudes: the spectrum job's (`prepared`), else (an ablation's own feature
    visualization) the probe set's, computed here."""
    if job.magnitude:
        return np.load(io.BytesIO(base64.b64decode(job.magnitude)))
    from distillgen import datasets
    from distillgen.faithful import default_probe, sample

    probe = sample(job.spectrum or default_probe())
    return maco.spectrum(datasets.images(probe, input_size), job.settings.size)


def _objective(jobs: list[FeatureVisJob], device: torch.device):
    """The batch's loss, and each job's terms (lucent objectives, one per image) for the final
    values.

    The loss is lucent's, summed over the batch, but computed per layer in one gather instead
    of one slice per image: the gradient of a slice is a tensor of the whole batch's size, so
    summing one per image made every step cost (images x batch), quadratic in the batch."""
    per_job = []
    offset = 0
    for job in jobs:
        per_job.append([_term(job, offset + i, device) for i in range(job.images)])
        offset += job.images
    channels: dict[str, list[tuple[int, int, float]]] = {}  # layer -> (image, channel, sign)
    others = []  # neuron and direction objectives: lucent's own, one per image
    diverse: dict[tuple[str, int], list[int]] = {}  # (layer, images) -> each set's first image
    offset = 0
    for job, terms in zip(jobs, per_job, strict=True):
        if job.objective in ("channel", "negative"):
            sign = 1.0 if job.objective == "channel" else -1.0
            channels.setdefault(job.layer, []).extend((offset + i, job.unit, sign) for i in range(job.images))
        else:
            others.extend(terms)
        if job.diversity:
            diverse.setdefault((job.layer, job.images), []).append(offset)
        offset += job.images

    # index tensors made once, not at every step (on a GPU each is a copy from the host)
    gathers = {
        layer: tuple(torch.tensor(column, device=device) for column in zip(*picked, strict=True))
        for layer, picked in channels.items()
    }
    sets = {
        key: torch.tensor(firsts, device=device)[:, None] + torch.arange(key[1], device=device)
        for key, firsts in diverse.items()
        if key[1] > 1  # a "set" of one image has nothing to differ from
    }

    def loss(model) -> torch.Tensor:
        total = torch.zeros((), device=device)
        for layer, (images, units, signs) in gathers.items():
            values = model(layer)[images, units]  # [terms, H, W] (or [terms] for a linear layer)
            total = total - (signs * values.reshape(len(images), -1).mean(dim=1)).sum()
        for term in others:
            total = total + term(model)
        for (layer, count), index in sets.items():
            total = total + DIVERSITY_WEIGHT * _diversity(model(layer), index, count)
        return total

    return loss, per_job


def _diversity(activations: torch.Tensor, index: torch.Tensor, count: int) -> torch.Tensor:
    """How alike the images of each diversity set are (lucent's `diversity` objective, negated:
    to be minimized), summed over the sets whose images `index` lists ([sets, count]), each
    over its own images only: sets share a batch without pushing each other's images apart.
    The sum runs in lucent's order within each set."""
    flat = activations[index].flatten(3)  # [sets, images, channels, positions]
    grams = torch.nn.functional.normalize(flat @ flat.transpose(2, 3), p=2, dim=(2, 3))
    pairs = [
        sum([(grams[:, i] * grams[:, j]).sum(dim=(1, 2)) for j in range(count) if j != i])
        for i in range(count)
    ]
    return (sum(pairs) / count).sum()


def _term(job: FeatureVisJob, index: int, device: torch.device) -> objectives.Objective:
    if job.objective == "channel":
        return objectives.channel(job.layer, job.unit, batch=index)
    if job.objective == "negative":
        return -objectives.channel(job.layer, job.unit, batch=index)
    if job.objective == "neuron":
        return objectives.neuron(job.layer, job.unit, batch=index)
    vector = torch.tensor(job.direction, dtype=torch.float32, device=device)
    return objectives.direction(job.layer, vector, batch=index)


def model_input(model: LoadedModel) -> Callable[[torch.Tensor], torch.Tensor]:
    """Images in [0, 1] as the model takes them: its preprocessing, and resized to its input
    size when it takes no other (a vision transformer); a CNN takes any size as it is."""
    preprocess = preprocessor(model.preprocessing)
    if not model.fixed_size:
        return preprocess
    side = model.input_size

    def fitted(x: torch.Tensor) -> torch.Tensor:
        x = preprocess(x)
        if x.shape[-1] == side and x.shape[-2] == side:
            return x
        return torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)

    return fitted


def preprocessor(kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if kind == "imagenet":
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return lambda x: (x - mean.to(x.device)) / std.to(x.device)
    if kind == "lucent":
        return transform.preprocess_inceptionv1()
    return lambda x: x


@contextmanager
def _lucent_on(device: torch.device) -> Iterator[None]:
    """lucent reads a module-level `device` chosen at import; point it at ours for the run."""
    saved = transform.device, spatial.device
    transform.device = spatial.device = device
    try:
        yield
    finally:
        transform.device, spatial.device = saved


@contextmanager
def _isolated_rng() -> Iterator[None]:
    """Seeding for a job must not change the random state of whatever runs next."""
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()
    try:
        yield
    finally:
        torch.random.set_rng_state(torch_state)
        np.random.set_state(numpy_state)


def compute(
    model: LoadedModel, jobs: list[FeatureVisJob], device: torch.device, progress, load
) -> list[Output]:
    """Artifacts for the cache: PNG files and the record's result fields."""
    outputs = []
    for rendered in render(model, jobs, device, progress):
        files = {f"image{i}.png": png_bytes(image) for i, image in enumerate(rendered.images)}
        result = FeatureVisResult(tuple(round(v, 6) for v in rendered.values), tuple(files))
        outputs.append(
            Output(files, result, {"seconds": round(rendered.seconds, 3), "batch": rendered.batch})
        )
    return outputs


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
