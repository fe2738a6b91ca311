"""The documentation site as a reader sees it: built with mkdocs, every page is checked for
what renders wrong (raw Sphinx roles that mkdocstrings prints as text, lists run on into
their paragraph for want of a blank line)."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RAW_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj):`")
# A paragraph that holds a line starting "- " or "* ": markdown read it as text, not a list.
RUN_ON_LIST = re.compile(r"<p>(?:(?!</p>).)*\n[-*] ", re.S)


def test_no_page_shows_a_raw_role_or_a_run_on_list(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", JAX_PLATFORMS="cpu")
    p = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    bad = []
    for page in pages:
        text = page.read_text()
        for name, pattern in (("raw role", RAW_ROLE), ("run-on list", RUN_ON_LIST)):
            m = pattern.search(text)
            if m:
                bad.append(f"{page.relative_to(site)}: {name}: {text[m.start() : m.start() + 120]!r}")
    assert not bad, "\n".join(bad)
    assert not (site / "hooks.py").exists()  # the build's hook is not published
    assert not (site / "sitemap.xml").exists()  # no site_url: a sitemap would list nothing


def test_the_checks_catch_what_they_are_for():
    assert RAW_ROLE.search("<p>see :func:`maddpg_jax.train` here</p>")
    assert RUN_ON_LIST.search("<p>What it shows:\n- one\n- two</p>")
    assert not RUN_ON_LIST.search("<p>a - b</p>\n<ul>\n<li>x</li>\n</ul>")
