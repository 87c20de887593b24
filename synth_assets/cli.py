"""``synth-assets``: the library's commands, usable without Dagster (and one that runs it)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from synth_assets.common.cli_args import OneLineParser, fail, int_range, positive_float, positive_int
from synth_assets.common.settings import quiet_telemetry


def _deployment(data: str | None):
    """The deployment of the environment (``defs/deployment.py``), with ``--data`` as data root."""
    import dataclasses
    from pathlib import Path

    from synth_assets.defs.deployment import Deployment

    deployment = Deployment.from_environment()
    return dataclasses.replace(deployment, data_root=Path(data)) if data else deployment


def _add_run_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run the whole pipeline headless on the files in data/incoming (the main job)"
    )
    parser.add_argument("--data", default=None, help="data root holding catalog.yaml (default: data/)")
    from synth_assets.demo.generate import MAX_PERSONS, MIN_PERSONS
    from synth_assets.operations.sizing import STEP_PROCESSES_FROM_PERSONS
    from synth_assets.synthesis.families import FAMILIES

    parser.add_argument("--demo-persons", type=int_range(MIN_PERSONS, MAX_PERSONS), default=None,
                        help="first generate the demo population with this many persons")
    parser.add_argument("--family", choices=FAMILIES, default=None, help="model family (= --set model.family=...)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="= --set model.epochs=...")
    parser.add_argument("--max-seconds", type=positive_float, default=None,
                        help="training time budget (= --set model.max_seconds=...)")
    parser.add_argument("--replicates", type=int_range(1, 100), default=None, help="= --set fictitious.replicates=...")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a step's option, repeatable: model.family=cart, model.params.min_leaf=50, "
                             "release.disclosure.k=5, validation.max_rows=5000, ... "
                             "(an unknown key lists the valid ones)")
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="the full Dagster log instead of one line per stage")
    parser.add_argument("--config", default=None, metavar="RUN.YAML",
                        help="settings from a YAML file (model: {family: cart}, ...); --set and the flags win")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--step-processes", action="store_true", default=None,
                       help="each release step in a process of its own (the deployment's executor, as a run launched "
                            "from the UI: population-sized steps one at a time), not all in this one; the ingest runs "
                            "in processes of their own, the register's beside the surveys'. Default: so from a register of "
                            f"{STEP_PROCESSES_FROM_PERSONS:,} persons (its largest delivered wave)")
    where.add_argument("--in-process", dest="step_processes", action="store_false",
                       help="every step in this process, whatever the register's size")


def _run(args: argparse.Namespace) -> int:
    import time

    started = time.monotonic()
    import dagster as dg

    from synth_assets.catalog import CatalogError, load_catalog
    from synth_assets.defs.definitions import build_definitions
    from synth_assets.operations.progress import Progress
    from synth_assets.operations.runner import (
        Interrupted,
        MissingSourceError,
        StepProcesses,
        recover_dead_runs,
        run_pipeline,
        run_until_signal,
    )
    from synth_assets.operations.settings import (
        SettingsError,
        parse_assignments,
        read_settings_file,
        release_options,
        release_run_config,
    )
    from synth_assets.operations.sizing import STEP_PROCESSES_FROM_PERSONS, largest_register_wave

    # Refused before any work, so a typo costs no ingest and leaves the data root as it was:
    # the settings (typed by the steps' own configs), then the catalog.
    flags = {"model.family": args.family, "model.epochs": args.epochs, "model.max_seconds": args.max_seconds,
             "fictitious.replicates": args.replicates}
    try:
        settings = read_settings_file(args.config) if args.config else {}
        settings.update(parse_assignments(args.settings))
        settings.update({k: v for k, v in flags.items() if v is not None})
        config = release_run_config(settings)
        options = release_options(settings)
    except SettingsError as exc:
        return fail(str(exc))
    deployment = _deployment(args.data)
    layout = deployment.layout
    if args.demo_persons:
        from synth_assets.demo import generate_demo

        generate_demo(layout.root, persons=args.demo_persons)
    try:
        catalog = load_catalog(layout.catalog)
    except CatalogError as exc:
        print(f"error: {exc}\nNo release was published; data/public was left as it was.", file=sys.stderr)
        return 2
    try:
        catalog = catalog.with_release_options(options)
    except ValueError as exc:  # a stratum or quasi-identifier the catalog does not have
        return fail(f"setting {exc} ({layout.catalog})")
    defs = build_definitions(deployment=deployment, release_options=options)
    step_processes = args.step_processes
    if step_processes is None:
        persons = largest_register_wave(catalog, layout.incoming)
        step_processes = persons is not None and persons >= STEP_PROCESSES_FROM_PERSONS
        if step_processes:
            print(f"A register of {persons:,} persons: each release step in a process of its own, population-sized "
                  "steps one at a time (--in-process: all in this one)")
    processes = StepProcesses(str(layout.root), options) if step_processes else None
    with dg.DagsterInstance.get() as instance:
        for note in recover_dead_runs(instance):
            print(f"[RECOVERED] {note}")
        try:
            outcome = run_until_signal(
                lambda stop: run_pipeline(defs, catalog, layout, instance, release_config=config, stop=stop,
                                         progress=None if args.verbose else Progress(start=started),
                                         processes=processes),
                instance,
            )
        except MissingSourceError as exc:
            print(f"error: {exc}\nNo release was published; data/public was left as it was.", file=sys.stderr)
            return 1
        except Interrupted as exc:
            print(f"\n{exc}\nNo release was published by the interrupted run; data/public was left as it was.",
                  file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            # The pipeline thread may be inside a step; nothing it does from here on counts
            # (its run is canceled), so end the process now rather than wait for the step.
            os._exit(128 + exc.signum)
    failed = [r for r in outcome.runs if not r.released]
    if failed:
        # Repeated at the end, where a reader of a long log looks first.
        print(f"\n{len(failed)} run(s) failed:")
        for run in failed:
            print(f"  {run.job} {run.partition}:" + "".join(f"\n    {f}" for f in run.failures or ["(no message)"]))
    if outcome.release is None:
        print("\nNo release was published: see the failures above. data/public was left as it was.")
        return 1
    for run in outcome.fallbacks:  # released by the fallback family: said where the paths are
        print(f"\nThe gate refused the release of wave {run.partition} (run {run.run_id[:8]}); the fallback "
              f"family released it (run {run.fallback.run_id[:8]}: {run.fallback.job}). Refused by:"  # type: ignore[union-attr]
              + "".join(f"\n  {r}" for r in run.refused_by))
    print(f"\nPublic fictitious dataset: {outcome.release}")
    print(f"Validation report:         {outcome.report}")
    print(f"Data card:                 {outcome.release / 'data_card.md'}")
    from synth_assets.common.expectations import DataDocs

    print(f"Great Expectations docs:   {DataDocs(layout.reports / 'data_docs').index}")
    # A release built from the waves that did pass is still a run with failures: exit non-zero,
    # so schedulers and CI do not take a refused delivery for a clean run.
    return 1 if failed else 0


def _add_audit_parser(subparsers) -> None:
    parser = subparsers.add_parser("audit", help="the full lineage of a public release (lineage.json, lineage.html)")
    parser.add_argument("--release", required=True, help="release name under data/public, or 'latest'")
    parser.add_argument("--output", required=True, help="folder for lineage.json and lineage.html")
    parser.add_argument("--data", default=None, help="data root holding catalog.yaml (default: data/)")


def _audit(args: argparse.Namespace) -> int:
    import dagster as dg

    from synth_assets.audit import write_lineage
    from synth_assets.catalog import load_catalog
    from synth_assets.defs.definitions import build_definitions
    from synth_assets.operations.lineage import AuditError, collect_lineage
    from synth_assets.publication import latest_release

    deployment = _deployment(args.data)
    layout = deployment.layout
    release = args.release
    if release == "latest":
        latest = latest_release(layout.public)
        if latest is None:
            print(f"error: no release under {layout.public}", file=sys.stderr)
            return 2
        release = latest.name
    with dg.DagsterInstance.get() as instance:
        try:
            lineage = collect_lineage(instance, build_definitions(deployment=deployment), load_catalog(layout.catalog),
                                      layout, release)
        except AuditError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    json_path, html_path = write_lineage(lineage, args.output)
    verdict = "no raw or matched record in the release" if lineage.copy_test.get("passed") else "COPIES FOUND"
    print(f"{verdict}\nlineage: {json_path}\n         {html_path}")
    return 0 if lineage.copy_test.get("passed") else 1


def _library_commands() -> dict:
    """Each library package registers its own subcommand: name -> its CLI module."""
    from synth_assets.demo import cli as demo_cli
    from synth_assets.inference import cli as inference_cli
    from synth_assets.matching import cli as matching_cli
    from synth_assets.synthesis import cli as synthesis_cli
    from synth_assets.validation import cli as validation_cli
    from synth_assets.validation import compare_cli

    return {"demo-data": demo_cli, "fuse": matching_cli, "synthesize": synthesis_cli, "evaluate": validation_cli, "compare": compare_cli,
            "analyse": inference_cli}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="synth-assets", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging; for run, the full Dagster log instead of one line per stage")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in _library_commands().values():
        module.add_parser(subparsers)
    _add_run_parser(subparsers)
    _add_audit_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    quiet_telemetry()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a refused argument (one line on stderr, status 2), or --help
        return exc.code if isinstance(exc.code, int) else 2
    if args.command not in ("run", "audit"):  # under Dagster, library logs reach the run log through dagster.yaml
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "run":
        return _run(args)
    if args.command == "audit":
        return _audit(args)
    return _library_commands()[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
