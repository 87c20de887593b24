from pathlib import Path

import pytest
import yaml

from synth_assets.catalog import CatalogError, load_catalog, parse_catalog

REPO = Path(__file__).resolve().parents[2]


def _mutated(path: Path, mutate) -> str:
    raw = yaml.safe_load(path.read_text())
    mutate(raw)
    return yaml.safe_dump(raw)


def test_project_catalog_loads_and_declares_register_and_surveys():
    catalog = load_catalog(REPO / "data" / "catalog.yaml")
    assert catalog.register.kind == "register"
    assert len(catalog.surveys) >= 4
    for name, survey in catalog.surveys.items():
        assert survey.weight_column, name
        assert survey.specific, f"{name} has no survey-specific variable"


def test_mini_catalog_roles(mini_catalog_path):
    catalog = load_catalog(mini_catalog_path)
    survey = catalog.sources["living"]
    assert survey.id_column == "person_id" and survey.weight_column == "weight"
    assert survey.specific == ["health", "rent"]
    assert catalog.variable_type("living", "sex") == "category"
    assert catalog.categories("living", "municipality") == ["north", "south"]


def test_wave_pattern_captures_wave(mini_catalog_path):
    source = load_catalog(mini_catalog_path).sources["living"]
    match = source.wave_pattern().match("living/living_2023.csv")
    assert match and match.group("wave") == "2023"
    assert source.wave_pattern().match("living/other_2023.csv") is None


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(CatalogError, match="catalog file not found"):
        load_catalog(tmp_path / "nope.yaml")


def test_a_catalog_is_parsed_once_per_text_and_again_when_its_file_changes(mini_catalog_path, tmp_path, monkeypatch):
    import synth_assets.catalog.loader as loader

    parsed: list[str] = []
    parse = loader.parse_catalog
    monkeypatch.setattr(loader, "parse_catalog", lambda text, path: parsed.append(str(path)) or parse(text, path))
    monkeypatch.setattr(loader, "_PARSED", {}, raising=False)  # none parsed before
    path = tmp_path / "catalog.yaml"
    path.write_text(mini_catalog_path.read_text())
    first = load_catalog(path)
    assert load_catalog(path) is first and parsed == [str(path)]  # the definitions' and the resource's
    path.write_text(_mutated(path, lambda raw: raw["sources"]["living"].update(description="changed")))
    changed = load_catalog(path)
    assert changed is not first and changed.sources["living"].description == "changed"
    assert len(parsed) == 2
    path.write_text(_mutated(path, lambda raw: raw["sources"]["living"].update(unknown_key=1)))
    for _ in range(2):  # an invalid file is refused every time, naming itself
        with pytest.raises(CatalogError, match=str(path)):
            load_catalog(path)


def test_unknown_key_is_an_error_naming_its_location(mini_catalog_path):
    text = _mutated(mini_catalog_path, lambda c: c["sources"]["living"]["variables"]["rent"].update(colum="x"))
    with pytest.raises(CatalogError) as err:
        parse_catalog(text, mini_catalog_path)
    message = str(err.value)
    assert str(mini_catalog_path) in message
    assert "sources.living.variables.rent.colum" in message


def test_code_outside_category_set_is_rejected(mini_catalog_path):
    text = _mutated(
        mini_catalog_path, lambda c: c["sources"]["living"]["variables"]["sex"].update(codes={"F": "woman"})
    )
    with pytest.raises(CatalogError, match=r"sources.living.variables.sex: codes map to \['woman'\]"):
        parse_catalog(text, mini_catalog_path)


def test_common_variable_must_be_declared(mini_catalog_path):
    def mutate(c):
        c["sources"]["living"]["variables"]["tenure"] = {"column": "t", "role": "common"}

    with pytest.raises(CatalogError, match="'tenure' is not in common_variables"):
        parse_catalog(_mutated(mini_catalog_path, mutate), mini_catalog_path)


def test_survey_needs_weight_and_one_register(mini_catalog_path):
    def no_weight(c):
        del c["sources"]["living"]["variables"]["weight"]

    with pytest.raises(CatalogError, match="a survey needs a variable with role 'weight'"):
        parse_catalog(_mutated(mini_catalog_path, no_weight), mini_catalog_path)

    def two_registers(c):
        c["sources"]["living"]["kind"] = "register"

    with pytest.raises(CatalogError, match="exactly one source must have kind 'register'"):
        parse_catalog(_mutated(mini_catalog_path, two_registers), mini_catalog_path)


