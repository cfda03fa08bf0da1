"""The documentation is real code: every ```python block of README.md and docs/*.md runs.

Each block is a complete program, run as a script in a subprocess of its own, in a fresh
temporary working directory (so a ``jobify.db`` it creates lands there), with warnings turned
into errors. The blocks run a few at a time in the background as soon as the first one is
asked for; each test then checks one block, named by page and block number.

A block that is not meant to run (shell commands, output) is fenced with another language.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import pgtest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
BLOCK_TIMEOUT = 60.0
PARALLEL = 4


@dataclass(frozen=True)
class Block:
    page: Path
    number: int  # 1-based among the page's python blocks
    line: int  # line of the opening fence
    code: str

    @property
    def label(self) -> str:
        return f"{self.page.relative_to(ROOT)}#{self.number}"


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    leftovers: list[str]


def fences(page: Path) -> Iterator[tuple[str, int, str]]:
    text = page.read_text()
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        yield match.group(1).strip(), line, match.group(2)


def python_blocks() -> list[Block]:
    blocks = []
    for page in PAGES:
        number = 0
        for lang, line, code in fences(page):
            if lang == "python":
                number += 1
                blocks.append(Block(page, number, line, code))
    return blocks


BLOCKS = python_blocks()


def uses_postgres(block: Block) -> bool:
    return "PostgresStorage(" in block.code


def run_block(block: Block) -> Outcome:
    schema = f"jobify_docs_{uuid.uuid4().hex[:10]}"
    try:
        return _run(block, schema)
    finally:
        if uses_postgres(block) and pgtest.reachable():
            asyncio.run(pgtest.drop([schema]))


def _run(block: Block, schema: str) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="jobify-docs-") as workdir:
        script = Path(workdir) / f"block_{block.number}.py"
        script.write_text(block.code)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        # Examples on PostgreSQL read where the server is from the environment, as a deployed
        # app would; each runs in a schema of its own, dropped afterwards.
        env["JOBIFY_POSTGRES_DSN"] = pgtest.DSN
        env["JOBIFY_SCHEMA"] = schema
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, "-X", "dev", "-W", "error", script.name],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT,
                env=env,
            )
        except subprocess.TimeoutExpired as exc:
            return Outcome(-1, str(exc.stdout or ""), f"timed out after {exc.timeout}s", 0.0, [])
        seconds = time.perf_counter() - started
        leftovers = sorted(
            p.name for p in Path(workdir).iterdir() if p.name != script.name and p.is_file()
        )
        return Outcome(proc.returncode, proc.stdout, proc.stderr, seconds, leftovers)


_pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="docs-block")
_futures: dict[Block, Future[Outcome]] = {}


def outcome_of(block: Block) -> Outcome:
    if not _futures:  # start them all at once; each test waits for its own
        for b in BLOCKS:
            _futures[b] = _pool.submit(run_block, b)
    return _futures[block].result()


def test_there_is_documentation() -> None:
    assert (ROOT / "docs" / "README.md").exists(), "docs/README.md is the index of the docs"
    assert len(BLOCKS) >= 20


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_fence_says_its_language(page: Path) -> None:
    """An unlabelled fence would silently escape this test; say ``bash`` or ``text``."""
    text = page.read_text()
    assert text.count("```") % 2 == 0, f"{page.name}: unbalanced code fences"
    for lang, line, _ in fences(page):
        assert lang, f"{page.name}:{line}: a code fence without a language"
        assert lang in {"python", "bash", "text", "console", "toml", "ini"}, (
            f"{page.name}:{line}: fence language {lang!r}: use python (it runs), or bash/text"
        )


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.label)
def test_block_runs(block: Block) -> None:
    if uses_postgres(block):
        pgtest.require_server()  # skips without a server (fails under CI=true)
    outcome = outcome_of(block)
    where = f"{block.label} (line {block.line} of {block.page.name})"
    assert outcome.returncode == 0, f"{where} failed:\n{outcome.stdout}\n{outcome.stderr}"
    assert outcome.stdout.strip(), f"{where} printed nothing: an example shows what it did"
    assert "Traceback" not in outcome.stdout, f"{where}:\n{outcome.stdout}"


def _jobify_calls(code: str) -> list[str]:
    """The argument text of every ``Jobify(...)`` call in ``code``."""
    calls = []
    start = code.find("Jobify(")
    while start != -1:
        depth, i = 0, start + len("Jobify")
        for i in range(start + len("Jobify"), len(code)):
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            if depth == 0:
                break
        calls.append(code[start + len("Jobify(") : i])
        start = code.find("Jobify(", i)
    return calls


IN_MEMORY = [
    b
    for b in BLOCKS
    if _jobify_calls(b.code) and all("storage=False" in c for c in _jobify_calls(b.code))
]


def test_most_examples_run_in_memory() -> None:
    assert len(IN_MEMORY) > len(BLOCKS) // 2


@pytest.mark.parametrize("block", IN_MEMORY, ids=lambda b: b.label)
def test_in_memory_blocks_leave_no_files(block: Block) -> None:
    """A block whose apps all say ``storage=False`` writes nothing to disk."""
    outcome = outcome_of(block)
    assert not outcome.leftovers, f"{block.label} left files behind: {outcome.leftovers}"


# -- no file points outside the repository -------------------------------------------------

OUTSIDE = [
    "../" + "shared",
    "shared" + "/spec",
    "shared" + "/design",
    "/wo" + "rk/",
]


def repository_files() -> list[Path]:
    """The repository's files: tracked or not ignored (every file outside hidden folders and
    build/tool caches when this is not a git checkout)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):
        return [
            p
            for p in ROOT.rglob("*")
            if p.is_file()
            and not any(
                part.startswith(".") or part == "__pycache__" for part in p.relative_to(ROOT).parts
            )
        ]
    return [ROOT / name for name in listed if name and (ROOT / name).is_file()]


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    offenders = []
    files = repository_files()
    assert len(files) > 50
    for path in files:
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(pattern in line for pattern in OUTSIDE):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "users only have the repository:\n" + "\n".join(offenders)
