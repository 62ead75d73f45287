"""``cxm text analyze`` and ``cxm text evaluate`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cxm.cli import app

runner = CliRunner()

TEXTS = [
    "The delivery was late again and the courier was rude",
    "late delivery, parcel came a week late",
    "delivery arrived late and damaged",
    "Thanks, the refund came quickly",
    "refund received, great service",
    "still waiting for my refund",
]


def test_analyze_json(tmp_path: Path) -> None:
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(TEXTS[:3]) + "\n\n" + "\n".join(TEXTS[3:]) + "\n",
                    encoding="utf-8")
    result = runner.invoke(app, ["text", "analyze", str(path), "--json", "--max-themes", "2"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [row["line"] for row in data["results"]] == [1, 2, 3, 5, 6, 7]  # blank line skipped
    for row in data["results"]:
        assert row["sentiment"] in {"positive", "neutral", "negative"}
        assert -1 <= row["score"] <= 1
        assert isinstance(row["emotion"], str) and isinstance(row["themes"], list)
    assert 1 <= len(data["themes"]) <= 2
    assert data["results"][0]["sentiment"] == "negative"
    # data["results"][4] ("refund received, great service") was positive with the sparse-only
    # model and is neutral with format 2: pinned in test_sentiment.py as a strict xfail.


def test_analyze_table(tmp_path: Path) -> None:
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(TEXTS), encoding="utf-8")
    result = runner.invoke(app, ["text", "analyze", str(path)])
    assert result.exit_code == 0, result.output
    assert "sentiment" in result.stdout and "negative" in result.stdout


def test_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["text", "analyze", str(tmp_path / "nope.txt")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_undecodable_file_and_encoding_option(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("fine\ncaf\xe9 was great\n".encode("latin-1"))
    result = runner.invoke(app, ["text", "analyze", str(path)])
    assert result.exit_code == 2
    assert "cannot decode" in result.output and "line 2" in result.output
    result = runner.invoke(app, ["text", "analyze", str(path), "--encoding", "latin-1",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][1]["text"] == "café was great"
    result = runner.invoke(app, ["text", "analyze", str(path), "--encoding", "nope-8"])
    assert result.exit_code == 2 and "unknown encoding" in result.output


def test_evaluate_missing_data_dir(tmp_path: Path) -> None:
    result = runner.invoke(app, ["text", "evaluate", "--data", str(tmp_path / "absent")])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_cli_text_does_not_import_cli_at_import_time() -> None:
    import ast

    import cxm.cli_text as module

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    top_level = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    assert not any(getattr(node, "module", "") == "cxm.cli" or
                   (getattr(node, "module", "") == "cxm" and
                    any(alias.name == "cli" for alias in node.names))
                   for node in top_level)
