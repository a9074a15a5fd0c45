"""The README's config table is the one the schema prints."""

from pathlib import Path

from trtcompile.config import markdown_table


def test_readme_config_table_matches_schema():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert markdown_table() in readme
