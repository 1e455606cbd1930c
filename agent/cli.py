"""The ``amodal-agent`` command line: thin wrappers over the Python API."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Turn a photo into a layered, editable SVG of complete (amodal) objects.")


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"amodal-agent {version('amodal-agent')}")
        except PackageNotFoundError:
            typer.echo("amodal-agent (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit."),
) -> None:
    """amodal-agent command line."""


def main() -> None:
    app()
