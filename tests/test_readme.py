"""README promises: exactly two set-up-and-run commands, and CI runs the README's test command verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bash_blocks():
    return re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_exactly_two_commands_suite_and_tests():
    blocks = [b.strip() for b in bash_blocks()]
    assert len(blocks) == 2 and all("\n" not in b for b in blocks)
    suite, tests = blocks
    assert "python -m experiments.suite --preset=quick --workdir=runs/quick" in suite
    assert tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command():
    ci_lines = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert bash_blocks()[1].strip() in ci_lines
    assert any("JGEN_DATA_DIR" in l and "shared/data" in l for l in ci_lines)


def test_every_experiment_in_the_readme_is_registered():
    from experiments.suite import REGISTRY

    listed = set(re.findall(r"`experiments\.(\w+)`", (ROOT / "README.md").read_text()))
    assert listed == set(REGISTRY)
