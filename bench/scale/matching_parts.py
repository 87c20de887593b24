"""The register matched in parts (``matching.parts``): time, peak memory and distance to the truth per part size.

    PYTHONPATH=. .venv/bin/python bench/scale/matching_parts.py --data ROOT [--register FILE]
        [--parts 0 0@1 300000 600000] [--wave 2024] [--truth FILE]

On a finished run's data root (its harmonised register and latest donors), each entry of ``--parts``
runs in a fresh process: ``N`` fuses the register in parts of at least N persons as the
``matched_dataset`` step does (``fuse_in_parts`` on the stored register, each part appended to a
staged Parquet table as it comes), ``0`` fuses it whole as the step did before (``fuse_sources`` on
the register read whole); ``@S`` sets the fusion seed (default 0). Printed per entry: seconds, the
resident set once the inputs are read, the peak (``ru_maxrss``: the kernel's, exact), the parts.
``--register`` fuses another stored register wave (e.g. a larger demo's harmonised register) with
the root's donors, for the memory alone.

Then, with the demo's truth of the register (``ROOT/truth/population_<wave>.parquet``, or
``--truth``), every register × survey and survey × survey table of ``bench/release/truth.py`` is
scored on each matched file: the total variation distance to the truth's table, mean and worst.
Two whole fusions of different seeds give the seed's own noise.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def resident_mib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))


def _child(root: Path, register_file: Path, wave: str, entry: str, output: Path) -> None:
    from synth_assets.catalog import load_catalog
    from synth_assets.common.frames import ParquetStack, ParquetTable
    from synth_assets.common.memory import release_free_memory
    from synth_assets.matching.parts import fuse_in_parts
    from synth_assets.matching.sources import fuse_sources

    persons, _, seed = entry.partition("@")
    part_persons, fusion_seed = int(persons), int(seed or 0)
    catalog = load_catalog(root / "catalog.yaml")
    surveys = {}
    for name in catalog.surveys:
        latest = sorted((root / f"warehouse/donor_{name}").glob("*.parquet"))[-1]
        surveys[name] = (latest.stem, ParquetTable(latest).read())
    register = ParquetTable(register_file)
    if part_persons == 0:
        register = register.read()
    release_free_memory()
    base = resident_mib()
    started = time.perf_counter()
    stack = ParquetStack(output.parent)
    if part_persons == 0:
        matched, _ = fuse_sources(catalog, register, surveys, seed=fusion_seed, processes=1)
        stack.append(matched)
        parts = 1
        del matched
    else:
        parts = 0
        for matched, _ in fuse_in_parts(catalog, register, surveys, part_persons=part_persons, seed=fusion_seed,
                                        processes=1):
            stack.append(matched)
            parts += 1
            del matched
    staged = stack.finish()
    shutil.move(staged.path, output)
    staged.moved_to(output)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps({"seconds": seconds, "base": base, "peak": peak, "parts": parts}))


def _scores(truth_file: Path, catalog_file: Path, matched: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Mean and worst TVD to the truth of the register × survey and survey × survey tables, per file."""
    import pandas as pd

    from bench.release.truth import _survey_group, encode, tables_from, variables_from
    from synth_assets.catalog import load_catalog
    from synth_assets.common.distances import total_variation

    truth = pd.read_parquet(truth_file)
    variables = variables_from(load_catalog(catalog_file), truth)
    tables = [t for t in tables_from(variables) if _survey_group(t.kind) in ("register × survey", "survey × survey")]
    coded = encode(truth, variables)
    reference = [coded.distribution(t) for t in tables]
    del truth, coded
    out = {}
    for entry, path in matched.items():
        frame = encode(pd.read_parquet(path), variables)
        tvd = pd.Series([total_variation(frame.distribution(t), r) for t, r in zip(tables, reference, strict=True)])
        groups = pd.Series([_survey_group(t.kind) for t in tables])
        out[entry] = {f"{g} {stat}": float(getattr(tvd[groups == g], stat)())
                      for g in ("register × survey", "survey × survey") for stat in ("mean", "max")}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--register", type=Path, default=None)
    parser.add_argument("--parts", nargs="+", default=["0", "0@1", "300000"])
    parser.add_argument("--wave", default="2024")
    parser.add_argument("--truth", type=Path, default=None)
    parser.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = args.data.resolve()
    register = (args.register or root / "warehouse/harmonised_register" / f"{args.wave}.parquet").resolve()
    if args.child:
        _child(root, Path(args.child[0]), args.wave, args.child[1], Path(args.child[2]))
        return 0
    truth = args.truth or (root / "truth" / f"population_{args.wave}.parquet" if args.register is None else None)
    print(f"register: {register}\n\n| parts of | seed | s | inputs read MiB | peak MiB | parts |\n|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="matching-parts-") as work:
        files = {}
        for entry in args.parts:
            files[entry] = Path(work) / f"matched_{entry.replace('@', '_')}.parquet"
            done = subprocess.run([sys.executable, __file__, "--data", str(root), "--wave", args.wave,
                                   "--child", str(register), entry, str(files[entry])],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return done.returncode
            r = json.loads(done.stdout.strip().splitlines()[-1])
            persons, _, seed = entry.partition("@")
            print(f"| {'whole' if persons == '0' else f'{int(persons):,}'} | {seed or 0} | {r['seconds']:.1f} | "
                  f"{r['base']:,} | {r['peak']:,} | {r['parts']} |", flush=True)
        if truth is not None and truth.exists():
            scores = _scores(truth, root / "catalog.yaml", files)
            columns = list(next(iter(scores.values())))
            print("\nTVD to the truth\n\n| parts of | seed | " + " | ".join(columns) + " |\n|---|---|"
                  + "---|" * len(columns))
            for entry, row in scores.items():
                persons, _, seed = entry.partition("@")
                print(f"| {'whole' if persons == '0' else f'{int(persons):,}'} | {seed or 0} | "
                      + " | ".join(f"{row[c]:.4f}" for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    raise SystemExit(main())
