"""The real Dagster UI, driven in headless Chromium: every stage is shown, a wave materialises.

A tiny demo (1,500 persons) in a temporary data root and a temporary DAGSTER_HOME; the
webserver (no daemon) runs as a subprocess on a free loopback port and loads the code
location from ``workspace.yaml`` with ``SYNTH_ASSETS_DATA`` pointing at the temporary root.
Playwright drives Debian's Chromium (``/usr/bin/chromium``; a browser download is not
possible on these machines). Screenshots go to ``$SYNTH_ASSETS_SCREENSHOTS`` when set,
otherwise to the test's tmp_path.

Skips when Chromium or the ``playwright`` package is missing. One test function on
purpose: under ``pytest -n 2`` tests of one module may land on different workers, and
each would start its own webserver.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from synth_assets_tests.defs.conftest import tiny_catalog
from synth_assets_tests.processes import _default_signals, _free_port, _log_tail, _serving, _stop

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY_PERSONS = 1500
WAVE = "2024"
JOB = "ingest_register"

# Stages of the pipeline (asset groups) and, per stage, assets the UI must show by name.
STAGES = ["ingest", "harmonise", "matching", "synthesis", "calibration", "validation", "publication"]
NAMED_ASSETS = ["raw_register", "harmonised_silc", "matched_dataset", "population_model",
                "fictitious_dataset", "validation_report", "public_dataset"]

SERVER_START_TIMEOUT_S = 120
RUN_TIMEOUT_S = 180
UI_TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1920, "height": 1400}
# The flags the machine probe used; without the background-networking ones Chromium keeps
# trying to reach Google's hosts through a closed network. Playwright makes the fresh
# profile itself (launch_persistent_context on an empty folder): it refuses --user-data-dir.
# --disable-dev-shm-usage: Debian's launcher means to add it when /dev/shm is small (as in
# containers) but its check breaks when findmnt prints more than one line; harmless otherwise.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


def _find_chromium() -> str | None:
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


CHROMIUM = _find_chromium()
if CHROMIUM is None:
    pytest.skip("Chromium not installed (/usr/bin/chromium; Debian package `chromium`): UI test skipped",
                allow_module_level=True)
try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:
    pytest.skip("the `playwright` Python package is not installed: UI test skipped", allow_module_level=True)

expect.set_options(timeout=UI_TIMEOUT_MS)  # assertions wait as long as actions (default 5 s)


# --------------------------------------------------------------------------- instance


@dataclass
class UIInstance:
    data_root: Path
    dagster_home: Path
    groups: dict[str, list[str]]  # asset group -> asset names, from the definitions themselves


def _instance_config() -> dict:
    """The repo's dagster.yaml, but runs launched from the UI start without the daemon.

    The repo's run limits (``concurrency.runs``) make the QueuedRunCoordinator, which only the daemon dequeues;
    a daemon would also start ``incoming_waves_sensor`` (default RUNNING) and the release
    automation, i.e. unasked runs. So: same settings, DefaultRunCoordinator (a run submitted
    by the UI is launched at once, a subprocess per run). Dagster refuses run-queue settings
    next to ``run_coordinator``, hence they are dropped; the pool limits stay.
    """
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config.pop("run_queue", None)
    config.get("concurrency", {}).pop("runs", None)
    config["run_coordinator"] = {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"}
    assert config.get("telemetry", {}).get("enabled") is False, "dagster.yaml should switch telemetry off"
    return config


@pytest.fixture
def ui_instance(tmp_path: Path) -> UIInstance:
    import dagster as dg

    from synth_assets.catalog import load_catalog
    from synth_assets.common.layout import DataLayout
    from synth_assets.defs.definitions import build_definitions
    from synth_assets.demo import generate_demo
    from synth_assets.operations.runner import register_waves

    source = tmp_path / "demo"
    generate_demo(source, persons=TINY_PERSONS)
    data_root = tmp_path / "data"
    shutil.copytree(source / "incoming", data_root / "incoming")
    tiny_catalog(data_root / "catalog.yaml")

    home = (tmp_path / "dagster_home").resolve()  # DAGSTER_HOME must be absolute
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(_instance_config(), sort_keys=False))

    layout = DataLayout(data_root)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        waves = register_waves(instance, load_catalog(layout.catalog), layout)
    assert WAVE in waves["register"], waves

    graph = build_definitions(data_root).resolve_asset_graph()
    groups: dict[str, list[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, []).append(key.to_user_string())
    assert sorted(groups) == sorted(STAGES), groups
    return UIInstance(data_root, home, {g: sorted(a) for g, a in groups.items()})


# --------------------------------------------------------------------------- webserver


@dataclass
class Webserver:
    url: str
    process: subprocess.Popen
    log: Path


@pytest.fixture
def webserver(ui_instance: UIInstance, tmp_path: Path):
    env = {
        **os.environ,
        "DAGSTER_HOME": str(ui_instance.dagster_home),
        "SYNTH_ASSETS_DATA": str(ui_instance.data_root),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "webserver.log"
    server = None
    for _attempt in range(3):  # a free port can be taken between the probe and the bind
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port),
                 "-w", str(REPO / "workspace.yaml")],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=_default_signals, start_new_session=True,
            )
        server = Webserver(url, process, log)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None and not _serving(url):
            time.sleep(0.5)
        if process.poll() is None and _serving(url):
            break
        _stop(process)
        if "address already in use" not in log.read_text(errors="replace").lower():
            pytest.fail(f"dagster-webserver did not answer {url}/server_info within "
                        f"{SERVER_START_TIMEOUT_S} s; log tail:\n{_log_tail(log)}")
    else:
        pytest.fail(f"dagster-webserver found no free port; log tail:\n{_log_tail(log)}")
    try:
        yield server
    finally:
        _stop(server.process)


# --------------------------------------------------------------------------- browser


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SYNTH_ASSETS_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(webserver: Webserver, tmp_path: Path):
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # fresh and empty
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport=VIEWPORT, base_url=webserver.url, timeout=60_000,
        )
        try:
            context.set_default_timeout(UI_TIMEOUT_MS)
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"]), (path, width, height)
    assert len(data) > 10_000, f"{path} is only {len(data)} bytes: a blank page?"


def _screenshot(page: Page, folder: Path, name: str) -> Path:
    path = folder / name
    page.screenshot(path=str(path))
    _assert_png(path)
    return path


def _wait_still(locator, timeout_s: float = 5.0) -> None:
    """Poll until an element stops moving (the graph animates its zoom)."""
    deadline = time.monotonic() + timeout_s
    previous = None
    while time.monotonic() < deadline:
        box = locator.bounding_box()
        if box is not None and box == previous:
            return
        previous = box
        time.sleep(0.2)


# --------------------------------------------------------------------------- the test


def test_ui_shows_every_stage_and_materialises_a_register_wave(
    page: Page, webserver: Webserver, ui_instance: UIInstance, screenshots: Path
):
    try:
        _check_stages(page, ui_instance, screenshots)
        run_id = _launch_ingest_run(page)
        _check_run_succeeded(page, run_id, screenshots)
        _check_asset_materialised(page, run_id, ui_instance, screenshots)
    except BaseException:
        try:
            page.screenshot(path=str(screenshots / "failure.png"))
        finally:
            print(f"webserver log tail ({webserver.log}):\n{_log_tail(webserver.log)}")
        raise


def _dismiss_community_prompt(page: Page) -> None:
    # On 127.0.0.1 a new instance greets the user with a "Join the Dagster community" modal
    # that covers the page. Mark it seen server-side (the UI's own mutation), and keep a
    # handler that clicks "Skip" should it show up anyway.
    response = page.request.post("/graphql", data={"query": "mutation SetNuxSeen { setNuxSeen }"})
    assert response.ok, response.text()
    prompt = page.get_by_role("dialog").filter(has_text="Join the Dagster community")
    page.add_locator_handler(prompt, lambda p: p.get_by_role("button", name="Skip", exact=True).click())


def _check_stages(page: Page, ui: UIInstance, screenshots: Path) -> None:
    _dismiss_community_prompt(page)

    # 1. The global lineage: one collapsed node per stage (asset group) in the graph canvas, then
    #    the whole graph, groups expanded (on the same page: each page load costs seconds).
    page.goto("/asset-groups")
    canvas = page.locator("svg").filter(has=page.locator("foreignObject"))
    expect(canvas.get_by_text("publication", exact=True)).to_be_visible(timeout=60_000)  # code location loaded
    for stage in STAGES:
        expect(canvas.get_by_text(stage, exact=True), f"stage {stage} in the lineage graph").to_be_visible()
    _screenshot(page, screenshots, "01_lineage_stages.png")
    page.get_by_role("button", name="settings", exact=True).click()
    toggle = page.get_by_role("menuitem", name=re.compile(r"(Expand|Collapse) all groups"))
    if "Expand" in toggle.inner_text():
        toggle.click()
    page.keyboard.press("Escape")
    expect(canvas.get_by_text("matched_dataset", exact=True), "groups expanded").to_be_visible()
    zoom_out = page.get_by_role("button", name="zoom_out", exact=True)
    if zoom_out.count() == 1:  # cosmetic: fit the expanded graph in the screenshot
        zoom_out.click()
    _wait_still(canvas.get_by_text("matched_dataset", exact=True))
    _screenshot(page, screenshots, "02_asset_graph.png")

    # 2. Every asset of the definitions under its stage (each group's list page; the global
    #    catalog list is virtualised and the zoomed-out graph truncates long names).
    for stage in STAGES:
        page.goto(f"/locations/synth_assets/asset-groups/{stage}/list")
        for asset in ui.groups[stage]:
            expect(page.get_by_text(asset, exact=True).filter(visible=True),
                   f"asset {asset} listed in group {stage}").to_be_visible()

    # 3. The named assets of every stage as nodes of their stage's graph (the whole graph no
    #    longer fits one screen: the canvas renders only the nodes in view), one page per stage.
    by_stage: dict[str, list[str]] = {}
    for asset in NAMED_ASSETS:
        by_stage.setdefault(next(group for group, assets in ui.groups.items() if asset in assets), []).append(asset)
    for stage, assets in by_stage.items():
        page.goto(f"/locations/synth_assets/asset-groups/{stage}")
        for asset in assets:
            expect(canvas.get_by_text(asset, exact=True), f"asset {asset} in the {stage} graph").to_be_visible()


def _launch_ingest_run(page: Page) -> str:
    """Materialise the register's wave 2024 from the job page, through the partition dialog.

    Done the way a user does it ("Materialize all…", pick the partition, "Launch 1 run")
    rather than through the GraphQL LaunchRun mutation: the dialog is what the UI test
    should cover, and one partition of a partitioned job gives a plain run (a backfill
    would need the daemon). Returns the short run id from the "Launched run" toast.
    """
    page.goto(f"/locations/synth_assets/jobs/{JOB}")
    page.get_by_role("button", name=re.compile(r"Materialize all")).click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    expect(dialog).to_be_visible()
    dialog.get_by_text("Select a partition or create one").click()
    option = page.locator("li").filter(has=page.locator(f'[title="{WAVE}"]'))
    option.click()
    expect(option.get_by_role("checkbox")).to_be_checked()
    dialog.get_by_text("Launch runs to materialize").click()  # closes the partition picker
    launch = dialog.get_by_role("button", name="Launch 1 run", exact=True)
    expect(launch).to_be_enabled()
    launch.click()
    toast = page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}$"))
    expect(toast).to_be_visible()
    return toast.inner_text().split()[-1]


def _run_row(page: Page, short_id: str):
    # Innermost element holding the run's id link and its job: the row of the runs table.
    link = page.locator(f'a[href^="/runs/{short_id}"]')
    return page.locator("div").filter(has=link).filter(has_text=JOB).filter(has_text=f"partition: {WAVE}").last


def _check_run_succeeded(page: Page, short_id: str, screenshots: Path) -> None:
    page.goto("/runs")
    row = _run_row(page, short_id)
    expect(row).to_be_visible()
    row.locator(f'a[href^="/runs/{short_id}"]').first.click()
    expect(page).to_have_url(re.compile(rf"/runs/{short_id}[0-9a-f-]+"))
    expect(page.get_by_text(f"partition: {WAVE}", exact=True).first).to_be_visible()

    # The run page follows the run live; reload between bounded waits in case an update is missed.
    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        try:
            expect(status).to_be_visible(timeout=15_000)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(f"run {short_id} not finished within {RUN_TIMEOUT_S} s") from None
            page.reload()
    assert status.inner_text() == "Success", f"run {short_id} ended as {status.inner_text()}"
    _screenshot(page, screenshots, "03_run_success.png")

    # The same result on the Runs page.
    page.goto("/runs")
    row = _run_row(page, short_id)
    expect(row.get_by_text("Success", exact=True)).to_be_visible()
    _screenshot(page, screenshots, "04_runs.png")


def _check_asset_materialised(page: Page, short_id: str, ui: UIInstance, screenshots: Path) -> None:
    for asset in ("raw_register", "harmonised_register"):
        page.goto(f"/assets/{asset}")
        expect(page.get_by_text("Latest materialization", exact=True)).to_be_visible()
        # The latest materialisation links to our run and to partition 2024.
        expect(page.locator(f'a[href^="/runs/{short_id}"]').first, f"{asset} materialised by run {short_id}") \
            .to_be_visible()
        expect(page.locator(f'a[href*="partition={WAVE}"]').first).to_be_visible()
        if asset == "raw_register":
            # The run read the temporary data root (SYNTH_ASSETS_DATA reached the code location).
            delivered = ui.data_root / "incoming" / "register" / f"register_{WAVE}.parquet"
            expect(page.get_by_text(str(delivered), exact=True).first).to_be_visible()
            _screenshot(page, screenshots, "05_raw_register.png")
    written = sorted(p.name for p in (ui.data_root / "warehouse").rglob(f"*{WAVE}*"))
    assert written, f"nothing written under {ui.data_root / 'warehouse'}"
