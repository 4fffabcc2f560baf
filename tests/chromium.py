"""The one way the tests start headless Chromium: Debian's build, with the flags this machine needs."""

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Without the networking flags Chromium keeps trying hosts that this closed machine cannot reach.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


def launch(playwright):
    """A headless Debian Chromium browser from a started Playwright."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
