"""Links from the notebook HTML repr ("?" icon) to skprune's API documentation.

scikit-learn's HTML repr draws a "?" icon linking to an estimator's
documentation page when ``_get_doc_link()`` returns a URL. It builds that
URL from three class attributes (``_doc_link_module``, ``_doc_link_template``
and ``_doc_link_url_param_generator``, see
``sklearn.utils._repr_html.base._HTMLDocumentationLinkMixin``); by default
only classes of the ``sklearn`` package get a link. :class:`DocLinkMixin`
sets them for skprune's estimators, pruners and schedules.
"""

from __future__ import annotations

import importlib

from ._version import __version__

#: Root of skprune's hosted documentation; ``{version}`` is :func:`doc_version`.
DOCUMENTATION_URL = "https://skprune.readthedocs.io/en/{version}"

#: API page of a public object, in Sphinx autosummary's naming.
API_PAGE = "/api/generated/{estimator_module}.{estimator_name}.html"


def doc_version(version: str | None = None) -> str:
    """Documentation version of a skprune version string.

    Released versions link to their own pages (``"0.1.0"``); development,
    pre-release and local builds (``"0.2.0.dev3"``, ``"0.1.0+g1234"``) link
    to ``"latest"``, the documentation of the development branch.
    """
    if version is None:
        version = __version__
    if any(marker in version for marker in ("dev", "+", "a", "b", "rc")):
        return "latest"
    return version


def public_module(cls: type) -> str:
    """Shortest public import path of ``cls``: ``"skprune"`` when exported there.

    ``skprune.pruners.magnitude.MagnitudePruning`` is documented as
    ``skprune.MagnitudePruning``; a class only importable from a submodule
    keeps the submodule path, cut at the first private part.
    """
    root = cls.__module__.split(".")[0]
    parts = cls.__module__.split(".")
    candidates = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for name in candidates:
        if any(part.startswith("_") for part in name.split(".")):
            break
        try:
            module = importlib.import_module(name)
        except ImportError:  # pragma: no cover - the class's own package imports
            continue
        if getattr(module, cls.__name__, None) is cls:
            return name
    public = []
    for part in parts:
        if part.startswith("_"):
            break
        public.append(part)
    return ".".join(public) or root


class DocLinkMixin:
    """Point the "?" of scikit-learn's HTML repr at skprune's documentation.

    Put it before ``BaseEstimator`` (or a class deriving from it) in the
    bases. Subclasses defined outside the ``skprune`` package (a user's
    custom pruner) get no link, as in scikit-learn.
    """

    _doc_link_module = "skprune"
    _doc_link_template = DOCUMENTATION_URL + API_PAGE

    def _doc_link_url_param_generator(self) -> dict:
        cls = type(self)
        return {
            "version": doc_version(),
            "estimator_module": public_module(cls),
            "estimator_name": cls.__name__,
        }
