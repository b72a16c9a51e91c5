"""The Content-Security-Policy (django-csp), and what the one page that needs more may add.

Every page takes its scripts and styles from this server's static files only: no inline script,
no event-handler attributes, no style="" attributes in our templates (data reaches scripts
through json_script, run colours through data attributes). Plotly.js is the exception that
needs care, because it styles what it draws itself:

- it creates <style> elements at run time: its own (empty; the rules go in through the CSSOM,
  which CSP does not restrict) and the MapLibre stylesheet bundled into plotly.min.js;
- it turns the pseudo-HTML of chart text (<b>, <i>, <sub>...) into style="" attributes with a
  fixed value per tag, and clears a colour bar's fills with style="".

A nonce cannot help, since Plotly creates these elements and attributes itself and never sets
one. Their contents are fixed by the Plotly.js version, so each is allowed by its sha256 (for
attributes, with 'unsafe-hashes', which admits exactly these values and nothing else);
tests/test_csp.py recomputes them from the installed plotly.min.js, so an upgrade that changes
them fails there first. Text a user wrote is escaped before Plotly sees it, and a style it might
still carry has no allowed hash.
"""

from __future__ import annotations

import base64
import hashlib

from csp.constants import NONE, SELF, UNSAFE_EVAL, UNSAFE_HASHES


def sha256_source(text: str) -> str:
    """A CSP hash source for an inline <style> or style="" whose content is exactly `text`."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


# The MapLibre stylesheet that plotly.min.js (4.x) inserts as one <style> when it loads. We draw no
# maps, but it is inserted on every page with a chart; allowing it keeps the console clean.
PLOTLY_MAPLIBRE_STYLE_SHA256 = "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='"
# The values Plotly writes into style="" for the pseudo-HTML tags of chart text, and "".
PLOTLY_TEXT_STYLES = (
    "",
    "font-size:70%",
    "text-decoration:line-through",
    "text-decoration:underline",
    "font-weight:bold",
    "font-style:italic",
    "cursor:pointer",
    "font-style:italic;font-weight:bold",
)

CSP_DIRECTIVES: dict[str, list[str]] = {
    "default-src": [SELF],
    "script-src": [SELF],
    "style-src": [SELF],
    "style-src-elem": [SELF, sha256_source(""), PLOTLY_MAPLIBRE_STYLE_SHA256],
    "style-src-attr": [UNSAFE_HASHES, *(sha256_source(style) for style in PLOTLY_TEXT_STYLES)],
    # Plotly's mode-bar icons and exported PNGs are data: and blob: URLs.
    "img-src": [SELF, "data:", "blob:"],
    "font-src": [SELF],
    "connect-src": [SELF],
    "object-src": [NONE],
    "base-uri": [SELF],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
}

# Parallel coordinates (the compare page only) draw with WebGL through regl, which compiles its
# drawing code with `new Function`: that page alone allows 'unsafe-eval'. Every other chart is
# SVG and needs no eval.
PARALLEL_COORDINATES = {"script-src": [SELF, UNSAFE_EVAL]}


def swagger_ui_policy() -> dict[str, list[str]]:
    """What the API docs page adds: drf-spectacular's Swagger UI page carries one fixed <style>
    block of its own, allowed by its hash (read from the installed template, so it follows
    upgrades). Its script is served as a file by SpectacularSwaggerSplitView."""
    import re
    from pathlib import Path

    import drf_spectacular

    template = Path(drf_spectacular.__file__).parent / "templates" / "drf_spectacular" / "swagger_ui.html"
    styles = re.findall(r"<style>(.*?)</style>", template.read_text(), flags=re.DOTALL)
    return {"style-src-elem": [sha256_source(style) for style in styles]}
