"""The engines on a CUDA GPU give what they give on the CPU (skipped where there is no GPU).

Each model is loaded once per device (a store per device), so that no run moves the other
device's module. Convolutions on an NVIDIA GPU default to TF32 (torch.backends.cudnn.allow_tf32), which
keeps about 10 bits of mantissa: results agree with the CPU's to about 1e-3 relative, not to
float32's 1e-6. The expanded weights are compared both ways: with TF32 off they must equal the
CPU's to float tolerance; with the default they must be close. One feature visualization is
compared in tests/test_engine.py::test_cuda_renders_close_to_cpu; here a batch of them.
"""

from __future__ import annotations

import dataclasses
import io
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from distillgen import datasets, stimuli
from distillgen.engine import run_jobs
from distillgen.engine.featurevis import render
from distillgen.engine.models import ModelStore
from distillgen.engine.probe import responses
from distillgen.engine.weights import expanded_weights
from distillgen.jobs import (
    AblationJob,
    Edit,
    ExamplesJob,
    FeatureVisJob,
    FeatureVisSettings,
    Sweep,
    TuningJob,
    UniversalityJob,
    WeightsJob,
)
from distillgen.units import fingerprint, parse_spec

CPU = torch.device("cpu")
CUDA = torch.device("cuda")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@contextmanager
def tf32(enabled: bool):
    """TF32 for convolutions and matrix products within the block; the settings restored."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


_STORES: dict[str, ModelStore] = {}


def store(device: torch.device) -> ModelStore:
    """A model store per device: each model is loaded once per device, and a run on one device
    never moves the other's module (engines move the modules they run)."""
    return _STORES.setdefault(str(device), ModelStore())


def on_both(spec: str, compute):
    """compute(model, device) on the CPU and on the GPU, each with a model of its own."""
    return compute(store(CPU).get(spec), CPU), compute(store(CUDA).get(spec), CUDA)


def moved(model, device: torch.device):
    model.module.to(device)
    return model


def close(gpu, cpu, rel: float = 1e-2):
    """Within `rel` of the largest magnitude: TF32's error scales with the values summed."""
    cpu, gpu = np.asarray(cpu, np.float64), np.asarray(gpu, np.float64)
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=rel * max(float(np.abs(cpu).max()), 1e-6))


def result_of(output) -> dict:
    """An engine's typed result as plain data."""
    return dataclasses.asdict(output.result)


def run_on(spec: str, device: torch.device, jobs: list):
    models = store(device)
    return run_jobs(models.get(spec), jobs, device, lambda n: None, models.get)


WEIGHT_CASES = [
    # spec, source, target, units, canvas
    ("shapes", "conv2", "mixed3", [43, 5], None),  # through the pool and a branch
    ("shapes", "mixed3", "mixed4", [52, 48], None),
    ("torchvision:googlenet@untrained", "inception3a", "mixed3b", [0, 300], 224),
    ("lucent:inceptionv1@untrained", "mixed3a", "mixed3b", [320, 327, 415], 224),
]


@needs_cuda
@pytest.mark.parametrize(("spec", "source", "target", "units", "canvas"), WEIGHT_CASES)
def test_expanded_weights_equal_on_cpu_and_gpu(spec, source, target, units, canvas):
    with tf32(False):
        cpu, gpu = on_both(spec, lambda m, d: expanded_weights(moved(m, d), source, target, units, canvas))
    for a, b in zip(gpu, cpu, strict=True):
        assert a.shape == b.shape, "the kernel is cropped to another support on the GPU"
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(np.abs(b).max()))


@needs_cuda
@pytest.mark.parametrize(("spec", "source", "target", "units", "canvas"), WEIGHT_CASES)
def test_expanded_weights_close_on_the_gpu_with_default_precision(spec, source, target, units, canvas):
    cpu, gpu = on_both(spec, lambda m, d: expanded_weights(moved(m, d), source, target, units, canvas))
    for a, b in zip(gpu, cpu, strict=True):
        assert a.shape == b.shape, "the kernel is cropped to another support on the GPU"
        close(a, b, rel=5e-3)


@needs_cuda
def test_weights_engine_on_cuda_stores_the_cpu_kernels():
    spec = parse_spec("shapes")
    jobs = [WeightsJob(str(spec), fingerprint(spec), "mixed3", "mixed4", u) for u in (52, 30, 48)]
    with tf32(False):
        cpu, gpu = (run_on("shapes", device, jobs) for device in (CPU, CUDA))
    for a, b in zip(gpu, cpu, strict=True):
        kernels_gpu = np.load(io.BytesIO(a.files["kernels.npy"]))
        kernels_cpu = np.load(io.BytesIO(b.files["kernels.npy"]))
        np.testing.assert_allclose(kernels_gpu, kernels_cpu, rtol=1e-4, atol=1e-7)
        assert list(result_of(a)["shape"]) == list(result_of(b)["shape"])


SWEEP = Sweep("curve", "", "orientation", tuple(stimuli.sweep(0, 360, 12, True)))
DATA = datasets.dataset("shapes", 200, 0, None)


