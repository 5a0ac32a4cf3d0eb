"""Sphinx configuration of skprune's documentation.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(the gallery executes every ``examples/*.py``; ``-D plot_gallery=0`` skips
running them, as ``tests/test_docs.py`` does).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document this checkout, installed or not

import skprune  # noqa: E402

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
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "**.zip", "**.md5"]
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


def _skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated metadata-routing setters (``set_fit_request``, ...)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)

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
html_static_path: list[str] = []
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "secondary_sidebar_items": ["page-toc"],
    "show_toc_level": 2,
}
html_show_sourcelink = False
