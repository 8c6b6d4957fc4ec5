"""Every command block in README.md and docs/*.md runs, against the outputs of `make demo`.

A README whose commands fail is worse than none: users copy them first. So each ```bash / ```sh / ```console
block is extracted and run with bash (`set -eo pipefail`: any failing command fails the block) in a fresh folder
laid out like a checkout after `make demo`: the repository's files linked in, and a private copy of one demo run
(made once per session by the Makefile's own `demo` command) under `work/demo/`. Blocks run independently, in
any order, and may write anywhere in their folder.

A block that cannot run here (it needs S3, a GPU, a Ray cluster, the network, `pip install`, a `make` target that
rebuilds the venv, or minutes) says so in the Markdown, on the line before its fence:

    <!-- doc-test: skip (needs a Ray cluster) -->

It is then reported as skipped with that reason (`pytest -rs` lists them); every other block must exit 0.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(bash|sh|shell|console)\s*$")
SKIP = re.compile(r"^<!--\s*doc-test:\s*skip\s*\((?P<reason>[^)]*(?:\([^)]*\)[^)]*)*)\)\s*-->\s*$")
#: what a checkout holds beside its files that a block must not see or share: ours are made per block
PRIVATE = {".git", ".venv", "work", "runs", "hf", "models", "reports", ".pytest_cache", ".ruff_cache"}
#: not copied into a block's checkout: caches and the benchmarks' outputs (hundreds of MB)
NOT_COPIED = shutil.ignore_patterns("__pycache__", "*.egg-info", "out", "*.pyc")
BLOCK_TIMEOUT_S = 240


@dataclass(frozen=True)
class Block:
    """One command block: where its fence is (1-based line), its shell text, and why it is skipped (if so)."""

    file: str
    line: int
    text: str
    skip: str | None = None

    @property
    def name(self) -> str:
        return f"{self.file}:{self.line}"


def extract_blocks(markdown: str, file: str) -> list[Block]:
    """The shell blocks of one Markdown text. In a ```console block only `$ ` lines (and the `\\`-continued lines
    after them) are commands; the rest is output. A `<!-- doc-test: skip (reason) -->` line right before the
    fence marks the block skipped; a marker anywhere else is an error (it would silently skip nothing)."""
    lines = markdown.split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        marker = SKIP.match(lines[i].strip())
        if marker and not (i + 1 < len(lines) and FENCE.match(lines[i + 1])):
            raise ValueError(
                f"{file}:{i + 1}: a doc-test marker must be the line right before a ```bash fence"
            )
        if lines[i].lstrip().startswith("<!--") and "doc-test" in lines[i] and not marker:
            raise ValueError(f"{file}:{i + 1}: write the marker as <!-- doc-test: skip (reason) -->")
        if not fence:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if end == len(lines):
            raise ValueError(f"{file}:{i + 1}: code block is never closed")
        body = lines[i + 1 : end]
        if fence.group(1) == "console":
            body = _console_commands(body)
        previous = SKIP.match(lines[i - 1].strip()) if i else None
        reason = previous.group("reason").strip() if previous else None
        if previous is not None and not reason:
            raise ValueError(f"{file}:{i}: a skipped block must say why: <!-- doc-test: skip (reason) -->")
        blocks.append(Block(file, i + 1, "\n".join(body) + "\n", reason))
        i = end + 1
    return blocks


def _console_commands(body: list[str]) -> list[str]:
    out: list[str] = []
    continued = False
    for line in body:
        if continued or line.startswith("$ "):
            command = line[2:] if line.startswith("$ ") and not continued else line
            out.append(command)
            continued = command.rstrip().endswith("\\")
    return out


def all_blocks() -> list[Block]:
    return [b for path in DOC_FILES for b in extract_blocks(path.read_text(), str(path.relative_to(ROOT)))]


