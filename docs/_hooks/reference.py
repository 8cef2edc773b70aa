"""MkDocs hook: the API reference, one page per public module, and a check that it is complete.

`MODULES` lists the public modules. Each one that exists gets a page `reference/<module>.md`
holding mkdocstrings' `::: <module>` (its members are whatever the module exports, so new names
appear by themselves) and an entry under "API reference" in the nav. A listed module that does not
exist in this checkout (``lucid.export`` and ``lucid.amp`` until they land) is left out, not an
error. After the build, every exported name of every page's module must be in mkdocstrings'
inventory and carry a docstring; each one that does not is a warning, which `--strict` (and
`strict: true` in mkdocs.yml) turns into a failed build. `tests/test_docs.py` runs the same check.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.reference")

# the checkout this mkdocs.yml belongs to
ROOT = Path(__file__).resolve().parents[2]


def _checkout_first() -> None:
    """Import lucid from this checkout, ahead of any other the interpreter could import (an
    editable install of another worktree). mkdocs restores sys.path after loading a hook, so this
    runs in the first event, not at import."""
    if sys.path[:1] != [str(ROOT)]:
        sys.path.insert(0, str(ROOT))

# (module, what it holds): the order of the nav
MODULES: list[tuple[str, str]] = [
    ("lucid", "tensors, backends, creation, dtypes, autograd switches, compile, save/load"),
    ("lucid.nn", "modules and layers"),
    ("lucid.nn.functional", "the layers' functions"),
    ("lucid.nn.init", "weight initialisers"),
    ("lucid.nn.constraints", "constraint objects"),
    ("lucid.nn.utils", "clipping, padding helpers, constraint projection"),
    ("lucid.nn.utils.parametrize", "parametrizations on any parameter"),
    ("lucid.nn.utils.parametrizations", "weight_norm and spectral_norm"),
    ("lucid.optim", "optimizers"),
    ("lucid.optim.lr_scheduler", "learning-rate schedulers"),
    ("lucid.data", "datasets, loaders, samplers"),
    ("lucid.distributed", "data-parallel training over MLX's distributed layer"),
    ("lucid.models", "the model zoo and torch checkpoint loading"),
    ("lucid.random", "the random stream"),
    ("lucid.memory", "MLX's allocator"),
    ("lucid.selfcheck", "the self-check of a machine's MLX"),
    ("lucid.amp", "mixed precision"),
    ("lucid.export", "exporting models"),
]

NAV_TITLE = "API reference"

# Names griffe cannot document under their exported path, with the path it documents them at:
# `lucid.tensor` is both the function (from lucid.creation) and the submodule lucid/tensor.py,
# and griffe (so mkdocstrings) sees the submodule. The function gets its own entry on the page.
DOCUMENTED_AT: dict[str, str] = {"lucid.tensor": "lucid.creation.tensor"}

# mkdocstrings options for one page: Tensor's methods live in its base class TensorMethods
PAGE_OPTIONS: dict[str, str] = {"lucid": "inherited_members: true"}


def available_modules() -> list[tuple[str, str]]:
    """The listed modules that exist here (a missing one is skipped; a broken one still fails)."""
    out = []
    for name, what in MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            out.append((name, what))
    return out


def page_path(module: str) -> str:
    return f"reference/{module}.md"


def exported_names(module: str) -> list[str]:
    """A module's public names: its ``__all__``, or else every name not starting with ``_`` that
    the module defines itself (what mkdocstrings' ``filters: public`` shows)."""
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None)
    if names is not None:
        out = list(names)
    else:
        out = []
        for name, obj in vars(mod).items():
            if name.startswith("_") or inspect.ismodule(obj):
                continue
            # names imported from elsewhere (typing helpers, other lucid modules) are not its own
            if getattr(obj, "__module__", module) != module and (
                    inspect.isclass(obj) or inspect.isroutine(obj)):
                continue
            if not (inspect.isclass(obj) or inspect.isroutine(obj)) and name.isupper():
                continue        # module constants are documented in prose where they matter
            if name == "annotations":
                continue
            out.append(name)
    # submodules are pages of their own (or internal); mkdocstrings lists them, it does not
    # document them in the parent's page
    return [n for n in out if not inspect.ismodule(getattr(mod, n, None))]


@functools.lru_cache(maxsize=1)
def _griffe_tree() -> Any:
    import griffe  # the docs extra

    return griffe.load("lucid", search_paths=[str(ROOT)], allow_inspection=False)


def missing_docstrings(module: str) -> list[str]:
    """Exported names of `module` without a docstring (a data attribute's docstring is the string
    literal after its assignment, read by griffe as mkdocstrings reads it)."""
    import griffe  # the docs extra

    mod = importlib.import_module(module)
    tree = _griffe_tree()
    for part in module.split(".")[1:]:
        tree = tree.members[part]
    out = []
    for name in exported_names(module):
        obj = getattr(mod, name)
        if inspect.isclass(obj) or inspect.isroutine(obj):
            if not (obj.__doc__ or "").strip():
                out.append(f"{module}.{name}")
            continue
        member = tree.members.get(name)
        doc = None
        if member is not None:
            try:
                doc = member.docstring
            except griffe.AliasResolutionError:
                doc = None
        if doc is None or not doc.value.strip():
            out.append(f"{module}.{name}")
    return out


def missing_from_inventory(inventory_names: set[str], modules: list[str]) -> list[str]:
    """Exported names of `modules` that mkdocstrings did not document."""
    out = []
    for m in modules:
        for n in exported_names(m):
            name = f"{m}.{n}"
            if name not in inventory_names and DOCUMENTED_AT.get(name) not in inventory_names:
                out.append(name)
    return out


def read_inventory(path: Path) -> set[str]:
    from mkdocstrings import Inventory

    with open(path, "rb") as fh:
        return set(Inventory.parse_sphinx(fh))


# -- the hook's events --------------------------------------------------------------------------

def on_config(config: Any) -> Any:
    _checkout_first()
    pages = [page_path("index")] + [{name: page_path(name)} for name, _ in available_modules()]
    nav = config["nav"]
    for i, item in enumerate(nav):
        if isinstance(item, dict) and NAV_TITLE in item:
            nav[i] = {NAV_TITLE: pages}
            break
    else:
        log.warning("the nav has no %r entry to fill", NAV_TITLE)
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for name, what in available_modules():
        content = f"::: {name}\n"
        if name in PAGE_OPTIONS:
            content += f"    options:\n      {PAGE_OPTIONS[name]}\n"
        for exported, path in DOCUMENTED_AT.items():
            if exported.rpartition(".")[0] == name:
                content += (f"\n::: {path}\n    options:\n      heading: {exported}\n"
                            f"      heading_level: 2\n      show_root_full_path: false\n")
        files.append(File.generated(config, page_path(name), content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    # the reference index lists the modules that exist in this build
    if page.file.src_uri != page_path("index"):
        return markdown
    rows = "\n".join(f"| [`{name}`]({name}.md) | {what} |" for name, what in available_modules())
    return markdown.replace("<!-- modules -->", "| module | holds |\n|---|---|\n" + rows)


def on_post_build(config: Any) -> None:
    modules = [name for name, _ in available_modules()]
    inventory = Path(config["site_dir"]) / "objects.inv"
    problems = missing_from_inventory(read_inventory(inventory), modules)
    for name in problems:
        log.warning("%s is exported but not in the API reference", name)
    for module in modules:
        for name in missing_docstrings(module):
            log.warning("%s is exported but has no docstring", name)
