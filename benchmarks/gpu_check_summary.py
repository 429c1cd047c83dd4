"""The verdicts, targets and files of ``benchmarks/gpu_check.sh`` (its last step).

Usage (by the script)::

    python benchmarks/gpu_check_summary.py STEPS_TSV SCRATCH OUT DRY_RUN BUDGET ELAPSED

``STEPS_TSV`` has one line per step: name, kind (preflight, kernels, suite,
bench), exit status (or ``budget``/``skipped``), seconds, limit, log.  Each
step gets a verdict:

- ``PASS``; ``FAIL`` (tests failed, or CUDA kernel tests skipped on a GPU);
- ``MISS`` (a benchmark ran and missed its target: exit 1 with its JSON);
- ``CRASH`` (the process died of a signal before its limit, or pytest reports
  a crashed xdist worker / a fatal Python error): never a missed target;
- ``TIMEOUT`` (ended by the SIGINT at its limit, pytest's summary so far in
  the log; or KILLed after the grace period);
- ``ERROR`` (a script raised, or pytest could not run); ``SKIPPED``.

It prints one table of steps and one of the issue's targets against the
results, writes them as ``summary.md`` and everything as ``summary.json`` in
``OUT``, checks that ``OUT`` holds at most 8 files, and exits 0 only when every
step passed (or skipped) and, on a GPU, every target was met.

Examples
--------
>>> pytest_counts("=== 2 failed, 10 passed, 3 skipped in 4.20s ===")
{'failed': 2, 'passed': 10, 'skipped': 3}
>>> verdict_for("suite", "139", 3, 45, "", {}, dry_run=False)[0]
'CRASH'
"""

from __future__ import annotations

import json
import os
import re
import sys

MAX_FILES = 8
TARGETS = {
    "suite_failures": 0,
    "activation_fraction_of_copy": 0.85,
    "gelu_backward_speedup_vs_plain": 2.0,
    "mlp_step_ratio_vs_torch": 1.10,
    "peak_memory_ratio_vs_torch": 1.0,
    "captured_small_mlp_vs_torch_eager": 0.5,
}
CRASH_MARKERS = ("crashed while running", "Fatal Python error", "Segmentation fault", "core dumped",
                 "node down:", "replacing crashed worker", "CUDA_ERROR_ILLEGAL_ADDRESS",
                 "cudaErrorIllegalAddress")
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")
_SIGNALS = {129: "SIGHUP", 130: "SIGINT", 134: "SIGABRT", 135: "SIGBUS", 136: "SIGFPE", 137: "SIGKILL",
            139: "SIGSEGV", 143: "SIGTERM"}


def pytest_counts(text):
    """Counts from the last pytest summary line in ``text`` (``{}`` if none)."""
    counts = {}
    for line in text.splitlines():
        found = _COUNT.findall(line)
        if found and (" in " in line or line.startswith("=") or "!!" in line):
            counts = {}
            for number, word in found:
                word = "errors" if word.startswith("error") else word
                counts[word] = counts.get(word, 0) + int(number)
    return counts


def step_log(path, name):
    """The part of a (shared) log that belongs to step ``name``."""
    if not path or path == "-" or not os.path.exists(path):
        return ""
    text = open(path, encoding="utf-8", errors="replace").read()
    # The script's own headers ("=== gpu_check NAME (limit ...") start each
    # step; pytest's "=====" lines do not look like them.
    start = text.find(f"=== gpu_check {name} (limit")
    if start < 0:
        start = text.find(f"=== gpu_check {name}:")
    if start < 0:
        return ""
    following = text.find("\n=== gpu_check ", start + 1)
    return text[start:] if following < 0 else text[start:following]


def verdict_for(kind, status, seconds, limit, log, details, dry_run):
    """``(verdict, note)`` for one step."""
    crash = next((marker for marker in CRASH_MARKERS if marker in log), None)
    if status == "skipped":
        return "SKIPPED", "PyTorch with CUDA not available"
    if status == "budget":
        return "TIMEOUT", "not started: the total budget was spent"
    code = int(status)
    if kind == "preflight":
        return ("PASS", "") if code == 0 else ("ERROR", "no usable GPU: every other step skipped")
    if code == 124:
        return "TIMEOUT", f"SIGINT at its {limit}s limit (summary so far in the log)"
    if code == 137 and seconds >= limit:
        return "TIMEOUT", f"KILLed after ignoring SIGINT at its {limit}s limit"
    if code > 128:
        return "CRASH", f"died of {_SIGNALS.get(code, f'signal {code - 128}')} after {seconds}s"
    if crash:
        return "CRASH", f"log says {crash!r}"
    if kind in ("kernels", "suite"):
        counts = pytest_counts(log)
        note = ", ".join(f"{n} {w}" for w, n in counts.items())
        if code == 0:
            if kind == "kernels" and counts.get("skipped") and not dry_run:
                return "FAIL", note + " (a CUDA kernel test that skips on a GPU verified nothing)"
            return "PASS", note
        if code == 1:
            return "FAIL", note
        if code == 5:
            return "FAIL", "no tests collected"
        return "ERROR", f"pytest exit {code} ({'interrupted' if code == 2 else 'internal or usage error'}) {note}"
    # Benchmarks: a JSON result means the script ran to its end.
    if code == 0:
        return ("PASS", "") if details is not None else ("ERROR", "exit 0 but no JSON result")
    if details is not None and code == 1:
        if details.get("agree") is False:
            return "FAIL", "gpugrad and PyTorch disagree (INVALID)"
        return "MISS", "ran, missed a target"
    last = log.strip().splitlines()[-1] if log.strip() else ""
    return "ERROR", f"exit {code}: {last[:160]}"


