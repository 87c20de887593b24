"""The catalog: what the sources are and how to harmonise them (``data/catalog.yaml``).

Adding a survey is editing the catalog, not the code: the Dagster layer builds one
``raw_<source>`` and one ``harmonised_<source>`` asset per entry of ``sources``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from synth_assets.catalog.rules import rule_problems

VariableType = Literal["category", "integer", "number", "boolean"]
Role = Literal["id", "household_id", "weight", "common", "specific"]
FileFormat = Literal["csv", "parquet", "stata", "spss", "sas"]

#: A wave key: a four-digit year, optionally followed by letters, digits or '_' (2024, 2024q1,
#: 2024_rev). Anything else (``register_-2025``, ``register_final``) is a misnamed file, not a wave.
WAVE_KEY = r"[0-9]{4}[A-Za-z0-9_]*"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class _Strict(BaseModel):
    # Typos in a hand-written YAML file must be errors, not silently ignored keys.
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommonVariable(_Strict):
    """One variable of the common schema X, shared by every source."""

    type: VariableType
    categories: list[str] | None = None
    min: float | None = None
    max: float | None = None
    description: str | None = None
    unit: str | None = None  # e.g. "EUR per year", "years": printed in the public data card

    @model_validator(mode="after")
    def _categories_iff_category(self) -> CommonVariable:
        if self.type == "category" and not self.categories:
            raise ValueError("a category variable needs a non-empty 'categories' list")
        if self.type != "category" and self.categories:
            raise ValueError(f"'categories' given for a variable of type {self.type}")
        return self


class RecordAggregate(_Strict):
    """A person-level variable computed from a record source's episodes or trips.

    Per day of the person: ``sum`` adds ``of`` (a record variable) over the records selected by
    ``where`` (a pandas query on record variables; default all), ``count`` counts them,
    ``share`` divides their count by the day's records (0 on a day without records). Then
    ``per: day`` takes the mean over the person's days, ``per: average_day`` weighs each day
    type by the records' ``day_weights`` (a weekday 5/7, a weekend day 2/7).
    """

    how: Literal["sum", "count", "share"]
    of: str | None = None
    where: str | None = None
    per: Literal["day", "average_day"] = "day"

    @model_validator(mode="after")
    def _of_iff_sum(self) -> RecordAggregate:
        if (self.how == "sum") != (self.of is not None):
            raise ValueError("'of' names the record variable a 'sum' adds, and only a sum")
        return self


class SourceVariable(_Strict):
    """How one harmonised variable is read from a source's raw file (or aggregated from its records)."""

    column: str | None = None  # None only for an ``aggregate``
    role: Role
    type: VariableType | None = None
    categories: list[str] | None = None
    codes: dict[Any, Any] | None = None
    missing_values: list[Any] = Field(default_factory=list)
    special_values: list[Any] = Field(default_factory=list)
    scale: float = 1.0
    min: float | None = None
    max: float | None = None
    # Harmonised value of persons outside the source's universe or the variable's own
    # (e.g. -8 hours, occupation 'none'): the population has a value there, never a null.
    not_applicable: Any = None
    description: str | None = None
    unit: str | None = None
    # The level of a specific variable within its source (default: the source's ``unit``): a
    # person file may repeat household facts (tenure, household income) on every member. A
    # household variable is imputed once per household from one donor household and is
    # identical for every member, in the matched dataset and in the release.
    level: Literal["person", "household"] | None = None
    # Pandas query on harmonised common variables selecting the persons the variable concerns
    # (e.g. "age >= 16" for personal incomes), within the source's universe; others get
    # ``not_applicable``.
    universe: str | None = None
    # A person-level variable of a record source: computed from the person's records, not read.
    aggregate: RecordAggregate | None = None

    @model_validator(mode="after")
    def _column_or_aggregate(self) -> SourceVariable:
        if (self.column is None) == (self.aggregate is None):
            raise ValueError("a variable is read from a 'column' or computed by an 'aggregate' (one of them)")
        if self.aggregate is not None and self.role != "specific":
            raise ValueError(f"an 'aggregate' is a specific variable, not role {self.role!r}")
        return self

    @property
    def raw_column(self) -> str:
        """The delivered column (only for variables read from the file)."""
        if self.column is None:
            raise ValueError("an aggregated variable has no column in the delivered file")
        return self.column


class DayCoverage(_Strict):
    """A diary day's episodes tile the day: from 0 to ``minutes``, each starting where the last ended."""

    start: str
    end: str
    minutes: float = 1440.0


