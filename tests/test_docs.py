"""docs/ and the README: option tables match argparse, links land on files and headings, no repository layout leaks."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import docs_options  # noqa: E402

from edgecnn.cli import COMMANDS  # noqa: E402

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
IMAGE_SUFFIXES = (".png", ".svg", ".gif", ".jpg")


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "devices").glob("*README.md")),
            *sorted((REPO / "devices").glob("*/README.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def local_links(page: Path) -> list[tuple[str, Path, str]]:
    """(link as written, the file it names, its #anchor) for each relative link of a page, code blocks left out."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    out = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        out.append((target, (page.parent / path).resolve() if path else page, anchor))
    return out


def test_option_tables_match_argparse():
    assert docs_options.stale_pages() == [], "run: python tools/docs_options.py"


def test_every_command_has_an_option_table():
    marked = set()
    for page in (REPO / "docs").glob("*.md"):
        marked |= {m.group(2).split()[0] for m in docs_options.BLOCK.finditer(page.read_text(encoding="utf-8"))}
    assert marked == set(COMMANDS)


def test_check_mode_names_a_stale_page_and_the_tool_renders_it(tmp_path, monkeypatch, capsys):
    page = tmp_path / "docs" / "train.md"
    page.parent.mkdir()
    page.write_text("# t\n\n<!-- options: train -->\n| option | what it does |\n<!-- /options -->\n")
    monkeypatch.setattr(docs_options, "DOCS", page.parent)
    monkeypatch.setattr(docs_options, "REPO", tmp_path)
    assert docs_options.main(["--check"]) == 1
    assert "stale option table: docs/train.md" in capsys.readouterr().err
    assert docs_options.main([]) == 0
    assert "| `--arch NAME` | required; architecture" in page.read_text()
    assert docs_options.main(["--check"]) == 0


def test_a_marker_naming_no_command_is_an_error():
    with pytest.raises(ValueError, match="names no edgecnn command"):
        docs_options.update("<!-- options: trian -->\n<!-- /options -->", docs_options.command_parsers(), "x.md")


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_links_land_on_files_and_headings(page):
    broken = []
    for target, path, anchor in local_links(page):
        if path.suffix in IMAGE_SUFFIXES:
            continue  # pictures: test_pictures_exist
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading #{anchor}")
    assert broken == []


def test_pictures_exist():
    missing = sorted({str(path.relative_to(REPO)) for page in pages() for _, path, _ in local_links(page)
                      if path.suffix in IMAGE_SUFFIXES and not path.exists()})
    git = shutil.which("git")  # absent on the emulated board, where the repository is a copy
    tracked = subprocess.run([git, "ls-files", "docs/img"], cwd=REPO, capture_output=True, text=True).stdout.split() \
        if git else []
    if missing and not set(missing) & set(tracked):
        pytest.skip(f"pictures not made yet (never committed): {', '.join(missing)}")
    assert missing == []


def test_slug_follows_github():
    assert slug("Emulated Raspberry Pi 4 and 5 (arm64 under qemu)") == "emulated-raspberry-pi-4-and-5-arm64-under-qemu"
    assert slug("What lands in `--out`") == "what-lands-in---out"


def test_no_repository_path_in_user_facing_text():
    """README, docs and the package (its --help and error messages) never name this repository's ../shared."""
    files = [REPO / "README.md", *(REPO / "docs").rglob("*.md"), *(REPO / "edgecnn").rglob("*.py"),
             *(REPO / "edgecnn").rglob("*.json"), *(REPO / "edgecnn").rglob("*.yml"), *(REPO / "edgecnn").rglob("*.j2")]
    hits = [f"{f.relative_to(REPO)}:{n}" for f in files
            for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if "../shared" in line]
    assert hits == []
