"""``cxm text …``: offline sentiment, emotion and themes of texts (no database, no Django)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

# Not imported from cxm.cli: that module registers this one (see cli_privacy.py for why).
console = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="machine-readable output")]

text_app = typer.Typer(help="Sentiment, emotion and themes of texts (offline)",
                       no_args_is_help=True)


def _write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _read_lines(path: Path, encoding: str) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line; exits 2 with a message on any read error."""
    if not path.is_file():
        console.print(f"[red]no such file: {path}[/red]")
        raise typer.Exit(2)
    try:
        raw = path.read_bytes()
        content = raw.decode(encoding)
    except LookupError:
        console.print(f"[red]unknown encoding: {encoding}[/red]")
        raise typer.Exit(2) from None
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        console.print(f"[red]cannot decode {path} as {encoding} (line {line}, byte "
                      f"{error.start}); pass the file's encoding with --encoding[/red]")
        raise typer.Exit(2) from None
    except OSError as error:
        console.print(f"[red]cannot read {path}: {error.strerror}[/red]")
        raise typer.Exit(2) from None
    content = content.removeprefix("\ufeff")  # a BOM is not part of the first text
    return [(number, line.strip()) for number, line in enumerate(content.splitlines(), 1)
            if line.strip()]


@text_app.command("analyze")
def analyze(
    file: Annotated[Path, typer.Argument(help="text file, one text per line")],
    max_themes: Annotated[int, typer.Option(
        "--max-themes", min=0, help="most themes to discover (0: none)")] = 8,
    encoding: Annotated[str, typer.Option(help="the file's text encoding")] = "utf-8",
    as_json: JsonFlag = False,
) -> None:
    """Sentiment, score, emotion and themes of each line of FILE; themes are found in the file."""
    from cxm.text.analyze import analyze_texts
    from cxm.text.themes import discover_themes

    lines = _read_lines(file, encoding)
    texts = [text for _, text in lines]
    themes = discover_themes(texts, max_themes) if max_themes > 0 else []
    results = analyze_texts(texts, themes=themes)
    if as_json:
        _write_json({
            "themes": [theme.as_dict() for theme in themes],
            "results": [dict(result.as_dict(), line=number)
                        for (number, _), result in zip(lines, results, strict=True)],
        })
        return
    out = Console()
    if themes:
        out.print("[bold]Themes[/bold]: " + "; ".join(theme.name for theme in themes))
    table = Table("line", "sentiment", "score", "emotion", "themes", "text")
    for (number, text), result in zip(lines, results, strict=True):
        table.add_row(str(number), result.sentiment, f"{result.score:+.2f}", result.emotion,
                      ", ".join(result.themes), text if len(text) <= 80 else text[:77] + "...")
    out.print(table)


@text_app.command("evaluate")
def evaluate(
    data: Annotated[Path | None, typer.Option(
        help="shared data directory (default: $CXM_SHARED_DATA or ../shared/data)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-run the held-out sentiment evaluation against VADER (needs the test extra)."""
    from cxm.text import evaluate as evaluation
    from cxm.text import train

    data_dir = data if data is not None else train.default_data_dir()
    if not data_dir.is_dir():
        console.print(f"[red]data directory not found: {data_dir}[/red]")
        raise typer.Exit(2)
    try:
        report = evaluation.run_evaluation(data_dir)
    except (RuntimeError, FileNotFoundError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        _write_json(report.as_dict())
    else:
        sys.stdout.write("\n".join(evaluation.markdown_table(report)) + "\n")