class Records(_Strict):
    """A source whose rows are records of persons' days (diary episodes, trips), not persons.

    Each row carries its person's variables (the source's ``variables`` read from a column),
    the day key ``day_id`` and the record number ``record_id`` within the day (0 or empty: a
    day without records, e.g. a travel day without trips). ``variables`` are the records' own
    (harmonised like a source's: codes, missing values, scale, ranges), ``derived`` adds record
    variables as pandas expressions (``duration: "end - start"``). A day fails its checks when
    its episodes do not cover it (``covers_day``) or a record breaks a ``rules`` query; its
    person's aggregates are then unknown (item non-response, imputed before fusion) and the
    harmonised table's report says how many days failed which check.
    """

    unit: str  # what a row is: "episode", "trip" (reports and data cards)
    day_id: str
    record_id: str
    day_type: str | None = None  # record variable of the day's type (weekday, weekend)
    day_weights: dict[str, float] = Field(default_factory=dict)  # days per week of each day type
    variables: dict[str, SourceVariable]
    derived: dict[str, str] = Field(default_factory=dict)
    covers_day: DayCoverage | None = None
    rules: list[str] = Field(default_factory=list)

    def known(self) -> list[str]:
        return [*self.variables, *self.derived]


class Source(_Strict):
    """One delivered source: the register or a survey, one file per wave."""

    kind: Literal["register", "survey"]
    description: str = ""
    path: str
    format: FileFormat
    read_options: dict[str, Any] = Field(default_factory=dict)
    unit: Literal["person", "household"] = "person"
    # Pandas query on harmonised variables selecting whom a survey speaks for (e.g. the
    # labour force survey covers ages 15-74); other recipients get each specific variable's
    # declared ``not_applicable`` value, not imputations.
    universe: str | None = None
    variables: dict[str, SourceVariable]
    # Delivered columns the catalog leaves out on purpose. A column that is neither here, nor
    # a variable's, nor in the previous delivery is schema drift, and refused at ingest.
    ignored_columns: list[str] = Field(default_factory=list)
    # Rows are episodes or trips of persons' days; the aggregates are the person-level variables.
    records: Records | None = None

    @field_validator("path")
    @classmethod
    def _path_has_wave(cls, path: str) -> str:
        if "{wave}" not in path:
            raise ValueError(f"path {path!r} must contain the placeholder {{wave}}")
        return path

    def raw_columns(self) -> dict[str, str]:
        """Every delivered column the catalog reads -> what it is (harmonised name)."""
        columns = {v.column: name for name, v in self.variables.items() if v.column is not None}
        if self.records is not None:
            columns[self.records.day_id] = "day_id"
            columns[self.records.record_id] = "record_id"
            columns.update({v.raw_column: name for name, v in self.records.variables.items()})
        return columns

    @property
    def aggregates(self) -> dict[str, RecordAggregate]:
        return {name: v.aggregate for name, v in self.variables.items() if v.aggregate is not None}

    def columns_with_role(self, role: Role) -> list[str]:
        return [name for name, v in self.variables.items() if v.role == role]

    def _single(self, role: Role) -> str | None:
        names = self.columns_with_role(role)
        return names[0] if names else None

    @property
    def id_column(self) -> str | None:
        return self._single("id")

    @property
    def household_id_column(self) -> str | None:
        return self._single("household_id")

    @property
    def weight_column(self) -> str | None:
        return self._single("weight")

    @property
    def common(self) -> list[str]:
        return self.columns_with_role("common")

    @property
    def specific(self) -> list[str]:
        return self.columns_with_role("specific")

    def level(self, name: str) -> Literal["person", "household"]:
        """The level of a variable: declared, else the source's unit."""
        return self.variables[name].level or self.unit

    @property
    def household_variables(self) -> list[str]:
        """Specific variables at household level: one value per household, the same for every member."""
        return [name for name in self.specific if self.level(name) == "household"]

    @property
    def person_variables(self) -> list[str]:
        return [name for name in self.specific if self.level(name) == "person"]

    def variable_universe(self, name: str) -> str | None:
        """Whom a specific variable concerns: the source's universe and the variable's own, together."""
        parts = [u for u in (self.universe, self.variables[name].universe) if u]
        if len(parts) > 1:
            return " and ".join(f"({u})" for u in parts)
        return parts[0] if parts else None

    def wave_pattern(self) -> re.Pattern[str]:
        """Regex that recognises this source's files and captures the wave key."""
        head, tail = self.path.split("{wave}", 1)
        return re.compile("^" + re.escape(head) + f"(?P<wave>{WAVE_KEY})" + re.escape(tail) + "$")


