"""The README's data table names exactly the folders and files the builders read."""

import re
from pathlib import Path

from jgen.data import builders

README = Path(__file__).resolve().parents[1] / "README.md"


def _data_table() -> dict[str, list[str]]:
    """`| dataset | files | used by |` rows of the README's Data section: folder -> file names in backticks."""
    section = README.read_text().split("\n## Data\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table = {}
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 3:
            continue
        (folder,) = re.findall(r"`([^`]+)`", cells[0])
        table[folder] = re.findall(r"`([^`]+)`", cells[1])
    return table


def test_every_builder_has_a_row_under_its_raw_folder():
    table = _data_table()
    assert sorted(table) == sorted(b.RAW_SUBDIR for b in builders.BUILDERS.values())


def test_every_file_the_readme_names_is_one_the_builder_reads_and_none_is_left_out():
    table = _data_table()
    for b in builders.BUILDERS.values():
        named = table[b.RAW_SUBDIR]
        accepted = {n for f in b.RAW_FILES for n in f.names}
        assert set(named) <= accepted, (b.RAW_SUBDIR, sorted(set(named) - accepted), sorted(accepted))
        for f in b.RAW_FILES:  # every file the builder needs appears under one of its accepted names
            assert set(f.names) & set(named), (b.RAW_SUBDIR, f.describe())
