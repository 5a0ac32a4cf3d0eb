"""Sphinx configuration of skprune's documentation.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(the gallery executes every ``examples/*.py``; ``-D plot_gallery=0`` skips
running them, as ``tests/test_docs.py`` does). The Markdown pages (``*.md``)
and the notebooks of ``examples/`` (copied to ``docs/notebooks/``, shown with
their stored outputs, not executed) are read by MyST-NB.
"""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document this checkout, installed or not

import skprune  # noqa: E402

skprune._import_all()  # the package exports lazily; autodoc and autosummary read its namespace

project = "skprune"
author = "skprune developers"
copyright = "skprune developers"
release = skprune.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_nb",  # Markdown pages (MyST) and notebooks
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build", "_screenshots", "auto_examples/*.ipynb", "auto_examples/*.py", "**.zip", "**.md5",
]
root_doc = "index"

# autodoc / autosummary: one page per public object under api/generated/,
# named as skprune._doc_link builds the "?" links of the HTML repr.
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# "On this page" of an API page lists members as ``predict``, not ``PrunedNetClassifier.predict``
toc_object_entries_show_parents = "hide"


# MyST / MyST-NB: the notebooks show the outputs stored in them (``tests/test_notebooks.py``
# executes them); ``#`` headings get anchors, so ``[text](page.md#a-heading)`` links resolve.
nb_execution_mode = "off"
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]


def _copy_notebooks() -> None:
    """Copy ``examples/*.ipynb`` next to ``notebooks/index.rst`` (sources live in ``examples/``)."""
    target = Path(__file__).parent / "notebooks"
    for old in target.glob("*.ipynb"):
        if not (ROOT / "examples" / old.name).exists():
            old.unlink()
    for notebook in sorted((ROOT / "examples").glob("*.ipynb")):
        copy = target / notebook.name
        if not copy.exists() or copy.read_bytes() != notebook.read_bytes():
            shutil.copyfile(notebook, copy)


_copy_notebooks()


# ------------------------------------------------------------ API signatures
_CLASS_REPR = re.compile(r"<(class|function) '([\w.]+)'>")


def _public_path(dotted: str) -> str:
    """The shortest public import path of the object at ``dotted`` (``skprune.MLP``, ``torch.optim.Adam``).

    An object reachable only through a private module is shown by its bare name.
    """
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):  # the longest importable module, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
        except AttributeError:
            return parts[-1]
        break
    else:
        return parts[-1]
    for i in range(1, len(parts)):
        prefix = parts[:i]
        if any(p.startswith("_") for p in prefix):
            break
        try:
            module = importlib.import_module(".".join(prefix))
        except ImportError:
            break
        if getattr(module, parts[-1], None) is obj:
            return ".".join(prefix + [parts[-1]])
    return parts[-1] if any(p.startswith("_") for p in parts[:-1]) else dotted


def _public_signature(app, what, name, obj, options, signature, return_annotation):
    """Show defaults by their public names.

    ``module=skprune.MLP``, not ``module=<class 'skprune.nn._networks.MLP'>``.
    """
    if signature:
        signature = _CLASS_REPR.sub(lambda m: _public_path(m.group(2)), signature)
    return signature, return_annotation


# ------------------------------------------- inherited estimator parameters
_SKORCH_NET = "https://skorch.readthedocs.io/en/stable/net.html#skorch.net.NeuralNet"
#: the parameters a PrunedNet passes to skorch's NeuralNet unchanged, described as skorch does
_SKORCH_PARAMETERS = {
    "iterator_train": (
        "torch DataLoader-like class, default=BatchIterator",
        "Iterator over the training batches. The default slices the tensors the data was "
        "converted to once (no per-sample ``Dataset`` and collate); any skorch/torch "
        "``DataLoader`` class works, configured with ``iterator_train__<arg>``.",
    ),
    "iterator_valid": (
        "torch DataLoader-like class, default=BatchIterator",
        "Iterator over the validation and prediction batches (``iterator_valid__<arg>``).",
    ),
    "dataset": (
        "torch Dataset class, default=ArrayDataset",
        "Wraps ``X`` and ``y`` when a custom iterator needs a ``Dataset``.",
    ),
    "callbacks": (
        "list of skorch callbacks or None, default=None",
        "skorch callbacks (``EarlyStopping``, ``LRScheduler``, ``Checkpoint``, ...), added to the "
        "default ones; parameters by ``callbacks__<name>__<arg>``.",
    ),
    "predict_nonlinearity": (
        "callable, None or 'auto', default='auto'",
        "Applied to the module's output in ``predict_proba``; ``'auto'`` is softmax for a "
        "classifier trained with cross-entropy and the identity otherwise.",
    ),
    "warm_start": (
        "bool, default=False",
        "Whether ``fit`` continues from the fitted module instead of re-initializing it.",
    ),
    "use_caching": (
        "bool or 'auto', default='auto'",
        "Whether skorch's scoring callbacks reuse the predictions of the validation step.",
    ),
    "torch_load_kwargs": (
        "dict or None, default=None",
        "Arguments to ``torch.load`` in skorch's ``load_params``; ``None`` uses skorch's safe default "
        "(``weights_only=True``).",
    ),
}


def _documented(lines: list[str]) -> tuple[set[str], int | None, int | None]:
    """Names documented under Parameters, where the section starts and where ``**kwargs`` is."""
    names, start, kwargs_at = set(), None, None
    for i, line in enumerate(lines):
        if line.strip() == "Parameters" and i + 1 < len(lines) and lines[i + 1].strip().startswith("---"):
            start = i + 2
            continue
        if start is None or i < start:
            continue
        next_line = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if line and not line.startswith(" ") and next_line.startswith("---"):
            break  # the next section
        match = re.match(r"^(\*{0,2}[A-Za-z_]\w*)(\s*:|\s*$)", line)
        if match:
            names.update(n.strip() for n in match.group(1).split(","))
            if match.group(1) == "**kwargs":
                kwargs_at = i
    return names, start, kwargs_at


def _inherited_parameters(app, what, name, obj, options, lines):
    """Document every constructor parameter of an estimator, the ones skorch defines included.

    Those described in :class:`skprune.PrunedNet`'s docstring are copied from it; the others
    are skorch's, described briefly with a link to skorch's ``NeuralNet`` page.
    """
    if what != "class" or not (inspect.isclass(obj) and issubclass(obj, skprune.PrunedNet)):
        return
    from numpydoc.docscrape import NumpyDocString

    base = {p.name: p for p in NumpyDocString(inspect.getdoc(skprune.PrunedNet))["Parameters"]}
    names, start, kwargs_at = _documented(lines)
    if start is None:
        return
    added = []
    for param in inspect.signature(obj).parameters.values():
        if param.kind is param.VAR_KEYWORD or param.name in names:
            continue
        if param.name in base and obj is not skprune.PrunedNet:
            entry = base[param.name]
            added += [f"{param.name} : {entry.type}"] + [f"    {d}" for d in entry.desc]
        elif param.name in _SKORCH_PARAMETERS:
            kind, text = _SKORCH_PARAMETERS[param.name]
            added += [f"{param.name} : {kind}", f"    {text} As in skorch's `NeuralNet <{_SKORCH_NET}>`_."]
    if added:
        at = kwargs_at if kwargs_at is not None else start
        lines[at:at] = added


def _skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated metadata-routing setters (``set_fit_request``, ...)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-signature", _public_signature)
    # before numpydoc (priority 500) reads the docstring
    app.connect("autodoc-process-docstring", _inherited_parameters, priority=400)
    app.add_css_file("skprune.css")

# sphinx-gallery: every script in examples/ is an example page.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",  # execute every example, not only plot_*.py
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 10,
    "show_memory": False,
    "abort_on_example_error": True,
    "reset_modules": ("matplotlib",),
    "doc_module": ("skprune",),
    "backreferences_dir": "gen_modules/backreferences",
}

html_theme = "pydata_sphinx_theme"
html_title = f"skprune {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "secondary_sidebar_items": ["page-toc"],
    "show_toc_level": 2,
}
html_show_sourcelink = False