class Regression(_Strict):
    kind: Literal["ols", "logit"]
    outcome: str
    predictors: list[str]


class MatchingStep(_Strict):
    """How one survey is fused into the base (defaults: every shared common variable)."""

    method: str = "neural_draw"  # best on the benchmarks (bench/matching/results.md)
    on: list[str] | None = None
    donation_classes: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)


class CalibrationMargin(_Strict):
    """A register table the release must reproduce: persons or households counted over variables.

    ``bands`` cut a numeric variable for this margin alone (the calibration's ``bands`` otherwise).
    """

    unit: Literal["person", "household"]
    variables: list[str]
    bands: dict[str, list[float]] = Field(default_factory=dict)


#: Age bands of the default national margin of ages by sex: 5 years wide, and 18 (adulthood).
NATIONAL_AGE_BANDS = [0.0, 5.0, 10.0, 15.0, 18.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0,
                      75.0, 80.0, 85.0]


def _default_margins() -> list[CalibrationMargin]:
    return [
        CalibrationMargin(unit="person", variables=["municipality", "sex", "age"]),
        # ages by sex nationally in 5-year bands (and 18): within the wide bands above, a model's ages drift
        CalibrationMargin(unit="person", variables=["age", "sex"], bands={"age": NATIONAL_AGE_BANDS}),
        CalibrationMargin(unit="household", variables=["municipality", "household_type", "household_size"]),
    ]


class Calibration(_Strict):
    """Calibration of every replicate to the register (``synth_assets.calibration``).

    ``margins`` are counted in the register (numbers cut by ``bands``; an integer variable
    without bands counts each value); cells of fewer than ``min_cell`` units are merged.
    ``totals`` (default: every numeric, non-integer register variable) add the sum and
    the number of non-zero values. ``tolerances`` are the gate's: a count cell within
    ``persons``/``households`` units or ``count_share`` of its target (the larger), ``total``
    and ``nonzero`` relative. ``surplus`` is how
    many households are generated per household of the register to choose from.
    ``weight_bounds`` keep every household's calibration weight between them (the logit
    distance; ``null``: unbounded raking).
    """

    enabled: bool = True
    margins: list[CalibrationMargin] | None = None  # None: the defaults the register has variables for
    totals: list[str] | None = None
    bands: dict[str, list[float]] = Field(default_factory=lambda: {"age": [0.0, 15.0, 25.0, 45.0, 65.0, 80.0]})
    # variables cut at the register's own k-quantiles of their non-zero values (zero a band)
    quantiles: dict[str, int] = Field(default_factory=dict)
    min_cell: int = Field(default=10, ge=1)
    tolerances: dict[Literal["persons", "households", "count_share", "total", "nonzero"], float] = Field(
        default_factory=dict)
    surplus: float | None = Field(default=None, gt=1.0)
    # CALMAR's usual bounds: a chosen household stands for between half a household and two. The
    # selection meets the controls within their tolerance with unit weights, so the raking only
    # closes that last gap; unbounded, it weighted a rare household 2.2 on a 3,000-person register.
    weight_bounds: tuple[float, float] | None = (0.5, 2.0)
    # The gate's limit on the TVD between the release's household size x type table and the
    # register's: calibrated releases meet it exactly; a 2-point shift of one-person households
    # alone is 0.02, and the demo's uncalibrated releases were 0.05-0.07 away.
    household_structure_tvd: float = Field(default=0.01, ge=0.0)


class TopCoding(_Strict):
    """Amounts beyond the ``quantile`` of the real variable's non-zero values are published as
    that threshold (``synth_assets.calibration.tails``). ``variables`` default: every numeric,
    non-integer variable of the register and the surveys without a declared ``max`` (the
    amounts; a bounded variable such as minutes of a day has no extreme tail to hide, and
    capping one of a day's activities would break the day's 24 hours), counts and shares of a
    survey's records left out (capping a count of trips would break the share of them by car)."""

    quantile: float | None = Field(default=0.999, gt=0.5, lt=1.0)  # null: no top-coding
    variables: list[str] | None = None


