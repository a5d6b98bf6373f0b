"""``validate``, ``init`` and ``schema``: check spec files, scaffold a project, print the spec's schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from impact_assets.cli._main import main
from impact_assets.errors import ImpactAssetsError, SpecError
from impact_assets.settings import ProjectPaths


def _problem(exc: ImpactAssetsError) -> dict:
    return {
        "type": type(exc).__name__,
        "message": exc.message,
        "context": {k: str(v) for k, v in exc.context.items()},
    }


def _checked(files: list[Path], paths: ProjectPaths) -> list[dict]:
    """Load each spec with its SQL; one result per file, errors kept, nothing run or written."""
    from impact_assets.assessment import DUPLICATE_ASSESSMENT, load_assessment

    results: list[dict] = []
    seen: dict[str, Path] = {}
    for file in files:
        try:
            assessment = load_assessment(file, paths)
            if assessment.id in seen:
                raise SpecError(
                    DUPLICATE_ASSESSMENT.format(
                        id=assessment.id, first=seen[assessment.id], second=file
                    ),
                    context={"file": file},
                )
        except ImpactAssetsError as exc:
            results.append({"path": str(file), "valid": False, "error": _problem(exc)})
            continue
        seen[assessment.id] = file
        results.append(
            {
                "path": str(file),
                "valid": True,
                "id": assessment.id,
                "sql_models": list(assessment.sql.order),
                "register_entries": len(assessment.spec.register_entries),
            }
        )
    return results


@main.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path), required=False)
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object with every file's result, for CI and editors.",
)
@click.pass_obj
def validate(paths: ProjectPaths, path: Path | None, output: str) -> None:
    """Check assessment specs and their SQL without running anything (exit code 1 on any error).

    PATH is a spec file or a folder of them (default: the assessments folder). SQL models are read
    from the project's SQL folder.
    """
    from impact_assets.assessment import NO_ASSESSMENTS, spec_files

    target = path or paths.assessments_dir
    files = spec_files(target) if target.is_dir() else [target]
    results = (
        _checked(files, paths)
        if files
        else [
            {
                "path": str(target),
                "valid": False,
                "error": _problem(SpecError(NO_ASSESSMENTS.format(path=target))),
            }
        ]
    )
    valid = all(r["valid"] for r in results)
    if output == "json":
        click.echo(json.dumps({"valid": valid, "results": results}, indent=2))
    else:
        for r in results:
            if r["valid"]:
                click.echo(
                    f"ok     {r['path']}: {r['id']}, {r['register_entries']} register entries, "
                    f"SQL models {' -> '.join(r['sql_models'])}"
                )
            else:
                where = ", ".join(f"{k}={v}" for k, v in r["error"]["context"].items())
                click.echo(
                    f"error  {r['path']}: {r['error']['type']}: {r['error']['message']}"
                    + (f" [{where}]" if where else ""),
                    err=True,
                )
    if not valid:
        sys.exit(1)


@main.command()
@click.argument("name")
@click.option(
    "--from-csv",
    "from_csv",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Scored decisions to assess: copied into data/NAME/, their columns chosen as bindings.",
)
@click.pass_obj
def init(paths: ProjectPaths, name: str, from_csv: Path | None) -> None:
    """Create a project that runs as it is: the assessment NAME (a commented spec and its SQL), its
    data (a sample, or the given CSV), and where missing workspace.yaml, definitions.py and a README.
    """
    from impact_assets._scaffold import scaffold

    try:
        made = scaffold(paths, name, from_csv=from_csv)
    except ImpactAssetsError as exc:
        raise click.ClickException(str(exc)) from None
    for path in made.written:
        click.echo(f"wrote {path}")
    project = (
        "" if paths.project_dir == Path.cwd().resolve() else f" --project-dir {paths.project_dir}"
    )
    click.echo("next:")
    click.echo(f"  impact-assets{project} validate")
    click.echo(
        f"  impact-assets{project} assess --assessment {name} --from {made.first_day} --to {made.last_day}"
    )
    click.echo(f"  impact-assets{project} ui")


@main.command()
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
@click.option(
    "--markdown", is_flag=True, help="The reference of every key as Markdown tables instead."
)
def schema(out_file: Path | None, markdown: bool) -> None:
    """Print the JSON Schema of an assessment spec (for editor completion and validation)."""
    from impact_assets.spec import json_schema, markdown_reference

    text = markdown_reference() if markdown else json.dumps(json_schema(), indent=2) + "\n"
    if out_file is None:
        click.echo(text, nl=False)
    else:
        out_file.write_text(text, encoding="utf-8")