def _load(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def targets_against_results(steps, details, dry_run):
    """One row per target of the issue (point 5): target, result, status."""
    rows = []

    def add(what, target, result, ok):
        status = "n/a (dry run)" if dry_run else ("PENDING" if ok is None else "PASS" if ok else "MISS")
        rows.append({"target": what, "wanted": target, "result": result, "status": status})

    suite = [s for s in steps if s["kind"] == "suite"]
    failed = sum(s["counts"].get("failed", 0) + s["counts"].get("errors", 0) for s in suite)
    incomplete = [s["step"] for s in suite if s["verdict"] not in ("PASS", "FAIL")]
    result = f"{failed} failed" + (f"; incomplete: {', '.join(incomplete)}" if incomplete else "")
    add("CUDA suite failures", "0", result, (failed == 0 and not incomplete) if suite else None)

    kernels = next((s for s in steps if s["kind"] == "kernels"), None)
    add("every kernel equal to its twin", "all CUDA kernel tests pass",
        kernels["note"] if kernels else "not run", kernels["verdict"] == "PASS" if kernels else None)

    bandwidth = details.get("kernel_bandwidth")
    if bandwidth:
        targeted = [r for r in bandwidth["rows"] if r.get("target_fraction")]
        worst = min(targeted, key=lambda r: r["fraction_of_copy"])
        missed = [f"{r['kernel']} {r['pass']} {r['fraction_of_copy']:.2f}" for r in targeted
                  if r["fraction_of_copy"] < TARGETS["activation_fraction_of_copy"]]
        shown = ", ".join(missed[:6]) + (f" and {len(missed) - 6} more" if len(missed) > 6 else "")
        add("activation kernels vs device-to-device copy", ">= 0.85 of copy bandwidth",
            f"lowest {worst['kernel']} {worst['pass']} {worst['fraction_of_copy']:.2f}"
            + (f"; {len(missed)} of {len(targeted)} below: {shown}" if missed else ""), not missed)
        gelu = next(r for r in bandwidth["rows"] if r["kernel"] == "gelu" and r["pass"] == "backward")
        speedup = gelu["speedup_vs_plain"]
        add("gelu backward vs plain CuPy ops", ">= 2x faster", f"{speedup:.2f}x",
            speedup >= TARGETS["gelu_backward_speedup_vs_plain"])
    else:
        add("activation kernels vs device-to-device copy", ">= 0.85 of copy bandwidth", "not measured", None)
        add("gelu backward vs plain CuPy ops", ">= 2x faster", "not measured", None)

    for key, what in (("gpu_train_step", "MLP step"), ("gpu_train_mnist1d", "MNIST-1D main job (MLP)")):
        train = details.get(key)
        if not train:
            add(f"{what} time vs PyTorch eager", "<= 1.10x" if key == "gpu_train_step" else "reported",
                "not measured", None)
            continue
        torch_row, gg_row = train["rows"][0], train["rows"][1]
        ratio = gg_row["ratio"]
        extra = ""
        if "test_accuracy" in gg_row:
            extra = f"; test accuracy {gg_row['test_accuracy']:.3f} vs PyTorch {torch_row['test_accuracy']:.3f}"
        is_step = key == "gpu_train_step"
        add(f"{what} time vs PyTorch eager", "<= 1.10x" if is_step else "reported",
            f"{ratio:.2f}x ({gg_row['ms_per_step']:.2f} vs {torch_row['ms_per_step']:.2f} ms/step){extra}",
            (ratio <= TARGETS["mlp_step_ratio_vs_torch"]) if is_step else True)
        ours, theirs = gg_row.get("peak_bytes_beyond_start"), torch_row.get("peak_bytes_beyond_start")
        if ours is None or theirs is None:
            add(f"{what} peak memory vs PyTorch", "<= PyTorch's" if is_step else "reported", "not measured",
                None)
        else:
            add(f"{what} peak memory vs PyTorch", "<= PyTorch's" if is_step else "reported",
                f"{ours / 2**20:.1f} vs {theirs / 2**20:.1f} MiB",
                (ours <= theirs * TARGETS["peak_memory_ratio_vs_torch"]) if is_step else True)

    graph = details.get("gpu_graph_step")
    for model, wanted in (("small MLP", "<= 0.5x"), ("MNIST-1D MLP", "reported")):
        what = f"captured {model} step vs PyTorch eager"
        rows_of = {m["model"]: m for m in graph["models"]} if graph else {}
        found = rows_of.get(model)
        captured = next((r for r in found["rows"] if r["participant"] == "gpugrad captured"), None) if found else None
        if captured is None or captured["vs_torch_eager"] is None:
            add(what, wanted, "not measured" if not found else "not measured (needs CUDA)", None)
            continue
        by_name = {r["participant"]: r for r in found["rows"]}
        torch_graph = by_name["pytorch graph"]["ms_per_step"]
        result = (f"{captured['vs_torch_eager']:.2f}x ({captured['ms_per_step']:.3f} ms; eager "
                  f"{by_name['gpugrad eager']['ms_per_step']:.3f}, PyTorch eager "
                  f"{by_name['pytorch eager']['ms_per_step']:.3f}"
                  + (f", PyTorch graph {torch_graph:.3f}" if torch_graph is not None else "") + " ms)")
        ok = found["agree"] and (captured["vs_torch_eager"] <= TARGETS["captured_small_mlp_vs_torch_eager"]
                                 if model == "small MLP" else True)
        add(what, wanted, result + ("" if found["agree"] else "; INVALID: replay or losses disagree"), ok)
    return rows


def markdown(steps, targets, header):
    lines = [f"# gpu_check: {header}", "", "| step | verdict | seconds | limit | note |", "|---|---|---|---|---|"]
    lines += [f"| {s['step']} | {s['verdict']} | {s['seconds']} | {s['limit']} | {s['note']} |" for s in steps]
    lines += ["", "| target | wanted | result | status |", "|---|---|---|---|"]
    lines += [f"| {t['target']} | {t['wanted']} | {t['result']} | {t['status']} |" for t in targets]
    return "\n".join(lines) + "\n"


def main(argv):
    steps_tsv, scratch, out, dry_run, budget, elapsed = argv
    dry_run = dry_run == "1"
    details = {}
    for name in ("kernel_bandwidth", "gpu_train_step", "gpu_graph_step", "gpu_train_mnist1d"):
        loaded = _load(os.path.join(scratch, f"{name}.json"))
        if loaded is not None:
            details[name] = loaded
    result_of = {"bandwidth": "kernel_bandwidth", "train": "gpu_train_step", "graph": "gpu_graph_step",
                 "mnist1d": "gpu_train_mnist1d"}
    steps = []
    for line in open(steps_tsv, encoding="utf-8"):
        name, kind, status, seconds, limit, log = line.rstrip("\n").split("\t")
        text = step_log(log, name)
        verdict, note = verdict_for(kind, status, int(seconds), int(limit), text,
                                    details.get(result_of.get(name, "")), dry_run)
        steps.append({"step": name, "kind": kind, "exit": status, "seconds": int(seconds), "limit": int(limit),
                      "verdict": verdict, "note": note, "counts": pytest_counts(text),
                      "log": os.path.basename(log) if log != "-" else None})
    targets = targets_against_results(steps, details, dry_run)
    preflight_path = os.path.join(scratch, "preflight.txt")
    header = " ".join(open(preflight_path, encoding="utf-8").read().split()) if os.path.exists(preflight_path) else ""
    ok_steps = all(s["verdict"] in ("PASS", "SKIPPED") for s in steps) and bool(steps)
    ok_targets = dry_run or all(t["status"] == "PASS" for t in targets)

    print()
    print(f"{'step':<12}{'verdict':<9}{'seconds':>8}{'limit':>7}  note")
    for s in steps:
        print(f"{s['step']:<12}{s['verdict']:<9}{s['seconds']:>8}{s['limit']:>7}  {s['note']}")
    print()
    print(f"{'target':<46}{'wanted':<28}{'status':<15}result")
    for t in targets:
        print(f"{t['target']:<46}{t['wanted']:<28}{t['status']:<15}{t['result']}")
    print(f"\ntotal {elapsed}s of a {budget}s budget")

    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as handle:
        handle.write(markdown(steps, targets, header))
    summary = {"ok": ok_steps and ok_targets, "dry_run": dry_run, "device": header, "total_seconds": int(elapsed),
               "budget_seconds": int(budget), "steps": steps, "targets": targets, "details": details}
    files = sorted(os.listdir(out)) + ["summary.json"]
    files = sorted(set(files))
    summary["files"] = files
    if len(files) > MAX_FILES:
        summary["ok"] = False
        print(f"gpu_check: {out} holds {len(files)} files, more than {MAX_FILES}: {', '.join(files)}")
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
    print(f"wrote {os.path.join(out, 'summary.json')} and summary.md ({len(files)} files in {out})")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