class Licence(_Strict):
    """The licence a release is published under (a Data Package ``licenses`` entry)."""

    name: str = "CC-BY-4.0"
    title: str = "Creative Commons Attribution 4.0 International"
    path: str = "https://creativecommons.org/licenses/by/4.0/"


class Disclosure(_Strict):
    """The copy filters of the release (``synth_assets.common.disclosure``).

    A generated record is redrawn (and the gate refuses a release holding one) when it
    reproduces a real record held by fewer than ``k`` records on the quasi-identifiers, or
    equals a real record on every variable. What the filters remove is reported per value of
    each ``strata`` variable (those the data have).
    """

    k: int = Field(default=3, ge=2)
    strata: list[str] = Field(default_factory=lambda: ["municipality", "household_size"])


class Enforcement(_Strict):
    """How hard ``fictitious_dataset`` redraws the households a rule or a copy filter rejects
    (``synth_assets.synthesis.constraints.enforce_rules``).

    ``member_rounds`` redraws of a rejected household's members (its row kept), then up to
    ``max_rounds`` redraws of a whole household of the same structure; a draw of which more
    than ``max_rejection_rate`` is rejected is an error naming the rule or filter behind it.
    """

    member_rounds: int = Field(default=5, ge=0)
    max_rounds: int = Field(default=20, ge=2)
    max_rejection_rate: float = Field(default=0.5, gt=0.0, le=1.0)


class Regions(_Strict):
    """A declared split of the release by region (``release.regions``).

    ``fictitious_dataset`` draws and calibrates each group of ``variable``'s categories (a
    household-level register variable with categories: the municipality) as a step of its own,
    to that group's register margins; the steps run in parallel (two at a time under the local
    multiprocess executor, one pod each on Kubernetes) and their households join into one
    release, which the checks and the gate judge whole. Group names are step names: letters,
    digits and underscores.
    """

    variable: str
    groups: dict[str, list[str]]

    @model_validator(mode="after")
    def _groups_named(self) -> Regions:
        bad = [name for name in self.groups if not re.fullmatch(r"[A-Za-z0-9_]+", name)]
        if bad:
            raise ValueError(f"region names are letters, digits and underscores: {bad}")
        if len(self.groups) < 1:
            raise ValueError("regions: at least one group")
        return self


#: The release options a run may set for itself (``synth-assets run --set release.disclosure.k=5``),
#: overlaying the catalog's: the copy filters and their enforcement. The gate's thresholds, the
#: rules and the calibration are the catalog's alone (a run never loosens the gate).
RUN_RELEASE_OPTIONS = ("quasi_identifiers", "disclosure.k", "disclosure.strata",
                       "enforcement.member_rounds", "enforcement.max_rounds", "enforcement.max_rejection_rate")


class Release(_Strict):
    """What a public release must satisfy and how it is made."""

    title: str = "Fictitious population"
    licence: Licence = Field(default_factory=Licence)

    quasi_identifiers: list[str] = Field(default_factory=list)
    sensitive: list[str] = Field(default_factory=list)
    disclosure: Disclosure = Field(default_factory=Disclosure)
    enforcement: Enforcement = Field(default_factory=Enforcement)
    rules: list[str] = Field(default_factory=list)
    regressions: list[Regression] = Field(default_factory=list)
    matching: dict[str, MatchingStep] = Field(default_factory=dict)
    calibration: Calibration = Field(default_factory=Calibration)
    top_coding: TopCoding = Field(default_factory=TopCoding)
    regions: Regions | None = None  # None: the release drawn in one step
    # Overrides of the validation defaults: a number (absolute limit), null (drop the check)
    # or {min|max: x, relative: r} (also relative to the holdout baseline).
    thresholds: dict[str, float | dict[str, float] | None] = Field(default_factory=dict)


