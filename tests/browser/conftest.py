"""The browser tier: the gateway's web UI in a real headless Chromium, driven by Playwright.

The browser is Debian's Chromium at /usr/bin/chromium (`.ci/run` installs it when missing); Playwright's
own browser download is never used. One browser per session; every test gets fresh contexts (no shared
cookies or storage) from `open_ui`, and each page is watched by a `PageProbe`: console errors, uncaught
exceptions, Content-Security-Policy violations and failed requests fail the test unless the test
declared them as the ones it provokes. The composed stack (`stack`, `api`, `stack_env`) comes from the
tests.support.composed_stack plugin.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    async_playwright,
    expect,
)

from tests.support.stack import Stack

CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = Path(__file__).parent / "vendor" / "axe.min.js"
DESKTOP = {"width": 1366, "height": 900}
# Two cores shared by the whole stack: an assertion waits up to 10 s for the page to get there.
expect.set_options(timeout=10_000)

# Recorded in the page before any of its scripts run: a CSP violation fires this DOM event (besides the
# console message), so a refused inline style or script is caught even when nothing is logged.
_CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
});
"""


@dataclass
class PageProbe:
    """What went wrong in one page; `allowed_statuses` are the HTTP errors the test provokes itself."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    allowed_statuses: set[int] = field(default_factory=set)

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        # Chromium logs every HTTP error response as "Failed to load resource: ... status of NNN".
        status = re.search(r"status of (\d{3})", msg.text)
        if status and int(status.group(1)) in self.allowed_statuses:
            return
        self.console_errors.append(f"{msg.text} @ {msg.location.get('url')}")

    def on_response(self, response: Response) -> None:
        if response.status >= 400 and response.status not in self.allowed_statuses:
            self.failed_requests.append(f"{response.request.method} {response.url} -> {response.status}")

    def on_request_failed(self, request: Request) -> None:
        failure = request.failure or ""
        # Aborted by the page itself (a stream closed when another task is chosen, a fetch cut short by
        # leaving the page), not refused or dropped by the server.
        if "ERR_ABORTED" in failure:
            return
        self.failed_requests.append(f"{request.method} {request.url}: {failure}")

    async def assert_clean(self, page: Page) -> None:
        csp = [] if page.is_closed() else await page.evaluate("window.__cspViolations || []")
        problems = {
            "console errors": self.console_errors,
            "uncaught exceptions": self.page_errors,
            "CSP violations": csp,
            "failed requests": self.failed_requests,
        }
        assert not any(problems.values()), {k: v for k, v in problems.items() if v}


OpenUi = Callable[..., Awaitable[tuple[Page, PageProbe]]]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    # A missing browser fails the tier (CI installs it), it never skips it silently.
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (as .ci/run does)"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        await browser.close()


@pytest.fixture
def ui_url(stack: Stack, stack_env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{stack_env['DP_HTTP_PORT']}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ui-screenshots",
        default=None,
        help="directory the browser tests write their screenshots to (`make screenshots`: docs/ui)",
    )


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = request.config.getoption("--ui-screenshots")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("ui-screenshots")


@pytest.fixture
async def open_ui(browser: Browser) -> AsyncIterator[OpenUi]:
    """Opens a URL in a fresh context; at teardown every page opened must have stayed clean."""
    opened: list[tuple[BrowserContext, Page, PageProbe]] = []

    async def open_(
        url: str,
        *,
        viewport: dict[str, int] | None = None,
        bypass_csp: bool = False,
        allowed_statuses: tuple[int, ...] = (),
    ) -> tuple[Page, PageProbe]:
        context = await browser.new_context(viewport=viewport or DESKTOP, bypass_csp=bypass_csp)
        context.set_default_timeout(15_000)
        await context.add_init_script(_CSP_RECORDER)
        page = await context.new_page()
        probe = PageProbe(allowed_statuses=set(allowed_statuses))
        page.on("console", probe.on_console)
        page.on("pageerror", lambda exc: probe.page_errors.append(str(exc)))
        page.on("response", probe.on_response)
        page.on("requestfailed", probe.on_request_failed)
        opened.append((context, page, probe))
        await page.goto(url)
        return page, probe

    yield open_
    try:
        for _, page, probe in opened:
            await probe.assert_clean(page)
    finally:
        for context, _, _ in opened:
            await context.close()


async def run_axe(page: Page) -> list[dict[str, object]]:
    """axe-core's serious and critical violations on the page as it is now.

    The vendored script is added as a <script> element, which the UI's CSP (script-src 'self') refuses;
    so only the pages opened for this check use a context with `bypass_csp=True`, and the tests that
    assert "no CSP violation" keep the policy enforced.
    """
    await page.add_script_tag(path=str(AXE_JS))
    result = await page.evaluate(
        """async () => {
          const r = await axe.run(document, { resultTypes: ["violations"] });
          return r.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary),
          }));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


async def open_event_history(page: Page) -> None:
    """Open the run view's Event history section as a user does, by its summary. While a run is live the
    pane above it grows (log lines, files), so a click can land while the summary moves under it (seen
    once in a full run: the section stayed closed); a second click is given then, never a third."""
    box = page.locator("#timeline-box")
    for _ in range(2):
        await box.locator("summary").click()
        if await box.evaluate("b => b.open"):
            return
    await expect(box).to_have_js_property("open", True)
