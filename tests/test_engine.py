"""The feature-visualization engine on the shipped shapes network (real torch, real lucent)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distillgen.engine.featurevis import render
from distillgen.engine.hooks import capture, run
from distillgen.engine.models import load_model
from distillgen.jobs import FeatureVisJob, FeatureVisSettings
from distillgen.units import fingerprint, parse_spec
from distillgen.zoo.shapes_data import shapes_batch

CPU = torch.device("cpu")
QUICK = FeatureVisSettings(steps=12, size=32)


@pytest.fixture(scope="module")
def shapes():
    return load_model("shapes")


def mixed3_peaks(shapes) -> torch.Tensor:
    """Each mixed3 unit's strongest response to 100 drawings: [image, unit]."""
    acts = {}
    handle = shapes.module.mixed3.register_forward_hook(lambda m, i, out: acts.setdefault("x", out))
    try:
        with torch.no_grad():
            shapes.module(torch.from_numpy(shapes_batch(100, 5)[0]))
    finally:
        handle.remove()
    return acts["x"].amax(dim=(2, 3))


@pytest.fixture(scope="module")
def busy_unit(shapes) -> int:
    """The mixed3 unit that responds most, on average: alive from the first step."""
    return int(mixed3_peaks(shapes).mean(0).argmax())


@pytest.fixture(scope="module")
def live_units(shapes) -> list[int]:
    """Four distinct, selective mixed3 units: alive on real drawings, varying most between
    them (some ReLU units never fire, others fire for everything), and not correlated with
    each other (near-duplicate units excite each other as much as themselves)."""
    peaks = mixed3_peaks(shapes)
    variation = peaks.std(0) / (peaks.mean(0) + 1e-6)
    alive = peaks.mean(0) > 0.05
    correlation = torch.corrcoef(peaks.T)
    chosen: list[int] = []
    for unit in torch.argsort(variation, descending=True).tolist():
        if alive[unit] and all(abs(correlation[unit, other]) < 0.5 for other in chosen):
            chosen.append(unit)
    return chosen[:4]


def job(layer: str, unit: int, settings: FeatureVisSettings = QUICK, **extra) -> FeatureVisJob:
    spec = parse_spec("shapes")
    return FeatureVisJob(str(spec), fingerprint(spec), layer, unit, settings=settings, **extra)


def no_hooks(model) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.module.modules())


def test_same_job_twice_gives_identical_pixels(shapes):
    first = render(shapes, [job("mixed3", 3)], CPU)[0]
    second = render(shapes, [job("mixed3", 3)], CPU)[0]
    assert np.array_equal(first.images[0], second.images[0])
    assert first.images[0].shape == (32, 32, 3) and first.images[0].dtype == np.uint8


def test_batch_composition_and_chunking_do_not_change_an_image(shapes):
    # Exactly, to the last bit of the objective: a difference of one rounding (an operation whose
    # sums depend on the batch size, as a 1x1 convolution's do in oneDNN) grows over hundreds
    # of steps into other pixels.
    alone = render(shapes, [job("mixed3", 5)], CPU)[0]
    batch = [job("conv2", 1), job("mixed3", 5), job("mixed4", 7), job("mixed3", 9)]
    together = render(shapes, batch, CPU)
    chunked = render(shapes, batch, CPU, chunk=1)
    assert np.array_equal(together[1].images[0], alone.images[0]) and together[1].values == alone.values
    assert np.array_equal(chunked[1].images[0], alone.images[0]) and chunked[1].values == alone.values
    assert together[1].batch == 2 and chunked[1].batch == 1  # one layer per batch: mixed3:5 and :9


def test_diversity_sets_share_a_batch_without_changing_their_images(shapes):
    # Unit pages ask for a diversity set of every unit shown; one batch for all of them is
    # what makes a cold build fast on a GPU, and must not push one set's images from another's.
    alone = render(shapes, [job("mixed3", 5, diversity=3)], CPU)[0]
    batch = [job("mixed3", 9, diversity=2), job("mixed3", 5, diversity=3), job("mixed3", 7)]
    together = render(shapes, batch, CPU)
    assert together[1].batch == 3
    assert all(np.array_equal(a, b) for a, b in zip(together[1].images, alone.images, strict=True))
    assert together[1].values == alone.values