class Catalog(_Strict):
    version: Literal[1]
    common_variables: dict[str, CommonVariable]
    sources: dict[str, Source]
    release: Release = Field(default_factory=Release)

    @field_validator("sources")
    @classmethod
    def _source_names(cls, sources: dict[str, Source]) -> dict[str, Source]:
        for name in sources:
            if not _NAME.match(name):
                raise ValueError(
                    f"source name {name!r} must be lower-case letters, digits and '_' "
                    "(it becomes part of Dagster asset names)"
                )
        registers = [n for n, s in sources.items() if s.kind == "register"]
        if len(registers) != 1:
            raise ValueError(f"exactly one source must have kind 'register', found {registers or 'none'}")
        return sources

    @model_validator(mode="after")
    def _variables_consistent(self) -> Catalog:
        errors: list[str] = []
        for source_name, source in self.sources.items():
            for role in ("id", "household_id", "weight"):
                names = source.columns_with_role(role)
                if len(names) > 1:
                    errors.append(f"sources.{source_name}: more than one variable with role {role}: {names}")
            if source.kind == "survey" and source.weight_column is None:
                errors.append(f"sources.{source_name}: a survey needs a variable with role 'weight'")
            if source.unit == "household" and source.household_id_column is None:
                errors.append(f"sources.{source_name}: unit 'household' needs a variable with role 'household_id'")
            for var_name, var in source.variables.items():
                where = f"sources.{source_name}.variables.{var_name}"
                if not _NAME.match(var_name):
                    errors.append(f"{where}: harmonised names are lower-case snake_case")
                if var.role == "common":
                    common = self.common_variables.get(var_name)
                    if common is None:
                        errors.append(f"{where}: role 'common' but {var_name!r} is not in common_variables")
                        continue
                    if var.type is not None and var.type != common.type:
                        errors.append(f"{where}: type {var.type} differs from common_variables ({common.type})")
                    if var.categories is not None:
                        errors.append(f"{where}: categories of a common variable come from common_variables")
                    allowed = set(common.categories or [])
                else:
                    if var.type is None and var.role in ("specific",):
                        errors.append(f"{where}: a specific variable needs a 'type'")
                    if var.type == "category" and not var.categories:
                        errors.append(f"{where}: a category variable needs 'categories'")
                    allowed = set(var.categories or [])
                if var.codes and allowed:
                    bad = sorted({str(v) for v in var.codes.values()} - allowed)
                    if bad:
                        errors.append(f"{where}: codes map to {bad}, not in the category set {sorted(allowed)}")
                errors += _not_applicable_errors(where, source, var)
                errors += self._level_errors(where, source, var)
            errors += _records_errors(source_name, source)
        specific_owner: dict[str, str] = {}
        for source_name, source in self.sources.items():
            for var_name in source.specific:
                if var_name in specific_owner and self.sources[specific_owner[var_name]].kind == "survey" and source.kind == "survey":
                    errors.append(
                        f"sources.{source_name}.variables.{var_name}: specific variable also defined by "
                        f"{specific_owner[var_name]}; harmonised names of survey-specific variables must be unique"
                    )
                specific_owner.setdefault(var_name, source_name)
        errors += self._calibration_errors()
        known = {name for source in self.sources.values() for name in source.variables}
        for field_name in ("quasi_identifiers", "sensitive"):
            for name in getattr(self.release, field_name):
                if name not in known:
                    errors.append(f"release.{field_name}: {name!r} is not a variable of any source")
        if "disclosure" in self.release.model_fields_set and "strata" in self.release.disclosure.model_fields_set:
            for name in self.release.disclosure.strata:
                if name not in known:
                    errors.append(f"release.disclosure.strata: {name!r} is not a variable of any source")
        for name in self.release.matching:
            if name not in self.sources or self.sources[name].kind != "survey":
                errors.append(f"release.matching.{name}: not a survey in sources")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def _level_errors(self, where: str, source: Source, var: SourceVariable) -> list[str]:
        """``level`` and ``universe`` of a variable: specific variables only, on known common variables."""
        errors = []
        if (var.level is not None or var.universe is not None) and var.role != "specific":
            what = "'level'" if var.level is not None else "'universe'"
            errors.append(f"{where}: {what} is only for specific variables, not role {var.role!r}")
            return errors
        if (var.level or source.unit) == "household" and var.role == "specific":
            if source.household_id_column is None:
                errors.append(f"{where}: level 'household' needs a variable with role 'household_id' in the source")
            if var.universe:
                errors.append(f"{where}: a household variable concerns every member; a 'universe' ({var.universe!r}) "
                              "would give members of one household different values")
            if source.universe and var.level == "household":
                errors.append(f"{where}: a household variable concerns every member, but the source's universe "
                              f"({source.universe!r}) would leave members outside it with the not-applicable value")
        if var.universe:
            known = {name: self.common_variables[name] for name in source.common if name in self.common_variables}
            variables: dict[str, tuple[str, list[str] | None]] = {n: (c.type, c.categories) for n, c in known.items()}
            for problem in rule_problems([var.universe], variables):
                errors.append(f"{where}: universe {problem.removeprefix('release.rules[0] ')} "
                              f"(a universe names the source's common variables only)")
        return errors

    def _calibration_errors(self) -> list[str]:
        calibration = self.release.calibration
        if not calibration.enabled:
            return []
        register = next((s for s in self.sources.values() if s.kind == "register"), None)
        if register is None:
            return []
        errors = []
        known = set(register.variables)
        for i, margin in enumerate(calibration.margins or []):
            for variable in margin.variables:
                if variable not in known:
                    errors.append(f"release.calibration.margins[{i}]: {variable!r} is not a register variable")
            for variable, edges in margin.bands.items():
                if variable not in margin.variables:
                    errors.append(f"release.calibration.margins[{i}].bands: {variable!r} is not one of the "
                                  f"margin's variables {margin.variables}")
                if list(edges) != sorted(edges) or len(set(edges)) != len(edges) or not edges:
                    errors.append(f"release.calibration.margins[{i}].bands.{variable}: edges must increase, got {edges}")
        for variable in calibration.totals or []:
            if variable not in known:
                errors.append(f"release.calibration.totals: {variable!r} is not a register variable")
        for variable in calibration.quantiles:
            if variable not in known:
                errors.append(f"release.calibration.quantiles: {variable!r} is not a register variable")
        for variable, edges in calibration.bands.items():
            if list(edges) != sorted(edges) or len(set(edges)) != len(edges):
                errors.append(f"release.calibration.bands.{variable}: edges must increase, got {edges}")
        bounds = calibration.weight_bounds
        if bounds is not None and not 0 <= bounds[0] < 1 < bounds[1]:
            errors.append(f"release.calibration.weight_bounds: expected [lower, upper] with 0 <= lower < 1 < upper, "
                          f"got {list(bounds)}")
        if not any(m.unit == "household" for m in self.calibration_margins()) and register.household_id_column:
            errors.append("release.calibration.margins: at least one household margin is needed")
        return errors

    def calibration_margins(self) -> list[CalibrationMargin]:
        """The declared margins, or the defaults restricted to the register's variables."""
        declared = self.release.calibration.margins
        if declared is not None:
            return list(declared)
        register = next((s for s in self.sources.values() if s.kind == "register"), None)
        known = set(register.variables) if register else set()
        margins = []
        for margin in _default_margins():
            variables = [v for v in margin.variables if v in known]
            if variables:
                margins.append(CalibrationMargin(unit=margin.unit, variables=variables,
                                                 bands={v: e for v, e in margin.bands.items() if v in variables}))
        return margins

    def register_amounts(self) -> list[str]:
        """The register's numeric, non-integer variables: the incomes, person by person."""
        return [
            name for name, variable in self.register.variables.items()
            if variable.role in ("common", "specific") and self.variable_type(self.register_name, name) == "number"
        ]

    def amounts(self) -> list[str]:
        """The variables top-coding applies to: declared, or every unbounded numeric non-integer one."""
        declared = self.release.top_coding.variables
        if declared is not None:
            return list(declared)
        names: dict[str, None] = {}
        for source_name, source in self.sources.items():
            for name, variable in source.variables.items():
                numeric = variable.role in ("common", "specific") and self.variable_type(source_name, name) == "number"
                # a count of records is what a share of them is a share of: capping 11 trips at 10
                # would publish a car share of 3/11 beside 10 trips, a day no record can make
                counted = variable.aggregate is not None and variable.aggregate.how in ("count", "share")
                if numeric and not counted and self.bounds(source_name, name)[1] is None:
                    names[name] = None
        return list(names)

    @property
    def register_name(self) -> str:
        return next(n for n, s in self.sources.items() if s.kind == "register")

    @property
    def register(self) -> Source:
        return self.sources[self.register_name]

    @property
    def surveys(self) -> dict[str, Source]:
        return {n: s for n, s in self.sources.items() if s.kind == "survey"}

    def variable_type(self, source_name: str, var_name: str) -> VariableType:
        var = self.sources[source_name].variables[var_name]
        if var.role == "common":
            return self.common_variables[var_name].type
        if var.type is not None:
            return var.type
        return "integer" if var.role in ("id", "household_id") else "number"

    def categories(self, source_name: str, var_name: str) -> list[str] | None:
        var = self.sources[source_name].variables[var_name]
        if var.role == "common":
            return self.common_variables[var_name].categories
        return var.categories

    def bounds(self, source_name: str, var_name: str) -> tuple[float | None, float | None]:
        var = self.sources[source_name].variables[var_name]
        if var.role == "common":
            common = self.common_variables[var_name]
            return (var.min if var.min is not None else common.min, var.max if var.max is not None else common.max)
        return var.min, var.max

    @model_validator(mode="after")
    def _regions_valid(self) -> Catalog:
        regions = self.release.regions
        if regions is None:
            return self
        where = "release.regions"
        common = self.common_variables.get(regions.variable)
        if common is None or not common.categories:
            raise ValueError(f"{where}.variable: {regions.variable!r} is not a common variable with categories")
        if regions.variable not in self.sources[self.register_name].variables:
            raise ValueError(f"{where}.variable: {regions.variable!r} is not a register variable")
        seen: dict[str, str] = {}
        for name, values in regions.groups.items():
            for value in values:
                if value not in common.categories:
                    raise ValueError(f"{where}.groups.{name}: {value!r} is not a category of {regions.variable}")
                if value in seen:
                    raise ValueError(f"{where}.groups.{name}: {value!r} is already in region {seen[value]!r}")
                seen[value] = name
        missing = [c for c in common.categories if c not in seen]
        if missing:
            raise ValueError(f"{where}.groups: {regions.variable} {missing} in no region")
        return self

    def region_groups(self) -> dict[str, list[str] | None]:
        """The release's regions: name -> categories of ``release.regions.variable``; without
        declared regions, one region ``all`` (None: every household)."""
        if self.release.regions is None:
            return {"all": None}
        return {name: list(values) for name, values in self.release.regions.groups.items()}

    @model_validator(mode="after")
    def _rules_valid(self) -> Catalog:
        # Checked when the catalog loads: a typo in a rule would otherwise surface only at the
        # release gate, after hours of training, or be skipped as "cannot be evaluated".

        problems = rule_problems(self.release.rules, self.rule_variables())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def universe_rules(self) -> list[str]:
        """One rule per specific variable with a universe of its own: outside it, the not-applicable value."""
        rules = []
        for source in self.sources.values():
            for name in source.specific:
                var = source.variables[name]
                if var.universe and var.not_applicable is not None:
                    value = str(var.not_applicable) if var.type == "category" else var.not_applicable
                    rules.append(f"({var.universe}) or {name} == {value!r}")
                    if _outside_range(var, value):
                        # A code outside the range (-8 minutes) means "outside the universe" only: a
                        # person inside it drawn with a child's block is redrawn, not published.
                        rules.append(f"not ({var.universe}) or {name} != {value!r}")
        return rules

    def with_release_options(self, options: dict[str, Any]) -> Catalog:
        """This catalog with a run's release options (dotted keys of :data:`RUN_RELEASE_OPTIONS`) overlaid.

        The result is validated as a whole (a stratum must be a variable, ``k`` at least 2);
        ``ValueError`` names the first bad option in one line.
        """
        if not options:
            return self
        release = self.release.model_dump(exclude_unset=True)
        for key, value in options.items():
            if key not in RUN_RELEASE_OPTIONS:
                raise ValueError(f"unknown release option {key!r}; valid: {', '.join(RUN_RELEASE_OPTIONS)}")
            *sections, name = key.split(".")
            target = release
            for section in sections:
                target = target.setdefault(section, {})
            target[name] = value
        try:
            return Catalog.model_validate({**self.model_dump(exclude_unset=True), "release": release})
        except ValueError as exc:  # pydantic's ValidationError is one
            errors = getattr(exc, "errors", None)
            if callable(errors):
                first = errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                message = str(first["msg"]).removeprefix("Value error, ").splitlines()[0]
                raise ValueError(f"{where}: {message}" if where else message) from None
            raise

    def plausibility_rules(self) -> list[str]:
        """The rules every released record satisfies: ``release.rules`` and the variables' universes."""
        return [*self.release.rules, *(r for r in self.universe_rules() if r not in self.release.rules)]

    def household_variables(self) -> list[str]:
        """Every survey's household-level specific variables: constant within households.

        A household survey with a source ``universe`` gives members outside it the not-applicable
        value, so its variables are left out (a declared ``level: household`` refuses a universe).
        """
        return [name for source in self.surveys.values() if not source.universe
                for name in source.household_variables]

    def rule_variables(self) -> dict[str, tuple[str, list[str] | None]]:
        """Every harmonised variable a rule may name: type and category set."""
        names: dict[str, tuple[str, list[str] | None]] = {}
        for source_name, source in self.sources.items():
            for var_name, var in source.variables.items():
                if var.role == "common" and var_name not in self.common_variables:
                    continue  # reported by _variables_consistent
                names.setdefault(var_name, (self.variable_type(source_name, var_name), self.categories(source_name, var_name)))
        return names


