"""The README's quickstart runs as written, and its two set-up commands are the ones CI uses."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_quickstart_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "the README has a python quickstart"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block.replace("/tmp/model.safetensors", str(tmp_path / "model.safetensors")),
                     "README.md", "exec"), {})


def test_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)
    setup = [c for c in commands if c.startswith("pip install")]
    assert len(setup) == 2
    assert "examples/mnist1d.py" in setup[0]
    assert setup[1] in (ROOT / ".ci" / "run").read_text()