def test_an_image_is_the_same_on_one_thread_whatever_shares_its_batch(shapes):
    """Ray's tasks run on one thread, and a unit page's diversity set lands in batches of
    different sizes there and in-process: every operation on the images must sum the same
    whatever the batch size (a 1x1 convolution for the colour matrix did not, in oneDNN)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sets = [job("conv2", unit, diversity=4) for unit in range(4)]
        together = render(shapes, sets, CPU)[1]
        alone = render(shapes, sets[1:2], CPU)[0]
    finally:
        torch.set_num_threads(threads)
    assert together.values == alone.values
    assert all(np.array_equal(a, b) for a, b in zip(together.images, alone.images, strict=True))


def test_an_image_excites_its_own_unit_more_than_the_other_units_images(shapes, live_units):
    settings = FeatureVisSettings(steps=256, size=64)
    rendered = render(shapes, [job("mixed3", u, settings) for u in live_units], CPU)
    images = torch.tensor(np.stack([r.images[0] for r in rendered])).permute(0, 3, 1, 2).float() / 255
    acts = {}
    handle = shapes.module.mixed3.register_forward_hook(lambda m, i, out: acts.setdefault("x", out))
    try:
        with torch.no_grad():
            shapes.module(images)
    finally:
        handle.remove()
    response = acts["x"][:, live_units].mean(dim=(2, 3))  # [image, unit]
    for index in range(len(live_units)):
        others = torch.cat([response[:index, index], response[index + 1 :, index]])
        assert response[index, index] > others.max(), response
        # the value the engine reports is what the saved image gets (up to 8-bit rounding)
        assert rendered[index].values[0] == pytest.approx(float(response[index, index]), rel=0.05, abs=1e-3)


def test_hooks_are_removed_and_random_state_kept_also_after_an_error(shapes):
    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_numpy = torch.rand(1), np.random.rand()
    torch.manual_seed(123)
    np.random.seed(123)
    render(shapes, [job("mixed3", 0)], CPU)
    assert no_hooks(shapes)
    assert torch.rand(1) == expected_torch and np.random.rand() == expected_numpy
    with pytest.raises(IndexError):  # a unit past the end fails inside the objective
        render(shapes, [job("conv2", 999)], CPU)
    assert no_hooks(shapes)
    assert all(not p.requires_grad for p in shapes.module.parameters())


def test_forward_pass_stops_at_the_deepest_layer_needed(shapes):
    calls = []
    handle = shapes.module.mixed4.register_forward_hook(lambda *args: calls.append(1))
    try:
        render(shapes, [job("conv2", 0), job("mixed3", 1)], CPU)
        assert calls == []
        render(shapes, [job("mixed4", 0, FeatureVisSettings(steps=3, size=32))], CPU)
        assert len(calls) == 4  # three steps and the final evaluation
    finally:
        handle.remove()


def test_objectives(shapes, busy_unit):
    unit = busy_unit
    settings = FeatureVisSettings(steps=96, size=32, lr=0.1)
    channel, negative, neuron = render(
        shapes,
        [
            job("mixed3", unit, settings),
            job("mixed3", unit, settings, objective="negative"),
            job("mixed3", unit, settings, objective="neuron"),
        ],
        CPU,
    )
    assert channel.values[0] > 0
    assert -negative.values[0] < 0.1 * channel.values[0]  # the unit pushed down to ReLU's floor
    # the centre neuron alone: a different image (its value is often 0 on small images, where
    # the centre sees the convolutions' zero padding the optimization never saw)
    assert neuron.values[0] >= 0 and not np.array_equal(neuron.images[0], channel.images[0])
    direction = [0.0] * 64
    direction[unit] = 1.0
    (towards,) = render(
        shapes, [job("mixed3", -1, settings, objective="direction", direction=tuple(direction))], CPU
    )
    assert 0 < towards.values[0] <= 1  # a cosine similarity


def test_diversity_gives_several_different_images_of_one_unit(shapes, live_units):
    (diverse,) = render(shapes, [job("mixed3", live_units[0], diversity=3)], CPU)
    assert len(diverse.images) == 3 and len(diverse.values) == 3
    assert not np.array_equal(diverse.images[0], diverse.images[1])


def test_settings_change_the_image(shapes):
    base = render(shapes, [job("mixed3", 2)], CPU)[0].images[0]
    for changed in (
        FeatureVisSettings(steps=12, size=32, seed=1),
        FeatureVisSettings(steps=12, size=32, lr=0.01),
        FeatureVisSettings(steps=12, size=32, fft=False),
        FeatureVisSettings(steps=12, size=32, decorrelate=False),
        FeatureVisSettings(steps=12, size=32, transforms="none"),
    ):
        assert not np.array_equal(render(shapes, [job("mixed3", 2, changed)], CPU)[0].images[0], base)


def test_device_names():
    from distillgen.engine.device import DeviceError, resolve_device

    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            resolve_device("cuda:0")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_renders_close_to_cpu(shapes):
    gpu = render(shapes, [job("mixed3", 3)], torch.device("cuda"))[0]
    cpu = render(shapes, [job("mixed3", 3)], CPU)[0]
    shapes.module.to(CPU)
    assert gpu.values[0] == pytest.approx(cpu.values[0], rel=0.1)


def test_a_diversity_set_of_one_image_is_one_image(shapes):
    # An atlas or an article may ask for diversity 1: nothing to differ from, no error.
    rendered = render(shapes, [job("mixed3", 2, diversity=1)], CPU)[0]
    assert len(rendered.images) == 1


def test_the_standard_transforms_are_lucents_with_whole_pixel_shifts():
    """engine/transforms.py draws what lucent's standard transforms draw, in the same order,
    and gives the same output size and nearly the same pixels (lucent's kornia translations
    resample by a hair over a whole pixel; these shift exactly)."""
    import warnings

    from distillgen.engine.transforms import standard

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lucent.optvis import transform

    torch.manual_seed(0)
    images = torch.rand(2, 3, 40, 40)
    differences = []
    for seed in range(12):
        np.random.seed(seed)
        theirs = transform.compose(transform.standard_transforms)(images)
        after_theirs = np.random.random()
        np.random.seed(seed)
        ours = standard(images)
        assert np.random.random() == after_theirs  # the same draws from numpy's generator
        assert ours.shape == theirs.shape
        differences.append(float((ours - theirs).abs().mean()))
    assert max(differences) < 0.06  # the grey border's edge moves by a pixel where lucent blurs it
    assert np.median(differences) < 0.03


def test_units_silent_on_grey_still_get_an_image(shapes):
    """Four of the shapes network's first eight mixed3 units are silent on a grey image: only
    the transforms' blur at the image's border gives them a first gradient. Composing the
    transforms into one resampling removed it and left them at zero."""
    silent = [2, 3, 4, 6]
    with torch.no_grad(), capture(shapes.module, ["mixed3"]) as outputs:
        run(shapes.module, torch.full((1, 3, 64, 64), 0.5), outputs)
        assert outputs["mixed3"][0, silent].amax().item() == 0.0  # the premise: nothing on grey
    settings = FeatureVisSettings(steps=128, size=64)
    rendered = render(shapes, [job("mixed3", unit, settings) for unit in silent], CPU)
    assert all(r.values[0] > 1.0 for r in rendered), [r.values[0] for r in rendered]


# The allocator's settings last for the process, so each case runs in a fresh one, with
# transparent huge pages off (a 64 MiB block faulted in 2 MiB at a time hides the count).
_MEMORY_CASE = """
import ctypes, resource, sys, torch
from distillgen.engine import memory
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE
def resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()
def blocks_faulted(steps: int = 10) -> float:
    \"\"\"A 64 MiB block allocated and freed `steps` times, as an engine's steps do (after as
    many for the heap to settle): how many blocks' worth of pages were faulted in.\"\"\"
    for _ in range(steps):
        torch.ones(16 * 1024**2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        torch.ones(16 * 1024**2)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) * resource.getpagesize() / 64 / 1024**2
