"""The documentation site: every exported public name has a docstring and an entry in the API
reference, the strict build passes, and every Python block of the guides (docs/*.md) and of the
README runs."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import lucid

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# the modules issue 29 names; lucid.export and lucid.amp once they exist
REQUIRED = ["lucid", "lucid.nn", "lucid.nn.functional", "lucid.optim", "lucid.data",
            "lucid.distributed", "lucid.models", "lucid.memory", "lucid.selfcheck",
            "lucid.export", "lucid.amp"]


def _hook():
    spec = importlib.util.spec_from_file_location("docs_reference_hook",
                                                  DOCS / "_hooks" / "reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


HOOK = _hook()
PRESENT = [m for m in REQUIRED if importlib.util.find_spec(m) is not None]


def test_the_reference_lists_every_required_module_that_exists():
    listed = [name for name, _ in HOOK.available_modules()]
    assert set(PRESENT) <= set(listed)
    assert {"lucid", "lucid.nn", "lucid.models"} <= set(PRESENT)


def test_a_missing_module_is_left_out_not_an_error(monkeypatch):
    monkeypatch.setattr(HOOK, "MODULES", HOOK.MODULES + [("lucid.no_such_module", "nothing")])
    assert "lucid.no_such_module" not in [name for name, _ in HOOK.available_modules()]


@pytest.mark.parametrize("module", PRESENT)
def test_every_exported_name_has_a_docstring(module):
    pytest.importorskip("griffe", reason="the docs extra (pip install -e '.[docs]')")
    names = HOOK.exported_names(module)
    assert names, module
    assert HOOK.missing_docstrings(module) == []


def test_the_docstring_check_sees_a_missing_docstring(monkeypatch):
    pytest.importorskip("griffe", reason="the docs extra (pip install -e '.[docs]')")

    def undocumented():
        pass

    monkeypatch.setattr(lucid.memory, "undocumented", undocumented, raising=False)
    monkeypatch.setattr(lucid.memory, "__all__", [*lucid.memory.__all__, "undocumented"])
    assert HOOK.missing_docstrings("lucid.memory") == ["lucid.memory.undocumented"]


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    """`mkdocs build --strict` of this checkout into a temporary folder."""
    pytest.importorskip("mkdocs", reason="the docs extra (pip install -e '.[docs]')")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    site = tmp_path_factory.mktemp("site")
    config = load_config(str(ROOT / "mkdocs.yml"), site_dir=str(site), strict=True)
    build(config)          # raises mkdocs.exceptions.Abort on any warning
    return site


def test_every_exported_name_is_in_the_built_reference(built_site):
    inventory = HOOK.read_inventory(built_site / "objects.inv")
    assert HOOK.missing_from_inventory(inventory, PRESENT) == []
    # and the check would see a name that is not there
    assert HOOK.missing_from_inventory(inventory - {"lucid.nn.Conv2d"}, ["lucid.nn"]) == \
        ["lucid.nn.Conv2d"]
    for module in PRESENT:
        assert (built_site / "reference" / module / "index.html").is_file()


# -- the guides' code ---------------------------------------------------------------------------

FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
SKIP = "<!-- not run:"


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line, code) of each ```python block; a block right after an HTML comment starting
    `<!-- not run:` (which says why) is left out."""
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip().rsplit("\n", 1)[-1]
        if before.startswith(SKIP):
            continue
        out.append((text.count("\n", 0, m.start()) + 2, m.group(1)))
    return out


PAGES = sorted(p for p in DOCS.glob("*.md")) + [ROOT / "README.md"]

# `print(<expr>.shape)   # (2, 8, 8, 8)`: the shape a page promises is checked, not only printed
SHAPE_LINE = re.compile(r"^(\s*)print\((.+)\.shape\)(\s*)# (\([\d, ]*\))", re.MULTILINE)


def checked(code: str) -> str:
    """The block with each promised shape turned into an assertion (same line numbers)."""
    return SHAPE_LINE.sub(
        lambda m: f"{m.group(1)}assert tuple(({m.group(2)}).shape) == {m.group(4)}, "
                  f"({m.group(2)}).shape  # {m.group(4)}", code)


def test_the_block_collector_finds_blocks_and_skips_marked_ones(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("text\n\n```python\nx = 1\n```\n\n<!-- not run: needs a Mac -->\n"
                    "```python\nraise SystemExit\n```\n\n```sh\nmake test\n```\n")
    assert python_blocks(page) == [(4, "x = 1\n")]


def test_a_promised_shape_is_checked():
    code = checked("y = lucid.zeros(2, 3)\nprint(y.shape)     # (2, 4)\n")
    assert "assert tuple((y).shape) == (2, 4)" in code
    with pytest.raises(AssertionError):
        exec(code, {"lucid": lucid})  # noqa: S102


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_guide_code_runs(page, tmp_path, monkeypatch):
    """A page's blocks run in order in one namespace (a later block uses an earlier one's names),
    on the NumPy backend, in a temporary folder (for the files a block writes)."""
    blocks = python_blocks(page)
    if not blocks:
        pytest.skip(f"{page.name} has no Python block")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__guide__"}
    with lucid.using_backend("numpy"):
        lucid.random.seed(0)
        for line, code in blocks:
            # the repository's own documentation, run as a user would paste it
            exec(compile(checked(code), f"{page.relative_to(ROOT)}:{line}", "exec"), namespace)  # noqa: S102
