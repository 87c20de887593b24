"""Coherent households: a household table model, then persons given their household.

Two models, any families:

1. a household model on one row per household: the household-level columns (constant
   within every household unless named), the household size and the head's age;
2. a person model on the person-level columns, *conditioned* on the household's columns,
   the size, the head's age and the member's position (0 for the head, then by decreasing
   age). CART conditions natively: the conditioning columns come first in its visiting
   order and are fixed to the synthetic household's values at sampling. The other
   families synthesise persons with those columns included and each household slot takes
   a close synthetic person (nearest match on the conditioning columns, see
   :meth:`~synth_assets.synthesis.tabular.TabularSynthesizer.sample_conditional`).

Guarantees enforced by construction or by rule, whatever the models do: every household's
size equals its number of members; household columns are identical across members; exactly
one head (slot 0; other slots drawing the head code get a non-head code drawn from the
training non-head codes); new household ids that never equal a real one; children at least
``min_parent_gap`` years younger than the head (ages redrawn where a model fails); whole
households, so the number of persons is the request rounded up to a whole household.

For redrawing rejected households without changing the household structure (see
:mod:`synth_assets.synthesis.constraints`): :meth:`HouseholdSynthesizer.redraw_members` draws
the members of given households again, each household's row kept, and
:meth:`HouseholdSynthesizer.sample_households_like` draws fresh households equal to given
ones on structure columns, by rejection from the household model (its exact conditional).
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self

import numpy as np
import pandas as pd

from synth_assets.synthesis.base import LOGGER, NotFittedError, Synthesizer
from synth_assets.synthesis.equal_rows import batch_rows, match_rows
from synth_assets.synthesis.families import BLOCK_FAMILIES, RULE_MASKING_FAMILIES, make_synthesizer
from synth_assets.synthesis.tabular import TabularSynthesizer
from synth_assets.synthesis.transform import IdCodec, TableSchema

#: Household-table families fitted in a thread while the members' model fits (both without a time
#: budget): CART's tree building releases the GIL, and its fit at 1.2 million persons (16 s for the
#: households, 89 s for the members at 84% of two cores) left a core idle (bench/README.md,
#: "Twenty-seventh pass"). A neural family's fit sizes its torch threads to the machine: two at once
#: would share the cores and, with a budget, time each other's epochs.
FIT_BESIDE_MEMBERS = frozenset({"cart"})


def _internal_name(base: str, taken: set[str]) -> str:
    name = base
    while name in taken:
        name = "_" + name
    return name


def household_level_columns(data: pd.DataFrame, household_id: str, exclude: Sequence[str]) -> list[str]:
    """Columns constant within every household with more than one member."""
    candidates = [c for c in data.columns if c != household_id and c not in exclude]
    sizes = data.groupby(household_id, sort=False)[household_id].transform("size")
    shared = data.loc[sizes > 1]
    if shared.empty or not candidates:
        return []
    distinct = shared.groupby(household_id, sort=False)[candidates].nunique(dropna=False).max()
    return [c for c in candidates if distinct[c] <= 1]


class HouseholdSynthesizer(Synthesizer):
    """Person-level data with households kept coherent; see the module docstring.

    ``size_column``, ``relation_column`` and ``age_column`` are optional: when absent from
    the data (or, for the age, not numeric) the size is tracked internally and not output,
    ``household_level`` names columns that are household facts (e.g. a survey's household
    variables): always in the household table, with the head's value, added to those found,
    the head is the oldest member (or the first listed), and no age rule applies. ``person_id`` names a person identifier
    column that is replaced by fresh identifiers.
    """

    family = "households"
    #: (column, values as text) of :meth:`restricted_to`; None: every household
    _only: tuple[str, frozenset[str]] | None = None

    def __init__(
        self,
        household_family: str = "cart",
        person_family: str = "cart",
        *,
        household_id: str = "household_id",
        household_columns: Sequence[str] | None = None,
        size_column: str | None = "household_size",
        relation_column: str = "relation",
        head_code: Any = "head",
        child_codes: Sequence[Any] = ("child",),
        age_column: str = "age",
        min_parent_gap: int = 15,
        person_id: str | None = None,
        seed: int = 0,
        household_params: Mapping[str, Any] | None = None,
        person_params: Mapping[str, Any] | None = None,
        blocks: Sequence[Sequence[str]] = (),
        household_level: Sequence[str] = (),
        household_totals: Sequence[str] = (),
    ) -> None:
        super().__init__(seed=seed)
        self.household_family = household_family
        self.person_family = person_family
        self.household_id = household_id
        self.household_columns = household_columns
        self.size_column = size_column
        self.relation_column = relation_column
        self.head_code = head_code
        self.child_codes = child_codes
        self.age_column = age_column
        self.min_parent_gap = min_parent_gap
        self.person_id = person_id
        self.household_params = dict(household_params or {})
        self.person_params = dict(person_params or {})
        self.blocks = [list(b) for b in blocks]
        self.household_level = list(household_level)
        self.household_totals = list(household_totals)
        self.household_model: TabularSynthesizer | None = None
        self.person_model: TabularSynthesizer | None = None

    # ----------------------------------------------------------------- fitting
    def fit(self, data: pd.DataFrame) -> HouseholdSynthesizer:
        started = time.perf_counter()
        if self.household_id not in data.columns:
            raise ValueError(f"household id column {self.household_id!r} not in the data")
        schema = TableSchema.capture(data)
        has = set(data.columns)
        self._size: str = (
            self.size_column if self.size_column is not None and self.size_column in has
            else _internal_name("_size", has)
        )
        self._relation = self.relation_column if self.relation_column in has else None
        numeric_age = self.age_column in has and pd.api.types.is_numeric_dtype(data[self.age_column])
        self._age = self.age_column if numeric_age else None
        self._person_id = self.person_id if self.person_id in has else None
        self._member = _internal_name("_member", has)
        self._head_age = _internal_name("_head_age", has) if self._age else None

        roles = [c for c in (self._relation, self._age, self._person_id) if c]
        if self.household_columns is None:
            hh_cols = household_level_columns(data, self.household_id, roles + [self._size])
        else:
            hh_cols = [c for c in self.household_columns if c != self._size]
        # Declared household variables belong to the household table whatever the data show
        # (the head's value applies), so they are identical within every generated household.
        hh_cols += [c for c in self.household_level if c in has and c not in hh_cols and c != self._size]
        self._household_columns = hh_cols
        # The household's total of each named amount (e.g. its labour income) is drawn in the
        # household table and the members' amounts given it: household variables such as
        # spending then keep their relation to the household's resources, which a table of
        # household facts alone loses (members' incomes drawn after spending, unrelated to it).
        taken = has | {self._member, self._size} | ({self._head_age} if self._head_age else set())
        self._totals: dict[str, str] = {}
        for column in self.household_totals:
            if column in has and column not in hh_cols and pd.api.types.is_numeric_dtype(data[column]):
                self._totals[column] = _internal_name(f"_total_{column}", taken)
                taken.add(self._totals[column])

        persons = self._with_positions(data)
        households = persons.loc[persons[self._member] == 0, self._household_table_columns()].reset_index(drop=True)
        self._id_codec = IdCodec.fit(self.household_id, data[self.household_id])
        if self._person_id:
            self._person_codec = IdCodec.fit(self._person_id, data[self._person_id])
        self._mean_size = float(households[self._size].astype(float).mean())

        person_columns = self._condition_columns() + self._person_level_columns(data)
        household_params = self._with_blocks(self.household_family, self.household_params, list(households.columns))
        if self.household_family == "cart":
            # every household variable drawn from households of the same size where there are
            # enough: spending and incomes grow with the size, up to the largest households
            household_params.setdefault("stratum", self._size)
        household_started = time.perf_counter()
        household_model = make_synthesizer(self.household_family, seed=self.seed, **household_params)
        person_params = self._with_blocks(self.person_family, self.person_params, self._person_level_columns(data))
        budgeted = household_params.get("max_seconds") is not None and person_params.get("max_seconds") is not None
        beside = not budgeted and self.household_family in FIT_BESIDE_MEMBERS
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="household-fit") if beside else None
        household_fit = pool.submit(household_model.fit, households) if pool is not None else None
        household_fitted = household_model.fit(households) if household_fit is None else None
        if budgeted:
            # a household model that stopped early (on the demo at 103 s of its 126) leaves its
            # time to the members, which on the demo were still improving when the budget ran out
            unused = household_params["max_seconds"] - (time.perf_counter() - household_started)
            person_params["max_seconds"] = person_params["max_seconds"] + max(unused, 0.0)
        if self.person_family == "cart":
            person_params.setdefault("stratum", self._size)
        if self.person_family in ("neural", "gan"):
            # early stopping holds out whole households: members share the household's values
            person_params.setdefault("holdout_groups", self._household_table_columns())
        if self.person_family in RULE_MASKING_FAMILIES:
            person_params["rules"] = [*person_params.get("rules", []), *self._member_rules()]
        if self._relation:
            others = persons.loc[persons[self._member] > 0, self._relation]
            others = others[others != self.head_code].dropna()
            self._non_head_codes = others.value_counts(normalize=True)
        person_table = persons[person_columns]
        n_households = len(households)
        del persons, households  # the member table is all the person model needs: not held while it fits
        try:
            self.person_model = make_synthesizer(
                self.person_family, seed=self.seed + 1, condition_columns=self._condition_columns(), **person_params,
            ).fit(person_table)
            del person_table
            if household_fit is not None:
                household_fitted = household_fit.result()
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        assert household_fitted is not None  # fitted here or in its thread
        self.household_model = household_fitted
        self.schema = schema
        self.training_log = {
            "family": self.family,
            "households": n_households,
            "rows": len(data),
            "household_columns": hh_cols,
            "household_totals": list(self._totals),
            "household": self.household_model.training_log,
            "person": self.person_model.training_log,
            "epochs": self.person_model.training_log.get("epochs"),
            "params": self.get_params(),
            "seconds": round(time.perf_counter() - started, 3),
        }
        LOGGER.info(
            "households: fitted on %d persons in %d households in %.1f s",
            len(data), n_households, self.training_log["seconds"],
        )
        return self

    def _member_rules(self) -> list[str]:
        """This class's guarantees as rules over the person model's columns, for a rule-masking family.

        Such a family then draws members that need no fixing: the head at slot 0 only, the
        head's age near the household's (set exactly afterwards), children young enough. A
        member fixed afterwards (``_fix_heads``, ``_fix_ages``) keeps the other values drawn
        for the code or age it had: a child whose age is redrawn below 16 keeps its wage,
        which the catalog's rules then reject.
        """
        rules = []
        member = f"`{self._member}`"
        if self._relation:
            relation, head = f"`{self._relation}`", repr(self.head_code)
            rules += [f"not ({member} == 0 and {relation} != {head})", f"not ({member} > 0 and {relation} == {head})"]
        if self._age and self._head_age:
            age, head_age = f"`{self._age}`", f"`{self._head_age}`"
            # one-sided: RuleMasks keeps a bin that a rule breaks at one end only
            rules += [f"not ({member} == 0 and {age} < {head_age} - 2)", f"not ({member} == 0 and {age} > {head_age} + 2)"]
            if self._relation:
                children = repr([c for c in self.child_codes])
                rules.append(f"not ({relation} in {children} and {age} > {head_age} - {self.min_parent_gap})")
        return rules

    def _with_blocks(self, family: str, params: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
        """``params`` plus the part of each block at this model's level (for ``BLOCK_FAMILIES``)."""
        if family not in BLOCK_FAMILIES or not self.blocks:
            return dict(params)
        blocks = [[c for c in block if c in columns] for block in self.blocks]
        return {**params, "blocks": [b for b in blocks if len(b) > 1]}

    def _household_table_columns(self) -> list[str]:
        head_age = [self._head_age] if self._head_age else []
        return self._household_columns + [self._size] + head_age + list(self._totals.values())

    def _condition_columns(self) -> list[str]:
        return self._household_table_columns() + [self._member]

    def _person_level_columns(self, data: pd.DataFrame) -> list[str]:
        skip = set(self._household_columns) | {self.household_id, self._size, self._person_id}
        return [c for c in data.columns if c not in skip]

    def _with_positions(self, data: pd.DataFrame) -> pd.DataFrame:
        """Add the member position (head 0, others by decreasing age), size and head's age."""
        persons = data.reset_index(drop=True).copy()
        hh = persons[self.household_id]
        head_score = np.zeros(len(persons))
        if self._relation:
            head_score -= 2 * (persons[self._relation] == self.head_code).to_numpy()
        age = persons[self._age].astype(float).fillna(-1).to_numpy() if self._age else np.zeros(len(persons))
        order = np.lexsort((np.arange(len(persons)), -age, head_score, pd.factorize(hh)[0]))
        ranked = persons.iloc[order]
        persons.loc[ranked.index, self._member] = ranked.groupby(self.household_id, sort=False).cumcount().to_numpy()
        persons[self._member] = persons[self._member].astype(np.int64)
        if self._size not in data.columns:
            persons[self._size] = hh.map(hh.value_counts()).astype(np.int64)
        if self._head_age:
            head_age = persons.loc[persons[self._member] == 0].set_index(self.household_id)[self._age]
            persons[self._head_age] = hh.map(head_age).to_numpy()
        for column, total in self._totals.items():
            persons[total] = persons.groupby(self.household_id, sort=False)[column].transform("sum").astype(float)
        first = persons.loc[persons[self._member] == 0].set_index(self.household_id)
        for col in self._household_columns:  # named household columns: the head's value applies
            persons[col] = hh.map(first[col]).astype(persons[col].dtype)
        return persons

    @property
    def fitted_models(self) -> tuple[TabularSynthesizer, TabularSynthesizer]:
        """The household model and the person model; :class:`NotFittedError` before :meth:`fit`."""
        if self.household_model is None or self.person_model is None:
            raise NotFittedError(f"{type(self).__name__} has not been fitted")
        return self.household_model, self.person_model

    # --------------------------------------------------------- posterior draw
    @property
    def warm_replicates(self) -> bool:  # type: ignore[override]  # a class attribute elsewhere
        """Whether both models start their replicate draws from their fitted state (neural, gan)."""
        return (self.household_model is not None and self.person_model is not None
                and self.household_model.warm_replicates and self.person_model.warm_replicates)

    @property
    def has_posterior_draw(self) -> bool:
        if self.household_model is None or self.person_model is None:
            return False
        return self.household_model.has_posterior_draw and self.person_model.has_posterior_draw

    def posterior_draw(self, seed: int) -> Self:
        """A copy whose household and person models are posterior draws."""
        if not self.has_posterior_draw:
            return super().posterior_draw(seed)
        first, second = np.random.SeedSequence(seed).generate_state(2)
        draw = copy.copy(self)
        household_model, person_model = self.fitted_models
        draw.household_model = household_model.posterior_draw(int(first))
        draw.person_model = person_model.posterior_draw(int(second))
        return draw

    def replicate_template(self) -> Self:
        """A copy whose household and person models are their replicate templates."""
        if not self.warm_replicates:
            return self
        household_model, person_model = self.fitted_models
        template = copy.copy(self)
        template.household_model = household_model.replicate_template()
        template.person_model = person_model.replicate_template()
        return template

    def replicate_draw(self, data: pd.DataFrame, seed: int) -> Self:
        """A posterior draw given a replicate's records: each model's own, from its table of ``data``.

        Models that start from their fitted state (neural, gan) are each drawn from ``data``'s
        household and member tables, built as :meth:`fit` builds them; otherwise a refit.
        """
        if not self.warm_replicates:  # a refit, which needs no fitted state (an unfitted clone will do)
            return super().replicate_draw(data, seed)
        household_model, person_model = self.fitted_models
        persons = self._with_positions(data)
        households = persons.loc[persons[self._member] == 0, self._household_table_columns()].reset_index(drop=True)
        person_columns = self._condition_columns() + self._person_level_columns(data)
        first, second = np.random.SeedSequence(seed).generate_state(2)
        draw = copy.copy(self)
        draw.household_model = household_model.replicate_draw(households, int(first))
        draw.person_model = person_model.replicate_draw(persons[person_columns], int(second))
        return draw

    # ---------------------------------------------------------------- sampling
    def _generate(self, n: int, rng: np.random.Generator, offset: int) -> pd.DataFrame:
        return self._begin_chunk(n, rng, offset)[1]()

    def _begin_chunk(self, n: int, rng: np.random.Generator, offset: int) -> tuple[int, Callable[[], pd.DataFrame]]:
        """The households' rows drawn here (their sizes are the chunk's persons); their members, most
        of a chunk's drawing, by the callable, which goes on with ``rng`` where this left it."""
        households = self._draw_households(n, rng)
        ids = self._id_codec.generate(len(households), offset).to_numpy()
        persons = int(households[self._size].astype(np.int64).sum())
        return persons, functools.partial(self._draw_members, households, ids, rng, offset=offset)

    def _draw_members(
        self,
        households: pd.DataFrame,
        household_ids: np.ndarray,
        rng: np.random.Generator,
        *,
        person_ids: np.ndarray | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Members of the household-table rows ``households``, in slot order (head first).

        ``person_ids`` (one per member, households in order) are kept when given; otherwise
        fresh ones start at ``offset``.
        """
        sizes = households[self._size].astype(np.int64).to_numpy()
        household_index = np.repeat(np.arange(len(households)), sizes)
        slots = households.iloc[household_index].reset_index(drop=True)
        slots[self._member] = np.concatenate([np.arange(s) for s in sizes]) if len(sizes) else np.array([], np.int64)
        persons = self.fitted_models[1].sample_conditional(slots, seed=int(rng.integers(2**31)))
        persons[self.household_id] = np.asarray(household_ids)[household_index]
        if self._person_id:
            persons[self._person_id] = (
                self._person_codec.generate(len(persons), offset).to_numpy() if person_ids is None else person_ids
            )
        if self._relation:
            self._fix_heads(persons, rng)
        if self._age:
            self._fix_ages(persons, rng)
        return self.fitted_schema.enforce(persons)

    def _household_rows(self, persons: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
        """The household-table row of each household in ``persons``, as the household model drew it.

        Households in order of first appearance. The head is the member with the head code
        (else the first listed), whose age is the household's head's age; the size is the
        number of members. Also returns the household ids and the person ids grouped by
        household (or None).
        """
        self._check_fitted()
        persons = persons.reset_index(drop=True)
        codes, ids = pd.factorize(persons[self.household_id], sort=False)
        not_head = np.ones(len(persons), dtype=np.int8)
        if self._relation:
            not_head = (persons[self._relation] != self.head_code).to_numpy().astype(np.int8)
        order = np.lexsort((np.arange(len(persons)), not_head, codes))
        grouped = persons.iloc[order].reset_index(drop=True)
        codes = codes[order]
        first = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.array([], np.int64)
        heads = grouped.iloc[first].reset_index(drop=True)
        rows = pd.DataFrame({c: heads[c] for c in self._household_columns}, index=heads.index)
        counts = np.bincount(codes, minlength=len(ids)).astype(np.int64)
        size_dtype = heads[self._size].dtype if self._size in heads else np.int64
        rows[self._size] = pd.Series(counts).astype(size_dtype)
        if self._head_age:
            rows[self._head_age] = heads[self._age].to_numpy()
        for column, total in self._totals.items():
            rows[total] = np.bincount(codes, weights=grouped[column].astype(float).fillna(0).to_numpy(), minlength=len(ids))
        person_ids = grouped[self._person_id].to_numpy() if self._person_id else None
        return rows, np.asarray(ids), person_ids

    def redraw_members(self, persons: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
        """The members of the households in ``persons`` drawn again, each household's row kept.

        ``persons`` holds whole households as :meth:`sample` returns them. Household id,
        household-level columns, size and head's age stay; the members are drawn from the
        person model given them, as in :meth:`sample`. Person ids are reused. Households come
        back in their order of first appearance, members head first.
        """
        if persons.empty:
            return self.fitted_schema.empty_frame()
        rows, ids, person_ids = self._household_rows(persons)
        rng = np.random.default_rng(seed)
        return self._draw_members(rows, ids, rng, person_ids=person_ids)

    def structure_columns(self, on: Sequence[str] = ()) -> list[str]:
        """The household size and those of ``on`` that are household-level columns of this model."""
        named = [c for c in on if c in self._household_columns]
        return [self._size] + [c for c in named if c != self._size]

    def sample_households_like(
        self, persons: pd.DataFrame, on: Sequence[str] = (), *, seed: int = 0, max_rounds: int = 8
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """Fresh households, one per household of ``persons``, equal to it on its structure.

        The structure is :meth:`structure_columns` of ``on`` (the size always). Rows of the
        household model are drawn unconditionally in batches and the first ones equal to a
        wanted structure taken: an exact draw from the model given the structure, however the
        model is built. Members are then drawn as in :meth:`sample`. Each new household takes
        the id and person ids of the one it replaces. After ``max_rounds`` batches, households
        whose structure was never drawn are returned (their ids), not replaced by another.
        A household model that draws given some of its columns (``sample_matching``: CART and the neural
        family) draws the structure columns alone in those batches and the rest given them.
        """
        if persons.empty:
            return self.fitted_schema.empty_frame(), persons[self.household_id].to_numpy()[:0]
        rows, ids, person_ids = self._household_rows(persons)
        rng = np.random.default_rng(seed)
        chosen, matched = self._rows_like(rows[self.structure_columns(on)], rng, max_rounds)
        return self._members_of(chosen, matched, rows, ids, person_ids, rng)

    def sample_structures(self, structures: pd.DataFrame, *, seed: int = 0, max_rounds: int = 8) -> pd.DataFrame:
        """Fresh households, one per row of ``structures`` the model draws within ``max_rounds``
        batches, equal to it on the columns of :meth:`structure_columns` (the size always).

        For a calibration short of households of a few structures: they are drawn given their
        structure (as :meth:`sample_households_like`), not by a whole new draw of which a few
        come out of that structure. Households the model never draws are left out. New ids.
        """
        self._check_fitted()
        if structures.empty:
            return self.fitted_schema.empty_frame()
        rows = structures[self.structure_columns(list(structures.columns))].reset_index(drop=True)
        rng = np.random.default_rng(seed)
        chosen, matched = self._rows_like(rows, rng, max_rounds)
        ids = self._id_codec.generate(len(rows), 0).to_numpy()
        return self._members_of(chosen, matched, rows, ids, None, rng)[0]

    def _rows_like(self, wanted: pd.DataFrame, rng: np.random.Generator, max_rounds: int
                   ) -> tuple[pd.DataFrame, np.ndarray]:
        """Household-table rows of the model equal to rows of ``wanted`` on its columns, and the
        positions in ``wanted`` each matches (those never drawn left out)."""
        columns = list(wanted.columns)
        sample_matching = getattr(self.fitted_models[0], "sample_matching", None)
        # a region's model draws the region's rows only, whether or not the structure names the region
        given = None if sample_matching is None else sample_matching(
            wanted.reset_index(drop=True), seed=int(rng.integers(2**31)), max_rounds=max_rounds,
            within=self._only)
        if given is not None:
            return given
        found = np.full(len(wanted), -1, dtype=np.int64)
        pool: list[pd.DataFrame] = []
        drawn = 0
        for round_ in range(max_rounds):
            missing = np.flatnonzero(found < 0)
            if not len(missing):
                break
            k = batch_rows(len(missing), round_)
            batch = self.fitted_models[0].sample(k, seed=int(rng.integers(2**31)))
            batch = self._in_restriction(batch[batch[self._size].astype(np.int64) >= 1]).reset_index(drop=True)
            target = wanted.iloc[missing].astype(batch[columns].dtypes.to_dict())
            taken = match_rows(target, batch[columns])
            hit = taken >= 0
            found[missing[hit]] = drawn + taken[hit]
            pool.append(batch)
            drawn += len(batch)
        matched = np.flatnonzero(found >= 0)
        return pd.concat(pool, ignore_index=True).iloc[found[matched]].reset_index(drop=True), matched

    def _members_of(self, chosen: pd.DataFrame, matched: np.ndarray, rows: pd.DataFrame, ids: np.ndarray,
                    person_ids: np.ndarray | None, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
        """Members of the new household rows ``chosen``, one for each household ``matched`` (positions in
        ``rows``) and taking its ids; and the ids of the households of ``rows`` not replaced."""
        replaced = np.isin(np.arange(len(rows)), matched)
        if not len(matched):
            return self.fitted_schema.empty_frame(), ids
        sizes = rows[self._size].astype(np.int64).to_numpy()
        keep_persons = None
        if person_ids is not None:
            keep_persons = person_ids[np.repeat(replaced, sizes)]
        out = self._draw_members(chosen, ids[matched], rng, person_ids=keep_persons)
        return out, ids[~replaced]

    def restricted_to(self, column: str, values: Sequence[Any]) -> Self:
        """A copy that draws only households whose ``column`` (a household-level column) is one of
        ``values``: the model's households given that they fall there (a region's share of a draw,
        drawn by itself). Its structure-conditional redraws keep the restriction too."""
        self._check_fitted()
        if column not in self._household_columns:
            raise ValueError(f"{column!r} is not a household-level column of this model "
                             f"({', '.join(self._household_columns)}): a draw cannot be restricted to it")
        restricted = copy.copy(self)
        restricted._only = (column, frozenset(str(v) for v in values))
        return restricted

    def _in_restriction(self, rows: pd.DataFrame) -> pd.DataFrame:
        if self._only is None:
            return rows
        column, values = self._only
        return rows[rows[column].astype(str).isin(values).to_numpy()]

    def _draw_households(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """Whole synthetic households until they hold at least ``n`` persons."""
        drawn: list[pd.DataFrame] = []
        persons = 0
        rows_drawn = rows_kept = 0
        while persons < n:
            # restricted: batches sized by the share of rows kept so far (a region's share)
            share = rows_kept / rows_drawn if rows_kept else 1.0
            k = int(np.ceil((n - persons) / self._mean_size * 1.1 / share)) + 1
            batch = self.fitted_models[0].sample(k, seed=int(rng.integers(2**31)))
            batch = self._in_restriction(batch[batch[self._size].astype(np.int64) >= 1])
            rows_drawn, rows_kept = rows_drawn + k, rows_kept + len(batch)
            drawn.append(batch)
            persons += int(batch[self._size].astype(np.int64).sum())
        households = pd.concat(drawn, ignore_index=True)
        enough = np.searchsorted(np.cumsum(households[self._size].astype(np.int64)), n) + 1
        return households.iloc[:enough].reset_index(drop=True)

    def _fix_heads(self, persons: pd.DataFrame, rng: np.random.Generator) -> None:
        """Slot 0 is the head; other slots that drew the head code get a non-head code."""
        head = persons[self._member] == 0
        persons.loc[head, self._relation] = self.head_code
        wrong = (~head & (persons[self._relation] == self.head_code)).to_numpy()
        if wrong.any() and len(self._non_head_codes):
            codes = self._non_head_codes
            persons.loc[wrong, self._relation] = rng.choice(codes.index.to_numpy(), wrong.sum(), p=codes.to_numpy())
            LOGGER.info("households: %d non-head members drew the head code; redrawn", wrong.sum())

    def _fix_ages(self, persons: pd.DataFrame, rng: np.random.Generator) -> None:
        """The head's age is the household's; children are ``min_parent_gap`` years younger."""
        head = (persons[self._member] == 0).to_numpy()
        head_age = persons[self._head_age].astype(float).to_numpy()  # repeated on every member
        age = persons[self._age].astype(float).to_numpy()
        if self._relation:
            gap = self.min_parent_gap
            child = persons[self._relation].isin(list(self.child_codes)).to_numpy()
            has_child = pd.Series(child).groupby(persons[self.household_id].to_numpy()).transform("any")
            head_age = np.where(has_child.to_numpy(), np.maximum(head_age, gap), head_age)
            bad = child & (age > head_age - gap)
            if bad.any():
                age[bad] = np.floor(rng.random(bad.sum()) * (head_age[bad] - gap + 1))
                LOGGER.info("households: %d children not %d years younger than the head; redrawn", bad.sum(), gap)
        age[head] = head_age[head]
        persons[self._age] = age

