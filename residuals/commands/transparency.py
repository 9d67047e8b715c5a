"""``residuals transparency summary``: the public summary of training content.

Rule: this module only parses flags, calls
:func:`residuals.workflows.transparency.transparency_summary` and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def summary(
    data: Annotated[Path, typer.Option("--data", help="Data directory with clips.parquet.")],
    provider: Annotated[Path, typer.Option(
        "--provider", help="provider.toml: [provider] name, [model] name and version.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the JSON and HTML files.")],
) -> None:
    """Write the summary as JSON and HTML, following the Commission's July 2025 template."""
    from residuals.workflows.transparency import transparency_summary

    res = transparency_summary(data, provider, out)
    general = res.summary["general_information"]
    video = general["modalities"][0]
    typer.echo(f"{res.json_path}\n{res.html_path}")
    typer.echo(f"video: {video['items']} clips, {video['hours']} hours ({video['size_band']}); "
               f"latest acquisition {general['latest_acquisition_date']}")


def register(app: typer.Typer) -> None:
    """Add the ``transparency`` command group to the ``residuals`` app."""
    group = typer.Typer(help="Public transparency documents.", no_args_is_help=True)
    group.command("summary")(summary)
    app.add_typer(group, name="transparency")
