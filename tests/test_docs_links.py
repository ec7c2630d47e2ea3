"""The README, ARCHITECTURE.md and docs/ pages: relative links resolve, no issue numbers, the README
stays short, its speed table is copied unchanged from the result file it names, and every measured
figure sits in a section that links to a result file stating where it was measured."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
MAX_README_LINES = 250

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`+[^`]*`+")
EXTERNAL = ("http://", "https://", "mailto:")
ISSUE_MENTION = re.compile(r"\bissues?\s*#?\s*\d+|#\d+\b|\bthe issue's\b", re.IGNORECASE)
# A measured figure: a latency or time, a throughput, a memory or file size, a decimal ratio,
# percentage or error (bounds such as "1e-4" or "90%" are settings, not measurements).
FIGURE = re.compile(
    r"\b\d+(?:\.\d+)?\s*(?:ms|images/s|img/s|GFLOP/s|MiB|GiB)(?![\w/])"
    r"|\b\d+\.\d+\s*(?:x|%|s|seconds|min|minutes)(?!\w)"
    r"|\b\d\.\d+e[-+]?\d+\b"
)
# What a result file must state for its figures to be trusted elsewhere.
PROVENANCE = {
    "a date": re.compile(r"\b\d{4}-\d{2}-\d{2}\b"),
    "the machine": re.compile(r"\bmachine\b|\bcpu\b", re.IGNORECASE),
    "the SIMD features": re.compile(r"\b(?:avx\w*|amx\w*|neon|sse\w*)\b", re.IGNORECASE),
    "the library versions": re.compile(r"\bversions?\b", re.IGNORECASE),
    "the load": re.compile(r"\bload average\b", re.IGNORECASE),
}
SPEED_START = re.compile(r"<!--\s*speed table: copied from (\S+)\s*-->")
SPEED_END = "<!-- end of speed table -->"


def doc_pages(root: Path = ROOT) -> list[Path]:
    """The README, ARCHITECTURE.md and every docs/*.md page."""
    return [root / "README.md", root / "ARCHITECTURE.md", *sorted((root / "docs").glob("*.md"))]


def outside_fences(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks."""
    lines, in_fence = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of the Markdown file at `path` (repeats numbered as GitHub does)."""
    counts: dict[str, int] = {}
    found = set()
    for _, line in outside_fences(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            repeat = counts.get(base, 0)
            counts[base] = repeat + 1
            found.add(base if repeat == 0 else f"{base}-{repeat}")
    return found


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of the Markdown links in `text`, outside code blocks and spans."""
    return [
        (number, target)
        for number, line in outside_fences(text)
        for target in LINK.findall(CODE_SPAN.sub("", line))
    ]


def broken_links(page: Path) -> list[str]:
    """The relative links of `page` whose file (or heading anchor) does not exist."""
    problems = []
    for number, target in links(page.read_text(encoding="utf-8")):
        if target.startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        where = f"{page.name}:{number}: {target}"
        if not linked.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{where} (no heading with that anchor)")
    return problems


def issue_mentions(page: Path) -> list[str]:
    """The lines of `page` that cite an issue number or "the issue's" target."""
    lines = page.read_text(encoding="utf-8").splitlines()
    return [
        f"{page.name}:{n}: {line.strip()}" for n, line in enumerate(lines, 1) if ISSUE_MENTION.search(line)
    ]


def sections(page: Path) -> list[tuple[str, str]]:
    """(heading, text) of each section of `page`, code included: figures in code count too."""
    result, heading, body, in_fence = [], "(top)", [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else HEADING.match(line)
        if match:
            result.append((heading, "\n".join(body)))
            heading, body = match.group(2), []
        else:
            body.append(line)
    result.append((heading, "\n".join(body)))
    return result


def result_links(page: Path, text: str, results: Path = RESULTS) -> list[Path]:
    """The files under `results` that `text` (a part of `page`) links to."""
    linked = [(page.parent / target.partition("#")[0]).resolve() for _, target in links(text)]
    return [path for path in linked if results.resolve() in path.parents]


def unsourced_figures(page: Path, results: Path = RESULTS) -> list[str]:
    """The sections of `page` that state a measured figure without linking a result file."""
    return [
        f"{page.name}, section {heading!r}: {FIGURE.search(text).group(0)!r} has no result file linked"
        for heading, text in sections(page)
        if FIGURE.search(text) and not result_links(page, text, results)
    ]


def missing_provenance(result_file: Path) -> list[str]:
    """What a result file fails to state about where its figures were measured."""
    text = result_file.read_text(encoding="utf-8")
    return [
        f"{result_file.name} does not name {what}"
        for what, rule in PROVENANCE.items()
        if not rule.search(text)
    ]


def speed_table_problems(readme: Path, results: Path = RESULTS) -> list[str]:
    """Whether the README's speed table is a verbatim copy of the result file its marker names,
    and that file is linked in the same section."""
    text = readme.read_text(encoding="utf-8")
    start = SPEED_START.search(text)
    if start is None or SPEED_END not in text[start.end() :]:
        return ["no speed table between '<!-- speed table: copied from FILE -->' and the end marker"]
    named = start.group(1)
    source = (readme.parent / named).resolve()
    if results.resolve() not in source.parents or not source.is_file():
        return [f"the speed table's source {named} is not a file under benchmarks/results/"]
    source_lines = {line.rstrip() for line in source.read_text(encoding="utf-8").splitlines()}
    table = text[start.end() : text.index(SPEED_END, start.end())]
    problems = [
        f"README speed table line not in {named}: {line[:80]}"
        for line in table.splitlines()
        if line.strip() and line.rstrip() not in source_lines
    ]
    section = next((body for _, body in sections(readme) if start.group(0) in body), "")
    if source not in result_links(readme, section, results):
        problems.append(f"the speed section does not link {named}")
    return problems


# --- the checks on this repository -------------------------------------------------------------


@pytest.mark.parametrize("page", doc_pages(), ids=lambda page: page.name)
def test_relative_links_resolve(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", doc_pages(), ids=lambda page: page.name)
def test_no_issue_numbers(page):
    assert issue_mentions(page) == []


@pytest.mark.parametrize("page", doc_pages(), ids=lambda page: page.name)
def test_figures_link_a_result_file(page):
    assert unsourced_figures(page) == []


def test_linked_result_files_say_where_they_were_measured():
    linked = {path for page in doc_pages() for path in result_links(page, page.read_text(encoding="utf-8"))}
    assert linked, "the README links no result file"
    assert [problem for path in sorted(linked) for problem in missing_provenance(path)] == []


def test_readme_is_short():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= MAX_README_LINES


def test_readme_speed_table_is_copied_from_its_result_file():
    assert speed_table_problems(README) == []


def test_readme_variant_table_matches_the_presets():
    """The README's variant table is what `keras-pvt variants --markdown` prints (parameter counts
    are checked against the reference in test_model.py; the rest comes from the configs here)."""
    from keras_pvt.presets import VARIANTS

    rows = {
        line.split(" | ")[0].lstrip("| "): line for line in README.read_text(encoding="utf-8").splitlines()
    }
    for name, variant in VARIANTS.items():
        config = variant.config
        miou = "-" if variant.ade20k_miou is None else f"{variant.ade20k_miou:.1f}"
        box_ap = "-" if variant.coco_retinanet_ap is None else f"{variant.coco_retinanet_ap:.1f}"
        cells = [
            f"{config.flops(224) / 1e9:.2f}",
            "-".join(map(str, config.depths)),
            "-".join(map(str, config.embed_dims)),
            "yes" if config.linear else "no",
            str(config.min_input_size()),
            miou,
            box_ap,
        ]
        assert name in rows, f"no README row for {name}"
        assert rows[name].rstrip(" |").split(" | ")[2:] == cells, rows[name]


def test_readme_keeps_the_make_commands_first():
    head = README.read_text(encoding="utf-8").splitlines()[:12]
    assert any(line.startswith("make demo") for line in head) and any(
        line.startswith("make test") for line in head
    )


# --- the checks fail on pages broken on purpose ------------------------------------------------


def _tree(tmp_path: Path, readme: str, pages: dict[str, str] | None = None) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    for name, text in (pages or {}).items():
        (tmp_path / "docs" / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_a_broken_link_or_anchor_is_reported(tmp_path):
    root = _tree(
        tmp_path,
        "[ok](docs/a.md#usage) [gone](docs/missing.md) [bad anchor](docs/a.md#nowhere) "
        "[web](https://example.com/x) `[code](docs/nothing.md)`\n",
        {"a.md": "# A\n\n## Usage\n\n[back](../README.md) [self](#a)\n"},
    )
    assert [p.split(": ", 1)[1] for p in broken_links(root / "README.md")] == [
        "docs/missing.md (no such file)",
        "docs/a.md#nowhere (no heading with that anchor)",
    ]
    assert broken_links(root / "docs" / "a.md") == []


def test_heading_anchors_follow_github():
    assert slug("Inference engines (`engine=`)") == "inference-engines-engine"
    assert slug("Deployment: SavedModel, TFLite, OpenVINO") == "deployment-savedmodel-tflite-openvino"
    assert slug("compile_inference") == "compile_inference"


def test_issue_numbers_are_reported(tmp_path):
    root = _tree(tmp_path, "Fixed in issue 17.\nMeets the issue's 85%.\nSee #12.\nNo tissue 3 here? yes.\n")
    assert len(issue_mentions(root / "README.md")) == 3


def test_a_figure_without_a_result_file_is_reported(tmp_path):
    page = (
        "# T\n\n## Fast\n\nB0 runs in 12.5 ms.\n\n## Sourced\n\n97 images/s ([run](bench.md)).\n\n"
        "## Bounds\n\nA tolerance of 1e-4 and 90% agreement, 3x3 convs.\n\n## Error\n\nMeasured 1.4e-6.\n"
    )
    root = _tree(tmp_path, page)
    (root / "bench.md").write_text("results\n", encoding="utf-8")
    problems = unsourced_figures(root / "README.md", results=root)
    assert [problem.split(": ", 1)[1] for problem in problems] == [
        "'12.5 ms' has no result file linked",
        "'1.4e-6' has no result file linked",
    ]


def test_a_result_file_without_provenance_is_reported(tmp_path):
    bare = tmp_path / "bench.md"
    bare.write_text("| b0 | 12.5 ms |\n", encoding="utf-8")
    assert len(missing_provenance(bare)) == len(PROVENANCE)
    full = tmp_path / "full.md"
    full.write_text(
        "Machine: AMD EPYC (flags: avx2 fma)\nVersions: keras 3.15.1\n"
        "Run at 2026-12-02; load average before 0.9\n",
        encoding="utf-8",
    )
    assert missing_provenance(full) == []


def test_a_speed_table_that_differs_from_its_source_is_reported(tmp_path):
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    table = "Machine: X\n\n| a | b |\n|---|---|\n| ours | 10.0 |\n"
    (results / "bench.md").write_text(table, encoding="utf-8")
    readme = tmp_path / "README.md"
    marker = "<!-- speed table: copied from benchmarks/results/bench.md -->"
    good = f"## Speed\n\n[file](benchmarks/results/bench.md)\n\n{marker}\n{table}{SPEED_END}\n"
    readme.write_text(good, encoding="utf-8")
    assert speed_table_problems(readme, results) == []
    readme.write_text(good.replace("| ours |", "| **ours** |"), encoding="utf-8")
    assert [p.split(":")[0] for p in speed_table_problems(readme, results)] == [
        "README speed table line not in benchmarks/results/bench.md"
    ]
    readme.write_text(good.replace("[file](benchmarks/results/bench.md)", ""), encoding="utf-8")
    assert speed_table_problems(readme, results) == [
        "the speed section does not link benchmarks/results/bench.md"
    ]
    readme.write_text("## Speed\n\nfast.\n", encoding="utf-8")
    assert len(speed_table_problems(readme, results)) == 1
