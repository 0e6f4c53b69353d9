"""`hostctl report --html` opened in a real headless Chromium (Debian's, driven by
Playwright; no browser is ever downloaded): the page loads with no console error and
no network request, every plot renders, the table sorts, it fits a 1280 px window
and prints; the screenshot is kept in the test's directory.

The results are real: the digits CNN's variants profiled on this machine under two
device ids, one of them reading a recorded Raspberry Pi's thermal zone and clocks,
one result in sustained mode (its timeline)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hostctl.provenance import vouch_local
from hostctl.report_html import RESULTS_ELEMENT_ID
from hostctl.store import ResultStore
from modelkit import demo_digits
from profiler.runner import profile
from profiler.settings import ProfileSettings
from tests.integration.fleet_support import subprocess_env
from tests.support.boards import PI5

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What Chromium needs to start here as root, headless, and to stay off the network
# (the machine facts): no sandbox, no GPU, no background or component traffic.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LABEL = "browser"
PLOTS = ("pareto", "latency", "size", "ecdf", "env", "timeline")


def _need_chromium() -> None:
    if os.access(CHROMIUM, os.X_OK):
        return
    message = f"no Chromium at {CHROMIUM}: apt-get install chromium (scripts/test does)"
    if os.environ.get("EDGEPROF_REQUIRE_CHROMIUM"):
        pytest.fail(message)  # in CI the browser is installed: its absence is a failure
    pytest.skip(message)


def _pi_root(root: Path) -> Path:
    """A Raspberry Pi 5's recorded tree with a thermal zone at 51.5 °C and its clocks."""
    PI5.write(root)
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("51500\n")
    for cpu in range(4):
        base = root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        base.mkdir(parents=True)
        (base / "scaling_cur_freq").write_text("2400000\n")
        (base / "scaling_max_freq").write_text("2400000\n")
        (base / "scaling_governor").write_text("ondemand\n")
    return root


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML report of real results, written by `hostctl report` from a store."""
    from modelkit.variants import make_variants

    work = tmp_path_factory.mktemp("report")
    outcomes = make_variants(
        demo_digits.model_path("tflite"),
        work / "variants",
        calibration=demo_digits.calibration_path(),
        kinds=["fp32", "blq", "prn"],
        eval_data=demo_digits.eval_path(),
    )
    files = [o.path for o in outcomes if o.path is not None]
    short = ProfileSettings(
        runs=30,
        warmup=2,
        warmup_seconds=0.0,
        min_seconds=0.3,
        max_seconds=3.0,
        threads=1,
        eval_path=str(demo_digits.eval_path()),
    )
    pi = _pi_root(work / "pi5")
    db = work / "results.sqlite"
    with ResultStore(db) as store:
        for device, root in (("pi5-lab", str(pi)), ("x86-ci", "/")):
            for path in files:
                doc = profile(path, short, label=LABEL, device_id=device, root=root)
                store.add(vouch_local(doc, path))
        sustained = ProfileSettings(threads=1, warmup=2, warmup_seconds=0.0, sustained_s=3.0)
        doc = profile(files[1], sustained, label=LABEL, device_id="pi5-soak", root=str(pi))
        store.add(vouch_local(doc, files[1]))
    page = work / "study.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hostctl",
            "--db",
            str(db),
            "report",
            "--label",
            LABEL,
            "--html",
            str(page),
            "--title",
            "browser test",
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"report written to {page}" in done.stderr
    return page


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    profile_dir = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def test_the_report_renders_offline_in_chromium(
    report_page: Path, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page()
    console: list[tuple[str, str]] = []
    requests: list[str] = []
    page.on("console", lambda m: console.append((m.type, m.text)))
    page.on("pageerror", lambda e: console.append(("pageerror", str(e))))
    page.on("request", lambda r: requests.append(r.url))
    url = report_page.as_uri()
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)  # anything the page would fetch late has had its chance

    assert [m for m in console if m[0] in ("error", "pageerror", "warning")] == []
    assert requests == [url]  # the file itself, and nothing else

    # Every plot is drawn: an SVG with real size, axes text kept as text, marks on it.
    plots = page.eval_on_selector_all(
        "figure.plot",
        """els => els.map(f => {
            const svg = f.querySelector('svg');
            const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
            return {key: f.dataset.plot, width: box.width, height: box.height,
                    texts: svg ? Array.from(svg.querySelectorAll('text'))
                        .map(t => t.textContent.trim()).filter(t => t).length : 0,
                    marks: svg ? svg.querySelectorAll('path, use, rect').length : 0};
        })""",
    )
    assert sorted({p["key"] for p in plots}) == sorted(PLOTS)
    for plot in plots:
        assert plot["width"] > 300 and plot["height"] > 150, plot
        assert plot["texts"] >= 5 and plot["marks"] >= 5, plot
    assert page.locator(".missing").count() == 0  # nothing said "not plotted"
    svg_text = page.locator('figure[data-plot="env"] svg').text_content() or ""
    assert "CPU temperature" in svg_text and "no reading" not in svg_text

    # The raw documents are in the page, as JSON.
    docs = json.loads(page.locator(f"script#{RESULTS_ELEMENT_ID}").inner_text())
    assert len(docs) == 7 and all(d["label"] == LABEL for d in docs)

    # The study table sorts by p50 (a click), and back (another).
    table = page.locator("table.study").first
    header = table.locator("th", has_text="p50")
    values = 'els => els.map(td => parseFloat(td.getAttribute("data-v")))'
    column = list(_titles(page)).index(header.inner_text().strip()) + 1
    cells = f"tbody tr td:nth-child({column})"
    header.click()
    ascending = table.locator(cells).evaluate_all(values)
    assert ascending == sorted(ascending) and len(ascending) >= 6
    header.click()
    assert table.locator(cells).evaluate_all(values) == sorted(ascending, reverse=True)

    # Readable at 1280 px: nothing wider than the window.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    # Printable: Chromium lays it out on pages.
    pdf = page.pdf(format="A4", landscape=True, print_background=True)
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 3
    page.close()


def _titles(page: Any) -> list[str]:
    texts = page.locator("table.study").first.locator("thead th").all_inner_texts()
    return [str(t).strip() for t in texts]
