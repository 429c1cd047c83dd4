"""PyTorch programs run unchanged on gpugrad: each file in tests/pytorch_programs/ is
run in a subprocess under PyTorch and again with ``torch`` aliased to gpugrad (by
``run_as_gpugrad.py``: plain name aliasing, no code translation), and the printed
lines are compared.

The programs draw their starting weights and data with NumPy, so both libraries
start alike; what depends on the random stream (dropout masks, multinomial
samples) is never printed. Each program's output under PyTorch 2.13 is kept in
``tests/pytorch_programs/expected/<name>.txt``, so the gpugrad half is checked
against it even where torch is not installed.

Comparison: words must be equal; numbers must agree to their printed digits,
with a tolerance of one unit in the last printed digit or 1e-5 relative,
whichever is larger. That slack is needed because float32 sums of thousands of
terms (polynomial fits over 2000 points, training losses after dozens of steps)
are accumulated in a different order by NumPy and by PyTorch, and the last
printed digit of a value such as 7680.5049 may flicker.
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROGRAMS_DIR = ROOT / "tests" / "pytorch_programs"
EXPECTED_DIR = PROGRAMS_DIR / "expected"
RUNNER = PROGRAMS_DIR / "run_as_gpugrad.py"
PROGRAMS = sorted(p.stem for p in PROGRAMS_DIR.glob("*.py") if p.name != RUNNER.name)
HAVE_TORCH = importlib.util.find_spec("torch") is not None

# Warnings a program may still print on gpugrad, with the reason; anything else on
# stderr fails. The GAN loop's GraphRetainedWarning is the false alarm of issue 16
# point 4 (two models, two optimizers, alternating steps); remove the entry once the
# fix has landed.
KNOWN_WARNINGS = {
}

# Programs whose gpugrad output still differs from PyTorch's, with what is known; each
# is a strict xfail, so it fails loudly the day it starts to agree (then remove it).
KNOWN_DIFFERENCES = {
}

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def run_program(name, with_gpugrad):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               GPUGRAD_DEVICE="cpu", CUDA_VISIBLE_DEVICES="", PYTHONHASHSEED="0")
    path = PROGRAMS_DIR / f"{name}.py"
    command = [sys.executable, str(RUNNER), str(path)] if with_gpugrad else [sys.executable, str(path)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, (f"{name} ({'gpugrad' if with_gpugrad else 'torch'}) failed:\n"
                                    f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout, result.stderr


def tolerance(text):
    """One unit in the last printed decimal; none for integers (counts, steps, ids)."""
    if "." not in text:
        return 0.0
    decimals = len(re.split("[eE]", text.split(".")[1])[0])
    exponent = int(re.split("[eE]", text)[1]) if re.search("[eE]", text) else 0
    return 1.01 * 10.0 ** (exponent - decimals)


def compare_outputs(got, want, label):
    """Line by line: equal words, numbers within the printed precision (see the module doc)."""
    got_lines, want_lines = got.rstrip("\n").split("\n"), want.rstrip("\n").split("\n")
    assert len(got_lines) == len(want_lines), (
        f"{label}: {len(got_lines)} lines printed, expected {len(want_lines)}\n--- got\n{got}\n--- expected\n{want}")
    for number, (g, w) in enumerate(zip(got_lines, want_lines, strict=True), 1):
        g_numbers, w_numbers = NUMBER.findall(g), NUMBER.findall(w)
        assert NUMBER.sub("#", g) == NUMBER.sub("#", w) and len(g_numbers) == len(w_numbers), (
            f"{label}, line {number}:\n  got      {g!r}\n  expected {w!r}")
        for gn, wn in zip(g_numbers, w_numbers, strict=True):
            allowed = max(tolerance(wn), 1e-5 * abs(float(wn)) if "." in wn else 0.0)
            assert abs(float(gn) - float(wn)) <= allowed, (
                f"{label}, line {number}: {gn} vs {wn} (allowed {allowed:.2g}):\n"
                f"  got      {g!r}\n  expected {w!r}")


def test_there_are_at_least_twenty_programs_each_with_expected_output():
    assert len(PROGRAMS) >= 20, PROGRAMS
    missing = [name for name in PROGRAMS if not (EXPECTED_DIR / f"{name}.txt").exists()]
    assert not missing, f"no expected output for {missing}: run python {__file__} --record under torch"


def test_comparison_is_strict_about_words_and_digits():
    compare_outputs("loss 0.1235\n", "loss 0.1234\n", "self-check")   # one unit in the last digit
    for got in ("loss 0.1236\n", "lost 0.1234\n", "loss 0.1234 0\n", "loss 0.1234\nmore\n"):
        with pytest.raises(AssertionError):
            compare_outputs(got, "loss 0.1234\n", "self-check")
    with pytest.raises(AssertionError):     # integers (counts, ids) must be equal
        compare_outputs("121/128\n", "122/128\n", "self-check")


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_DIFFERENCES[name], strict=True))
    if name in KNOWN_DIFFERENCES else name for name in PROGRAMS])
def test_program_on_gpugrad_prints_what_pytorch_printed(name):
    stdout, stderr = run_program(name, with_gpugrad=True)
    allowed = KNOWN_WARNINGS.get(name)
    unexpected = [line for line in stderr.splitlines()
                  if line.strip() and not (allowed and (allowed in line or line.startswith("  ")))]
    assert not unexpected, f"{name} on gpugrad wrote to stderr:\n{stderr}"
    compare_outputs(stdout, (EXPECTED_DIR / f"{name}.txt").read_text(), f"{name}: gpugrad vs recorded torch")
    if HAVE_TORCH:
        torch_stdout, _ = run_program(name, with_gpugrad=False)
        compare_outputs(stdout, torch_stdout, f"{name}: gpugrad vs torch")


if __name__ == "__main__" and sys.argv[1:2] == ["--record"]:
    # Record what PyTorch prints, the reference the gpugrad half is held to.
    EXPECTED_DIR.mkdir(exist_ok=True)
    for program in sys.argv[2:] or PROGRAMS:
        out, _ = run_program(program, with_gpugrad=False)
        (EXPECTED_DIR / f"{program}.txt").write_text(out)
        print("recorded", program)