def test_path_needs_wave_placeholder(mini_catalog_path):
    text = _mutated(mini_catalog_path, lambda c: c["sources"]["living"].update(path="living/all.csv"))
    with pytest.raises(CatalogError, match=r"must contain the placeholder \{wave\}"):
        parse_catalog(text, mini_catalog_path)


def test_not_yaml(tmp_path):
    bad = tmp_path / "catalog.yaml"
    bad.write_text("sources: [unclosed")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(bad)


def test_wave_keys_must_look_like_a_wave(mini_catalog_path):
    pattern = load_catalog(mini_catalog_path).sources["register"].wave_pattern()
    for good in ("2025", "2025q1", "2025_rev"):
        assert pattern.match(f"register/register_{good}.parquet").group("wave") == good
    for bad in ("-2025", "final", "25", "2025-01", "-"):
        assert pattern.match(f"register/register_{bad}.parquet") is None, bad


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("age_typo > 3", r"release.rules\[1\] `age_typo > 3`: names no variable of the catalog: name 'age_typo'"),
        ("age >", r"release.rules\[1\] `age >`: cannot be evaluated"),
    ],
)
def test_rules_are_checked_against_the_schema_when_the_catalog_loads(mini_catalog_path, rule, message):
    text = mini_catalog_path.read_text().replace('    - "age >= 0"', f'    - "age >= 0"\n    - "{rule}"')
    assert rule in text
    mini_catalog_path.write_text(text)
    with pytest.raises(CatalogError, match=message) as info:
        load_catalog(mini_catalog_path)
    assert str(mini_catalog_path) in str(info.value)


def test_rules_on_declared_variables_load(mini_catalog_path):
    text = mini_catalog_path.read_text().replace(
        '    - "age >= 0"', '    - "age >= 0"\n    - "not (relation == \'head\' and age < 18)"\n    - "rent >= 0 or rent == -8"')
    mini_catalog_path.write_text(text)
    assert len(load_catalog(mini_catalog_path).release.rules) == 3


def test_project_catalog_rules_are_valid():
    from pathlib import Path

    catalog = load_catalog(Path(__file__).resolve().parents[2] / "data" / "catalog.yaml")
    assert len(catalog.release.rules) > 5

def _with_universe(health=None, rent=None):
    """The mini catalog with a universe on the survey and the given not_applicable values."""

    def mutate(c):
        living = c["sources"]["living"]
        living["universe"] = "age >= 16"
        living["variables"]["health"]["categories"].append("none")
        for var, value in (("health", health), ("rent", rent)):
            if value is not None:
                living["variables"][var]["not_applicable"] = value

    return mutate


def test_not_applicable_values_are_loaded(mini_catalog_path):
    catalog = parse_catalog(_mutated(mini_catalog_path, _with_universe("none", -8)), mini_catalog_path)
    variables = catalog.sources["living"].variables
    assert variables["health"].not_applicable == "none"
    assert variables["rent"].not_applicable == -8
    assert load_catalog(REPO / "data" / "catalog.yaml").sources["lfs"].variables["occupation"].not_applicable == "none"


def test_a_universe_needs_not_applicable_on_every_specific_variable(mini_catalog_path):
    text = _mutated(mini_catalog_path, _with_universe(health="none"))
    with pytest.raises(CatalogError, match=r"sources\.living\.variables\.rent: the source has a universe") as err:
        parse_catalog(text, mini_catalog_path)
    assert "sources.living.variables.health" not in str(err.value)


@pytest.mark.parametrize(
    ("health", "rent", "message"),
    [
        ("unknown", -8, r"sources\.living\.variables\.health: not_applicable 'unknown' is not in the category set"),
        ("none", -5, r"sources\.living\.variables\.rent: not_applicable -5 is outside \[0\.0, None\]"),
        ("none", "n/a", r"sources\.living\.variables\.rent: not_applicable 'n/a' is not a number"),
    ],
)
def test_not_applicable_must_be_a_value_of_the_variable(mini_catalog_path, health, rent, message):
    with pytest.raises(CatalogError, match=message):
        parse_catalog(_mutated(mini_catalog_path, _with_universe(health, rent)), mini_catalog_path)


def test_not_applicable_in_range_or_special(mini_catalog_path):
    # 0 is inside the range: a legitimate choice (e.g. zero rent) though not a special code.
    catalog = parse_catalog(_mutated(mini_catalog_path, _with_universe("none", 0)), mini_catalog_path)
    assert catalog.sources["living"].variables["rent"].not_applicable == 0