def lay_checkout(folder: Path) -> None:
    """`folder` as a checkout: a copy of the repository's files (a few MB; copied, so that nothing a block
    writes can reach the repository), without what runs write (`work/`, `runs/`, `bench/out/`, …). The venv is
    linked, read only by convention."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        if entry.name in PRIVATE or entry.name.endswith(".egg-info"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, folder / entry.name, ignore=NOT_COPIED, symlinks=True)
        else:
            shutil.copy2(entry, folder / entry.name)
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent)


def environment() -> dict[str, str]:
    """The shell's environment: the project venv first on PATH (`dolma-kit`, `python`), no colours, 100 columns."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"NO_COLOR": "1", "COLUMNS": "100", "TERM": "dumb", "PYTHONUNBUFFERED": "1"})
    env.pop("work_dir", None)
    return env


def makefile_demo_command(work_dir: str) -> list[str]:
    """The command `make demo` runs (the Makefile's recipe, with its variables filled in), so the demo the
    docs are tested against is the one users get."""
    text = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^demo:.*\n\t(.+)$", text, re.MULTILINE)
    assert recipe, "Makefile has no `demo:` target with a recipe line"
    line = recipe.group(1).replace("$(PY)", sys.executable).replace("$(DEMO_OUT)", work_dir)
    assert "$(" not in line, f"unexpected make variable in the demo recipe: {line}"
    return line.split()


@pytest.fixture(scope="session")
def demo_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout folder after `make demo`: its `work/demo/` is what each block gets a copy of."""
    folder = tmp_path_factory.mktemp("doc-demo")
    lay_checkout(folder)
    run = subprocess.run(
        makefile_demo_command("work/demo"),
        cwd=folder,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert run.returncode == 0, f"make demo failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return folder


def run_block(block: Block, demo: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    lay_checkout(folder)
    shutil.copytree(demo / "work", folder / "work", symlinks=True)
    script = "set -eo pipefail\n" + block.text
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=folder,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout ends every process the block started
    )
    try:
        out, err = proc.communicate(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(
            f"{block.name}: still running after {BLOCK_TIMEOUT_S} s: make the doc smaller\n{err[-3000:]}"
        )
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


BLOCKS = all_blocks()


@pytest.mark.slow
@pytest.mark.timeout(600)  # the first block also waits for the session's demo run
@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b, id=b.name, marks=[pytest.mark.skip(reason=f"{b.name}: {b.skip}")] if b.skip else [])
        for b in BLOCKS
    ],
)
def test_doc_block_runs(block: Block, demo_checkout: Path, tmp_path: Path) -> None:
    done = run_block(block, demo_checkout, tmp_path / "checkout")
    assert done.returncode == 0, (
        f"{block.name}: exit {done.returncode}\n--- block\n{block.text}--- stdout (end)\n{done.stdout[-3000:]}"
        f"\n--- stderr (end)\n{done.stderr[-3000:]}"
    )


def test_blocks_are_found_and_most_run() -> None:
    """The extraction sees the README's blocks (a renamed fence would silently test nothing)."""
    readme = [b for b in BLOCKS if b.file == "README.md"]
    assert len(readme) >= 15
    assert sum(b.skip is None for b in readme) >= 0.7 * len(readme), [b.name for b in readme if b.skip]
    assert any("dolma-kit train " in b.text for b in readme if b.skip is None)


def test_extract_blocks_markers_and_console() -> None:
    text = "\n".join(
        [
            "# t",
            "```bash",
            "echo one",
            "```",
            "<!-- doc-test: skip (needs S3 (a bucket)) -->",
            "```sh",
            "aws s3 ls",
            "```",
            "```console",
            "$ echo two \\",
            "  three",
            "two three",
            "```",
            "```python",
            "print(1)",
            "```",
        ]
    )
    blocks = extract_blocks(text, "x.md")
    assert [(b.line, b.skip) for b in blocks] == [(2, None), (6, "needs S3 (a bucket)"), (9, None)]
    assert blocks[2].text == "echo two \\\n  three\n"
    with pytest.raises(ValueError, match=r"x\.md:1"):
        extract_blocks("<!-- doc-test: skip (far from a fence) -->\n\n```bash\nls\n```", "x.md")
    with pytest.raises(ValueError, match="write the marker as"):
        extract_blocks("<!-- doc-test skip -->\n```bash\nls\n```", "x.md")
    with pytest.raises(ValueError, match="say why"):
        extract_blocks("<!-- doc-test: skip () -->\n```bash\nls\n```", "x.md")
