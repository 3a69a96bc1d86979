"""The report as a person sees it: made on demand on the local cloud with `supportlens report`,
opened in headless Chromium, which must load its three charts and paint them.

Chromium comes from Debian's `chromium` package. When it is missing the test installs it
(`apt-get install -y chromium`, as root with apt-get) and skips, saying why, only if it cannot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

SAMPLES = ROOT / "events" / "samples"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio"]
COUNT_IMAGES = """<script>
window.addEventListener('load', () => {
  const loaded = [...document.images].filter(i => i.complete && i.naturalWidth > 0);
  document.body.setAttribute('data-images', document.images.length);
  document.body.setAttribute('data-loaded', loaded.length);
  document.body.setAttribute('data-widths', loaded.map(i => i.naturalWidth).join(','));
});
</script></body>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def install_chromium() -> str | None:
    """Debian's chromium, when this process may install packages (root + apt-get)."""
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "chromium"]
    if subprocess.run(install, env=env, capture_output=True, timeout=1200).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(install, env=env, capture_output=True, timeout=1200)
    return find_chromium()


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium() or install_chromium()
    if not found:
        pytest.skip("headless Chromium is not installed and cannot be installed here "
                    "(needs root and apt-get: run `apt-get install -y chromium`)")
    return found


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180)


def pixel_shares(png: Path) -> tuple[float, float]:
    """(non-white share, coloured share) of a screenshot: text and tables are black on white,
    the charts are the only coloured things on the page."""
    import matplotlib.image as mpimg

    pixels = mpimg.imread(str(png))[..., :3]
    non_white = float((pixels.min(axis=2) < 0.94).mean())
    coloured = float(((pixels.max(axis=2) - pixels.min(axis=2)) > 0.3).mean())  # the pale notice box is not
    return non_white, coloured


@pytest.fixture(scope="module")
def report_page(cloud, tmp_path_factory) -> tuple[Path, dict]:
    """Call logs, helpdesk tickets and escalation cases uploaded to the local cloud, then the report made on demand."""
    files = [str(SAMPLES / name) for name in ("calls_sample.csv", "helpdesk_sample.jsonl", "escalations_sample.csv")]
    done = cloud.cli("upload", *files, "--wait", "--json", "--timeout", "300", check=False)
    assert done.returncode == 3, done.stderr  # complete, with quarantined rows (the samples hold some bad ones)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["status"] for r in rows] == ["complete"] * 3, rows
    out = tmp_path_factory.mktemp("report")
    result = json.loads(cloud.cli("report", "--period", "7d", "--out", str(out), "--json").stdout)
    assert result["volume"] == sum(r["tickets_stored"] for r in rows)
    return Path(result["files"][1]), result


def test_report_displays_with_its_charts(chromium, report_page, tmp_path):
    page, result = report_page
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 5  # volume, sentiment, heatmap, escalation/abuse trend, FTDS
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", COUNT_IMAGES))
    dom = run_chromium(chromium, tmp_path / "profile1", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stdout[:500]
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
    assert attrs.get("images") == "5" and attrs.get("loaded") == "5", attrs
    assert all(int(w) >= 300 for w in attrs["widths"].split(","))  # real charts, not broken-image icons
    assert "Agent performance" in dom.stdout and "Delivery outcomes (FTDS)" in dom.stdout
    assert "A-17" in dom.stdout  # the call-log / helpdesk agent appears in the tables

    shots = {}
    for name, source in (("with", html), ("without", re.sub(r"<img [^>]*>", "", html))):
        doc = tmp_path / f"{name}.html"
        doc.write_text(source)
        png = tmp_path / f"{name}.png"
        shot = run_chromium(chromium, tmp_path / f"profile-{name}", "--window-size=1000,8000", f"--screenshot={png}", doc.as_uri())
        assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
        shots[name] = pixel_shares(png)
    # The page is painted (text and tables), and the charts are what puts colour on it.
    assert shots["without"][0] > 0.01 and shots["with"][0] > shots["without"][0] + 0.01, shots
    assert shots["with"][1] > 0.005 and shots["without"][1] < 0.001, shots