def _outside_range(var: SourceVariable, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return (var.min is not None and value < var.min) or (var.max is not None and value > var.max)


def _records_errors(source_name: str, source: Source) -> list[str]:
    """Aggregates only in a record source, over its record variables; checks on known variables."""
    where = f"sources.{source_name}"
    records = source.records
    if records is None:
        return [f"{where}.variables.{name}: an 'aggregate' needs the source's 'records'" for name in source.aggregates]
    errors = []
    if source.id_column is None:
        errors.append(f"{where}: a record source needs a person id (role 'id') to aggregate by")
    known = records.known()
    variables: dict[str, tuple[str, list[str] | None]] = {
        name: (v.type or "number", v.categories) for name, v in records.variables.items()}
    variables.update({name: ("number", None) for name in records.derived})
    for name, var in records.variables.items():
        if var.column is None or var.role != "specific":
            errors.append(f"{where}.records.variables.{name}: a record variable is read from a 'column', role 'specific'")
        if var.type == "category" and not var.categories:
            errors.append(f"{where}.records.variables.{name}: a category variable needs 'categories'")
    if records.day_type is not None:
        if records.day_type not in records.variables:
            errors.append(f"{where}.records.day_type: {records.day_type!r} is not a record variable")
        else:
            categories = records.variables[records.day_type].categories or []
            bad = sorted(set(records.day_weights) - set(categories))
            if bad or not records.day_weights:
                errors.append(f"{where}.records.day_weights: give a weight to day types of {categories} (got {bad or 'none'})")
    for name, expression in records.derived.items():
        for problem in rule_problems([expression], {k: v for k, v in variables.items() if k != name}):
            errors.append(f"{where}.records.derived.{name}: {problem.split(' ', 1)[1]}")
    if records.covers_day is not None:
        for end in (records.covers_day.start, records.covers_day.end):
            if end not in known:
                errors.append(f"{where}.records.covers_day: {end!r} is not a record variable")
    for problem in rule_problems(records.rules, variables):
        errors.append(f"{where}.records.{problem.removeprefix('release.')}")
    for name, aggregate in source.aggregates.items():
        at = f"{where}.variables.{name}.aggregate"
        if aggregate.of is not None and aggregate.of not in known:
            errors.append(f"{at}: 'of' {aggregate.of!r} is not a record variable ({known})")
        if aggregate.where:
            errors += [f"{at}: where {p.split(' ', 1)[1]}" for p in rule_problems([aggregate.where], variables)]
        if aggregate.per == "average_day" and records.day_type is None:
            errors.append(f"{at}: 'per: average_day' needs the records' 'day_type' and 'day_weights'")
    return errors


def _not_applicable_errors(where: str, source: Source, var: SourceVariable) -> list[str]:
    """A specific variable of a source with a universe needs a valid value for those outside it."""
    value = var.not_applicable
    if value is None:
        if source.universe and var.role == "specific":
            return [f"{where}: the source has a universe ({source.universe!r}); declare 'not_applicable', "
                    "the value of persons outside it"]
        if var.universe and var.role == "specific":
            return [f"{where}: the variable has a universe ({var.universe!r}); declare 'not_applicable', "
                    "the value of persons outside it"]
        return []
    if var.role != "specific":
        return [f"{where}: 'not_applicable' is only for specific variables, not role {var.role!r}"]
    if not source.universe and not var.universe:
        return [f"{where}: 'not_applicable' given ({value!r}) but neither the source nor the variable has a 'universe'"]
    if var.type == "category":
        if str(value) not in (var.categories or []):
            return [f"{where}: not_applicable {value!r} is not in the category set {var.categories}"]
        return []
    if var.type == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: not_applicable {value!r} is not a boolean"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{where}: not_applicable {value!r} is not a number (type {var.type})"]
    if var.type == "integer" and value != int(value):
        return [f"{where}: not_applicable {value!r} is not an integer"]
    # Special codes (e.g. -8) are exempt from the range, like in the data.
    if value in var.special_values:
        return []
    if (var.min is not None and value < var.min) or (var.max is not None and value > var.max):
        return [f"{where}: not_applicable {value!r} is outside [{var.min}, {var.max}] and not a declared "
                f"special value {var.special_values}"]
    return []
