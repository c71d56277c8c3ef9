"""Static PNG/SVG/PDF export of any plotly figure, and self-contained interactive HTML, offline.

Here: `export_figure()`, `find_browser()` and `save_html()` (one HTML file, plotly.js inline). Static export
goes through kaleido (>= 1.0), which renders with a local Chrome/Chromium (plotly.js comes from the installed
plotly package, so no network is needed). kaleido finds the browser through the BROWSER_PATH environment
variable; `find_browser()` sets it to the first of $BROWSER_PATH, /usr/bin/chromium (Debian's `chromium`
package), chromium, chromium-browser, google-chrome.
Not here: building figures (`workbench.plots.attention`).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

FORMATS = ("png", "svg", "pdf", "jpeg", "webp")
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class ExportUnavailable(RuntimeError):
    """Static export cannot run here (no kaleido or no browser)."""


def find_browser() -> str:
    """Path of a Chrome/Chromium for kaleido; sets BROWSER_PATH. Raises ExportUnavailable naming the fix."""
    given = os.environ.get("BROWSER_PATH")
    if given:
        if not (Path(given).is_file() and os.access(given, os.X_OK)):
            raise ExportUnavailable(f"BROWSER_PATH={given!r} is not an executable file: point it at a "
                                    "Chrome/Chromium binary or unset it")
        return given
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            os.environ["BROWSER_PATH"] = path
            return path
    raise ExportUnavailable("static export needs a Chrome/Chromium browser and none was found: on Debian/Ubuntu "
                            "run `apt-get install chromium` (or set BROWSER_PATH=/path/to/chrome); "
                            "interactive figures work without it")


def export_figure(fig, path: str | Path, width: int | None = None, height: int | None = None,
                  scale: float = 2.0) -> Path:
    """Write `fig` as a static image; the format follows the file suffix (.png, .svg, .pdf, ...).

    `scale` multiplies the pixel density of raster formats (2 = sharp on paper).
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"cannot export to {path.name!r}: use one of the suffixes {', '.join('.' + f for f in FORMATS)}")
    try:
        import kaleido  # noqa: F401  (plotly calls it; imported here to give a clear message when missing)
    except ImportError as e:
        raise ExportUnavailable("static export needs kaleido: `pip install 'kaleido>=1.0'`") from e
    find_browser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_image(str(path), format=fmt, width=width, height=height, scale=scale)
    return path


def save_html(fig, path) -> Path:
    """Write `fig` as one self-contained HTML file: plotly.js and the data inline, no network and no kernel
    needed to open it or to move its sliders (e.g. `attention_slider`). Returns the path (".html" added when
    missing). About 4.7 MB of plotly.js plus the data."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        path = path.with_suffix(".html")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True, auto_open=False)
    return path