@needs_cuda
def test_tuning_on_cuda_is_close_to_cpu():
    job = TuningJob("shapes", "fp", "mixed4", (52, 30, 27, 47), SWEEP)
    (cpu,), (gpu,) = (run_on("shapes", device, [job]) for device in (CPU, CUDA))
    assert gpu.files.keys() == cpu.files.keys()  # the same stimuli
    close(result_of(gpu)["responses"], result_of(cpu)["responses"])


@needs_cuda
def test_examples_on_cuda_are_the_cpus_up_to_ties():
    jobs = [
        ExamplesJob("shapes", "fp", "mixed4", 52, DATA, top=8),
        ExamplesJob("shapes", "fp", "conv2", 24, DATA),
    ]
    cpu, gpu = (run_on("shapes", device, jobs) for device in (CPU, CUDA))
    for job, a, b in zip(jobs, gpu, cpu, strict=True):
        ours, theirs = result_of(a), result_of(b)
        assert abs(ours["receptive_field"] - theirs["receptive_field"]) <= 2
        scores = responses(store(CPU).get("shapes"), job.layer, [job.unit], datasets.images(DATA, 64), CPU)[
            :, 0
        ]
        tolerance = 1e-2 * float(np.abs(scores).max())
        for rank, (mine, cpus) in enumerate(zip(ours["examples"], theirs["examples"], strict=True)):
            assert mine["value"] == pytest.approx(cpus["value"], abs=tolerance), rank
            # the GPU's image at this rank is the CPU's, or one the CPU scores the same (a tie)
            assert scores[mine["index"]] == pytest.approx(cpus["value"], abs=tolerance), rank


@needs_cuda
def test_ablations_on_cuda_are_close_to_cpu():
    edits = (
        Edit("mixed3", (58, 63)),
        Edit("conv2", (7,), "mixed3", 56, 0.5),  # an edge into another unit, spliced in
        Edit("mixed3", (40,), whole=True),
    )
    jobs = [
        AblationJob("shapes", "fp", "mixed4", 48, edits, "tuning", sweep=SWEEP),
        AblationJob("shapes", "fp", "mixed4", 52, (Edit("mixed3", (43, 31)),), "examples", dataset=DATA),
    ]
    cpu, gpu = (run_on("shapes", device, jobs) for device in (CPU, CUDA))
    tuned_gpu, tuned_cpu = result_of(gpu[0]), result_of(cpu[0])
    close(tuned_gpu["before"], tuned_cpu["before"])
    close(tuned_gpu["after"], tuned_cpu["after"])
    assert tuned_gpu["after"] != tuned_gpu["before"]
    top_gpu, top_cpu = result_of(gpu[1]), result_of(cpu[1])
    for field in ("mean_before", "mean_after"):
        assert top_gpu[field] == pytest.approx(top_cpu[field], rel=2e-2), field


@needs_cuda
def test_an_ablation_on_its_featurevis_runs_on_cuda():
    settings = FeatureVisSettings(steps=12, size=32)
    job = AblationJob("shapes", "fp", "mixed4", 52, (Edit("mixed3", (43,)),), "featurevis", settings=settings)
    (gpu,) = run_on("shapes", CUDA, [job])
    result = result_of(gpu)
    assert (
        list(result["labels"]) == ["featurevis"] and np.isfinite([*result["before"], *result["after"]]).all()
    )


@needs_cuda
def test_universality_on_cuda_is_close_to_cpu():
    data = datasets.dataset("shapes", 100, 0, None)
    jobs = [
        UniversalityJob(
            "shapes", "a", "mixed4", "shapes@1", "b", "mixed4", data, "untrained", "shapes@untrained"
        ),
        UniversalityJob("shapes", "a", "mixed3", "shapes@1", "b", "mixed3", data, "shuffled"),
    ]
    cpu, gpu = (run_on("shapes", device, jobs) for device in (CPU, CUDA))
    for a, b in zip(gpu, cpu, strict=True):
        for name in ("correlations.npy", "baseline.npy"):
            matrix_gpu = np.load(io.BytesIO(a.files[name]))
            matrix_cpu = np.load(io.BytesIO(b.files[name]))
            np.testing.assert_allclose(matrix_gpu, matrix_cpu, atol=2e-2)
        ours, theirs = result_of(a), result_of(b)
        assert ours["samples"] == theirs["samples"] and ours["probe_size"] == theirs["probe_size"]
        assert np.median(ours["best_r"]) == pytest.approx(np.median(theirs["best_r"]), abs=1e-2)
        agree = np.mean(np.array(ours["best_unit"]) == np.array(theirs["best_unit"]))
        assert agree > 0.8  # best matches may swap only where two are (nearly) tied


@needs_cuda
def test_a_batch_of_featurevis_jobs_on_cuda_is_close_to_cpu():
    spec = parse_spec("shapes")
    settings = FeatureVisSettings(steps=12, size=32)
    jobs = [FeatureVisJob(str(spec), fingerprint(spec), "mixed3", u, settings=settings) for u in (3, 9, 15)]
    jobs.append(FeatureVisJob(str(spec), fingerprint(spec), "mixed3", 5, diversity=2, settings=settings))
    cpu, gpu = on_both("shapes", lambda m, d: render(m, jobs, d))
    for a, b in zip(gpu, cpu, strict=True):
        assert len(a.images) == len(b.images) and a.images[0].shape == b.images[0].shape
        assert a.values == pytest.approx(b.values, rel=0.1, abs=1e-2)