if sys.argv[1] == "steps":
    before = blocks_faulted()
    with memory.reusing_memory():
        print(before, blocks_faulted())
else:  # four 96 MiB blocks used and freed inside, then the resident memory after
    before = resident()
    with memory.reusing_memory():
        blocks = [torch.ones(24 * 1024**2) for _ in range(4)]
        del blocks
        kept = resident() - before
    print(kept / 1024**2, (resident() - before) / 1024**2)
"""


def _memory_case(case: str) -> list[float]:
    import os
    import subprocess
    import sys

    # as glibc has it: no malloc settings of the environment's, no huge pages asked of torch
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "THP_"))}
    ran = subprocess.run(
        [sys.executable, "-c", _MEMORY_CASE, case], capture_output=True, text=True, timeout=120, env=env
    )
    assert ran.returncode == 0, ran.stderr
    return [float(value) for value in ran.stdout.split()]


def _glibc_version() -> tuple[int, ...]:
    from distillgen.engine.memory import _glibc

    libc = _glibc()
    if libc is None:
        return ()
    libc.gnu_get_libc_version.restype = __import__("ctypes").c_char_p
    return tuple(int(part) for part in libc.gnu_get_libc_version().decode().split(".")[:2])


# before 2.35, glibc maps every block over 32 MiB on its own whatever it is told
glibc_2_35 = pytest.mark.skipif(_glibc_version() < (2, 35), reason="glibc 2.35 or later only")


@glibc_2_35
def test_an_engine_step_reuses_the_memory_the_step_before_freed():
    before, inside = _memory_case("steps")
    assert before >= 9  # malloc's defaults: every step's block is a fresh mapping, faulted in
    assert inside <= 1


@glibc_2_35
def test_memory_kept_for_the_engine_is_handed_back_after_it():
    kept, after = _memory_case("handback")
    assert kept >= 300  # 384 MiB freed, but kept for the next step
    assert after <= 64  # serve and Ray workers live on: they do not hold it


def test_the_engine_runs_jobs_reusing_freed_memory(shapes, monkeypatch):
    from distillgen.engine import memory, run_jobs

    calls = []
    monkeypatch.setattr(memory, "keep_freed_memory", lambda: calls.append("kept"))
    monkeypatch.setattr(memory, "give_back_freed_memory", lambda: calls.append("given back"))
    run_jobs(shapes, [job("mixed3", 1, FeatureVisSettings(steps=2, size=32))], CPU, lambda n: None, None)
    assert calls == ["kept", "given back"]
