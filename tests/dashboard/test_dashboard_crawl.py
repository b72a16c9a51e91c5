"""Every page reachable by links from the home page, with the demo data, answers and is
well-formed HTML: each closing tag closes the element it names, nothing is left open."""

from html.parser import HTMLParser
from io import StringIO
from urllib.parse import urldefrag, urlsplit

import pytest
from django.core.management import call_command

from tracker.models import Run

pytestmark = pytest.mark.django_db

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Elements whose closing tag HTML lets a page leave out.
OPTIONAL_END = {"p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot"}


class _Structure(HTMLParser):
    """Collects the links of a page and every place its tags do not nest."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and ("aria-disabled", "true") not in attrs:  # a disabled link is no link
            self.links += [value for name, value in attrs if name == "href" and value]
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"</{tag}> closes a void element (line {self.getpos()[0]})")
            return
        if tag not in self.open:
            self.problems.append(f"</{tag}> closes nothing open (line {self.getpos()[0]})")
            return
        while (top := self.open.pop()) != tag:
            if top not in OPTIONAL_END:
                self.problems.append(f"<{top}> is left open by </{tag}> (line {self.getpos()[0]})")

    def close(self) -> None:
        super().close()
        self.problems += [f"<{tag}> is never closed" for tag in self.open if tag not in OPTIONAL_END]


def _structure(html: str) -> _Structure:
    parser = _Structure()
    parser.feed(html)
    parser.close()
    return parser


# Links the crawl does not follow: they sign out, download, or are a page of a page already seen.
SKIPPED = ("/accounts/logout", "/static/", "/api/", "/media/")
SKIPPED_PARTS = ("download", "export", "/artifacts/")


def _followed(link: str) -> str | None:
    link = urldefrag(link).url
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    if link.startswith(SKIPPED) or any(part in parts.path for part in SKIPPED_PARTS):
        return None
    return link


def test_every_linked_page_answers_with_well_formed_html(admin_client):
    call_command("seed_demo", "--quick", stdout=StringIO())
    # The compare page is reached by ticking runs (a script builds its link): start there too.
    runs = "&".join(f"runs={run.uuid}" for run in Run.objects.order_by("pk")[:4])
    seen, queue, failures = set(), [("/", ""), (f"/compare/?{runs}", "")], []
    while queue and len(seen) < 400:
        url, found_on = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        response = admin_client.get(url)
        if response.status_code in (301, 302):
            queue.append((response["Location"], url))
            continue
        if response.status_code != 200:
            failures.append(f"{url} (linked from {found_on}): HTTP {response.status_code}")
            continue
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        page = _structure(response.content.decode())
        failures += [f"{url}: {problem}" for problem in page.problems]
        queue += [(link, url) for link in map(_followed, page.links) if link and link not in seen]
    assert not failures, "\n".join(failures)
    assert len(seen) > 40, sorted(seen)
