"""mkdocs hooks: pages generated from the code, and the results files served beside the docs.

- ``<!-- config-reference -->`` in a page becomes a table of every ``Config`` field: its
  flag, its global default and the one line of help under the field in
  ``maddpg_jax/config.py``, the same text ``maddpg-jax train --help`` prints, so the page
  cannot drift from the code. ``<!-- env-defaults -->`` becomes each registered env's
  recommended settings (its registry entry's ``defaults``), ``<!-- presets -->`` every
  preset's settings (``maddpg_jax.config.PRESETS``).
- ``<!-- cli-help COMMAND -->`` becomes ``maddpg-jax COMMAND --help`` as printed.
- Every file under ``benchmarks/results/`` is added to the site at the same path, so pages
  link to results files (and show their plots) where the benchmarks wrote them; a link to a
  missing one fails ``mkdocs build --strict``.
- Without ``site_url`` (the project names no address it is served at) mkdocs writes a
  sitemap with no entries; it is removed rather than published empty or given an invented
  address.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from contextlib import redirect_stdout
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def on_files(files, config):
    for path in sorted(RESULTS.rglob("*")):
        if path.is_file():
            files.append(
                File(
                    str(path.relative_to(ROOT)),
                    src_dir=str(ROOT),
                    dest_dir=config["site_dir"],
                    use_directory_urls=config["use_directory_urls"],
                )
            )
    return files


def on_post_build(config):
    if not config.get("site_url"):
        for name in ("sitemap.xml", "sitemap.xml.gz"):
            Path(config["site_dir"], name).unlink(missing_ok=True)


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def config_reference() -> str:
    from maddpg_jax.commands import _field_docs, _flag
    from maddpg_jax.config import HPARAM_NAMES, Config, global_default

    docs = _field_docs()
    lines = ["| field | flag | default | what it sets |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(Config):
        sweep = " (sweepable)" if f.name in HPARAM_NAMES else ""
        default = _cell(global_default(f.name))
        lines.append(f"| `{f.name}`{sweep} | `{_flag(f.name)}` | `{default}` | {_cell(docs.get(f.name, ''))} |")
    return "\n".join(lines)


def env_defaults() -> str:
    from maddpg_jax import envs

    lines = ["| env | recommended settings (a field or flag you set wins) |", "| --- | --- |"]
    for name in envs.names():
        entry = envs.entry(name)
        shown = ", ".join(f"`{k}={v}`" for k, v in sorted(entry.defaults.items())) or "the global defaults"
        lines.append(f"| `{name}` | {shown} |")
    return "\n".join(lines)


def presets() -> str:
    from maddpg_jax.config import PRESETS

    lines = ["| preset | what it sets (a field or flag you set wins) |", "| --- | --- |"]
    for name, values in PRESETS.items():
        lines.append(f"| `{name}` | " + ", ".join(f"`{k}={v}`" for k, v in sorted(values.items())) + " |")
    return "\n".join(lines)


def cli_help(command: str) -> str:
    from maddpg_jax.commands import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    buf = io.StringIO()
    with redirect_stdout(buf):
        os.environ.setdefault("COLUMNS", "100")
        sub.print_help()
    return "```text\n" + buf.getvalue().rstrip() + "\n```"


def on_page_markdown(markdown: str, page, config, files):
    if "<!-- config-reference -->" in markdown:
        markdown = markdown.replace("<!-- config-reference -->", config_reference())
    if "<!-- env-defaults -->" in markdown:
        markdown = markdown.replace("<!-- env-defaults -->", env_defaults())
    if "<!-- presets -->" in markdown:
        markdown = markdown.replace("<!-- presets -->", presets())
    return re.sub(r"<!-- cli-help (\w+) -->", lambda m: cli_help(m.group(1)), markdown)