def test_not_applicable_needs_a_universe_and_a_specific_variable(mini_catalog_path):
    def without_universe(c):
        c["sources"]["living"]["variables"]["rent"]["not_applicable"] = -8

    with pytest.raises(CatalogError, match=r"sources\.living\.variables\.rent: 'not_applicable' given \(-8\) but"):
        parse_catalog(_mutated(mini_catalog_path, without_universe), mini_catalog_path)

    def on_common(c):
        _with_universe("none", -8)(c)
        c["sources"]["living"]["variables"]["age"]["not_applicable"] = 0

    with pytest.raises(CatalogError, match=r"sources\.living\.variables\.age: 'not_applicable' is only for specific"):
        parse_catalog(_mutated(mini_catalog_path, on_common), mini_catalog_path)


def _project_catalog_with_regions(tmp_path, regions) -> Path:
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "data" / "catalog.yaml").read_text(encoding="utf-8"))
    raw["release"]["regions"] = regions
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_declared_regions_split_every_category_once(tmp_path):
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "data" / "catalog.yaml")
    municipalities = catalog.common_variables["municipality"].categories
    assert catalog.region_groups() == {"all": None}  # no split declared: one region of everything
    groups = {"north": municipalities[:10], "south": municipalities[10:]}
    split = load_catalog(_project_catalog_with_regions(tmp_path, {"variable": "municipality", "groups": groups}))
    assert split.region_groups() == groups
    for regions, message in [
        ({"variable": "municipality", "groups": {"north": municipalities[:10], "south": municipalities[11:]}},
         rf"release.regions.groups: municipality \['{municipalities[10]}'\] in no region"),
        ({"variable": "municipality", "groups": {"north": municipalities, "south": municipalities[:1]}},
         rf"release.regions.groups.south: '{municipalities[0]}' is already in region 'north'"),
        ({"variable": "municipality", "groups": {"north": [*municipalities, "Atlantis"]}},
         "release.regions.groups.north: 'Atlantis' is not a category of municipality"),
        ({"variable": "age", "groups": {"young": ["0"]}}, "'age' is not a common variable with categories"),
        ({"variable": "municipality", "groups": {"north-east": municipalities}}, "letters, digits and underscores"),
    ]:
        with pytest.raises(CatalogError, match=message):
            load_catalog(_project_catalog_with_regions(tmp_path, regions))


def test_calibration_weight_bounds_are_read_and_checked(tmp_path):
    """The project's catalog bounds the weights by default; bounds that hold no weight of 1 or are
    not [lower, upper] are named when the catalog loads; null means unbounded raking."""
    from synth_assets.calibration import spec_from_catalog

    project = Path(__file__).resolve().parents[2] / "data" / "catalog.yaml"
    assert spec_from_catalog(load_catalog(project)).weight_bounds == (0.5, 2.0)
    raw = yaml.safe_load(project.read_text(encoding="utf-8"))
    path = tmp_path / "catalog.yaml"
    for bounds, message in [([1.2, 3.0], r"release.calibration.weight_bounds: expected .* got \[1.2, 3.0\]"),
                            ([0.5], "release.calibration.weight_bounds")]:
        raw["release"]["calibration"]["weight_bounds"] = bounds
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        with pytest.raises(CatalogError, match=message):
            load_catalog(path)
    raw["release"]["calibration"]["weight_bounds"] = None
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert spec_from_catalog(load_catalog(path)).weight_bounds is None


def test_a_margins_own_bands_are_read_and_checked(tmp_path):
    """A margin's ``bands`` reach its calibration margin (the project's national ages by sex); bands
    on a variable the margin lacks, or edges that do not increase, are named when the catalog loads."""
    from synth_assets.calibration import spec_from_catalog

    project = Path(__file__).resolve().parents[2] / "data" / "catalog.yaml"
    national = [m for m in spec_from_catalog(load_catalog(project)).margins if m.bands]
    assert [(m.variables, dict(m.bands)["age"]) for m in national] == [(("age", "sex"), tuple(range(91)))]
    raw = yaml.safe_load(project.read_text(encoding="utf-8"))
    path = tmp_path / "catalog.yaml"
    for bands, message in [({"household_size": [1, 3]}, r"margins\[1\].bands: 'household_size' is not one of"),
                           ({"age": [18, 5]}, r"margins\[1\].bands.age: edges must increase")]:
        raw["release"]["calibration"]["margins"][1]["bands"] = bands
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        with pytest.raises(CatalogError, match=message):
            load_catalog(path)
