"""The documentation: it builds without warnings, its links resolve, its code runs.

* Every python code block of ``README.md`` and of the guide pages
  (``docs/**/*.rst``) runs on its own, as written, in a fresh interpreter
  in an empty directory; the blocks of a Markdown guide page (``docs/*.md``)
  run top to bottom as one script.
* Every public object has a docstring with a Parameters section (when it
  takes parameters) and an Examples section, and documents no parameter it
  does not have (numpydoc validation); the examples run (doctest).
* The Sphinx site builds with warnings as errors (the gallery's scripts are
  not executed here, ``-D plot_gallery=0``; ``.ci/run`` builds the full site
  with them). In the built HTML every internal link has a target, and every
  documentation URL skprune generates (``_get_doc_link``, the "?" of the
  HTML repr) has a page.

* Every page of ``docs/`` is in a toctree, and a page never cites a file
  that is on the site (a guide page, ``benchmarks/RESULTS.md``, a notebook
  or a gallery script) as a plain-text repository path: it links to the page.
* The API pages show public names in signatures and document every
  constructor parameter of the estimators, skorch's included.

The Sphinx test is skipped, saying why, where sphinx and its extensions are
not installed (``pip install -e ".[docs]"``; the ``test`` extra has them).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import skprune
from skprune._doc_link import DOCUMENTATION_URL

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
SUBPACKAGES = [
    "skprune.nn",
    "skprune.pruners",
    "skprune.model_selection",
    "skprune.inspection",
    "skprune.deploy",
]
#: seconds a code block may take (each fits small networks for a few epochs)
BLOCK_TIMEOUT = 300
#: seconds the Sphinx build may take (about 40 s on 2 cores without the gallery)
BUILD_TIMEOUT = 600


def _env() -> dict:
    env = dict(os.environ)
    # this checkout of skprune, whether installed or run from the source tree
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = "1"  # small networks train fastest on one thread; CI has 2 cores
    env["MPLBACKEND"] = "Agg"
    return env


# --------------------------------------------------------------- code blocks
def _markdown_blocks(path: Path):
    """``(line, code)`` of each fenced python block of a Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = re.match(r"^(\s*)```\s*python\s*$", lines[i])
        if match:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            blocks.append((start + 1, "\n".join(body)))
        i += 1
    return blocks


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _rst_blocks(path: Path):
    """``(line, code)`` of each ``.. code-block:: python`` directive of a reST file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = re.match(r"^(\s*)\.\. code-block::\s*(python|python3|py)\s*$", lines[i])
        if match:
            indent = len(match.group(1))
            i += 1
            while i < len(lines) and re.match(r"^\s+:\w[\w-]*:", lines[i]):  # directive options
                i += 1
            start, body = i, []
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
                body.append(lines[i])
                i += 1
            while body and not body[-1].strip():
                body.pop()
            code = "\n".join(body)
            width = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
            blocks.append((start + 1, "\n".join(b[width:] for b in code.splitlines())))
        else:
            i += 1
    return blocks


def _code_blocks():
    found = [(README, line, code) for line, code in _markdown_blocks(README)]
    # a Markdown guide page's blocks run top to bottom as one script (later ones reuse earlier names)
    for page in sorted(DOCS.glob("*.md")):
        blocks = _markdown_blocks(page)
        if blocks:
            found.append((page, blocks[0][0], "\n\n".join(code for _, code in blocks)))
    for page in sorted(DOCS.rglob("*.rst")):
        if "_build" in page.parts or "api" in page.parts or "auto_examples" in page.parts:
            continue
        found += [(page, line, code) for line, code in _rst_blocks(page)]
    return found


CODE_BLOCKS = _code_blocks()


def _block_id(block) -> str:
    path, line, _ = block
    return f"{path.relative_to(ROOT)}:{line}"


def test_readme_is_a_short_landing_page_whose_links_resolve():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 200
    targets = re.findall(r"\]\(([^)#\s]+)[^)]*\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert any(t.startswith("docs/guide/") for t in local)
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"
    # the two commands need no choice first: the CPU-only torch wheel is an optional note after them
    assert text.index("python -m skprune demo") < text.index("download.pytorch.org/whl/cpu")
    assert "*Optional:*" in text


def test_readme_and_pyproject_link_no_unpublished_documentation_site():
    """The readthedocs address appears only as the intended home that ``.readthedocs.yaml`` publishes."""
    readme = README.read_text(encoding="utf-8")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "https://skprune.readthedocs.io" not in readme  # no clickable link to a site not live
    assert "not published" in readme and "intended home" in readme
    assert (ROOT / ".readthedocs.yaml").exists()
    urls = re.search(r"^\[project\.urls\]\n((?:[^\[].*\n)*)", pyproject, re.MULTILINE)
    assert urls is None or "skprune.readthedocs.io" not in urls.group(1)


def test_code_blocks_are_found():
    pages = {path for path, _, _ in CODE_BLOCKS}
    assert README in pages
    assert len(pages) >= 8, sorted(str(p) for p in pages)


#: A fork server: it imports the heavy modules once, then runs each block in a
#: forked child (a fresh process and namespace, ``__name__ == "__main__"``, its
#: own working directory), so a block costs its own work, not torch's import.
_SERVER = r"""
import json, os, runpy, signal, sys, time, traceback
import numpy, pandas, scipy.sparse, sklearn.model_selection, sklearn.pipeline, torch, skorch, skprune
torch.set_num_threads(1)
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        os.chdir(request["cwd"])
        with open("stdout.txt", "wb") as out, open("stderr.txt", "wb") as err:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        sys.argv = [request["script"]]
        code = 0
        try:
            runpy.run_path(request["script"], run_name="__main__")
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    deadline = time.monotonic() + request["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            rc = "timeout"
            break
        time.sleep(0.05)
    print(json.dumps({"rc": rc}), flush=True)
"""


@pytest.fixture(scope="module")
def block_runner():
    """Run a script in a forked child of a process that has imported torch, sklearn and skprune."""
    if not hasattr(os, "fork"):  # pragma: no cover - Windows: a plain subprocess per block
        def run(script: Path, cwd: Path):
            result = subprocess.run(
                [sys.executable, str(script)], cwd=cwd, env=_env(), capture_output=True, text=True,
                timeout=BLOCK_TIMEOUT,
            )
            return result.returncode, result.stderr

        yield run
        return
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_env(), text=True
    )

    def run(script: Path, cwd: Path):
        request = {"script": str(script), "cwd": str(cwd), "timeout": BLOCK_TIMEOUT}
        server.stdin.write(json.dumps(request) + "\n")
        server.stdin.flush()
        answer = server.stdout.readline()
        assert answer, "the code-block runner died"
        return json.loads(answer)["rc"], (cwd / "stderr.txt").read_text(errors="replace")

    yield run
    server.stdin.close()
    server.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("block", CODE_BLOCKS, ids=_block_id)
def test_code_block_runs_on_its_own(block, tmp_path, block_runner):
    path, line, code = block
    script = tmp_path / "block.py"
    script.write_text(code + "\n", encoding="utf-8")
    rc, stderr = block_runner(script, tmp_path)
    assert rc == 0, (
        f"the python block at {path.relative_to(ROOT)}:{line} fails when run on its own (exit {rc}):\n"
        f"{code}\n--- stderr ---\n{stderr[-3000:]}"
    )


# ------------------------------------------------------------ site structure
#: the source pages of the site (generated ones and copies of the notebooks excluded)
def _site_pages() -> list[Path]:
    skip = {"_build", "_templates", "_static", "_screenshots", "api", "auto_examples", "notebooks"}
    skip.add("gen_modules")
    pages = [
        p
        for p in sorted(DOCS.rglob("*"))
        if p.suffix in (".rst", ".md") and not skip & set(p.relative_to(DOCS).parts[:-1])
        and p.name != "sg_execution_times.rst"
    ]
    return pages + [DOCS / "api" / "index.rst", DOCS / "notebooks" / "index.rst"]


def _toctree_entries(page: Path) -> set[Path]:
    """The pages (source files) that the ``toctree`` directives of a reST page include."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: set[Path] = set()
    i = 0
    while i < len(lines):
        if re.match(r"^\s*\.\. toctree::", lines[i]):
            indent = _indent(lines[i])
            glob = False
            i += 1
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
                entry = lines[i].strip()
                i += 1
                if not entry:
                    continue
                if entry.startswith(":"):
                    glob = glob or entry == ":glob:"
                    continue
                entry = re.sub(r"^.*<(.+)>$", r"\1", entry)  # "Title <target>"
                base = DOCS / entry.lstrip("/") if entry.startswith("/") else page.parent / entry
                for suffix in (".rst", ".md", ".ipynb"):
                    if glob and "*" in entry:
                        found |= {p.resolve() for p in base.parent.glob(base.name + suffix)}
                    elif base.with_name(base.name + suffix).exists():
                        found.add(base.with_name(base.name + suffix).resolve())
        else:
            i += 1
    return found


def test_every_page_of_the_site_is_in_a_toctree():
    included = set()
    for page in _site_pages():
        if page.suffix == ".rst":
            included |= _toctree_entries(page)
    root = DOCS / "index.rst"
    orphans = [str(p.relative_to(ROOT)) for p in _site_pages() if p.resolve() not in included and p != root]
    assert not orphans, f"pages of docs/ no toctree includes (add them to docs/guide/index.rst): {orphans}"
    # the guide pages the README lists are all on the site
    listed = re.findall(r"\]\((docs/[^)#\s]+\.(?:md|rst))", README.read_text(encoding="utf-8"))
    assert listed
    off_site = [t for t in listed if (ROOT / t).resolve() not in included | {(DOCS / "index.rst").resolve()}]
    assert not off_site, f"README lists guide pages that are not on the site: {off_site}"


def test_the_notebook_index_lists_every_notebook():
    notebooks = sorted(p.name for p in (ROOT / "examples").glob("*.ipynb"))
    assert "07_noisy_data.ipynb" in notebooks
    assert ":glob:" in (DOCS / "notebooks" / "index.rst").read_text(encoding="utf-8")
    guide = (DOCS / "guide" / "getting_started.rst").read_text(encoding="utf-8")
    unlisted = [n for n in notebooks if f":doc:`/notebooks/{Path(n).stem}`" not in guide]
    assert not unlisted, f"getting_started.rst does not link these notebooks: {unlisted}"


#: repository paths of files that are pages of the site: cite them by a link to the page
_ON_SITE = re.compile(
    r"(?<![\w/(<])((?:docs/[\w/]+\.(?:md|rst))|benchmarks/RESULTS\.md|examples/[\w*]+\.(?:py|ipynb))"
)


def _prose(page: Path) -> str:
    """The text of a page without its code blocks and link targets (where a path is fine)."""
    text = page.read_text(encoding="utf-8")
    if page.suffix == ".md":
        text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
        text = re.sub(r"\]\([^)]*\)", "]", text)  # [text](target)
        text = re.sub(r"^```\{include\}.*$", "", text, flags=re.MULTILINE)
    else:
        lines, kept, i = text.splitlines(), [], 0
        while i < len(lines):
            if re.match(r"^\s*\.\. (code-block|code|literalinclude)::", lines[i]):
                indent = _indent(lines[i])
                i += 1
                while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
                    i += 1
                continue
            kept.append(lines[i])
            i += 1
        text = re.sub(r"`[^`<]*<[^>]+>`_", "", "\n".join(kept))  # `text <target>`_
    return text


@pytest.mark.parametrize("page", _site_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_a_page_links_to_site_pages_instead_of_citing_repository_paths(page):
    cited = sorted(set(_ON_SITE.findall(_prose(page))))
    assert not cited, (
        f"docs/{page.relative_to(DOCS)} names {cited} as plain text, which a reader of the site cannot "
        "follow: link to the page instead (:doc:`/benchmarks`, :doc:`/speed`, [results](benchmarks.md), "
        ":doc:`/notebooks/07_noisy_data`, :ref:`sphx_glr_auto_examples_<name>.py`)."
    )


def test_the_plain_path_check_catches_a_cited_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Figures in `benchmarks/RESULTS.md`; see [speed](speed.md).\n", encoding="utf-8")
    assert _ON_SITE.findall(_prose(page)) == ["benchmarks/RESULTS.md"]
    page.write_text("See `docs/speed.md`, and `benchmarks/cv_cost.py` measures it.\n", encoding="utf-8")
    assert _ON_SITE.findall(_prose(page)) == ["docs/speed.md"]


def test_every_gallery_example_draws_a_figure_for_its_thumbnail():
    """A gallery card shows the example's first figure; an example without one shows a placeholder."""
    examples = sorted(p for p in (ROOT / "examples").glob("*.py") if p.name != "__init__.py")
    assert examples
    blank = [
        p.name
        for p in examples
        if "sphinx_gallery_thumbnail_path" not in (text := p.read_text(encoding="utf-8"))
        and not re.search(r"\b(plt\.(subplots|figure)|plot_\w+\()", text)
    ]
    assert not blank, f"gallery examples that draw no figure (their card shows a placeholder): {blank}"


# ---------------------------------------------------------------- docstrings
def _public_objects():
    """``(qualified name, object)`` of everything public: ``skprune.__all__`` and each subpackage's."""
    objects = {}
    for name in skprune.__all__:
        if not name.startswith("__"):
            objects[f"skprune.{name}"] = getattr(skprune, name)
    seen = {id(obj) for obj in objects.values()}
    for module_name in SUBPACKAGES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if id(obj) not in seen and (inspect.isclass(obj) or inspect.isfunction(obj)):
                objects[f"{module_name}.{name}"] = obj
                seen.add(id(obj))
    return sorted(objects.items())


PUBLIC = _public_objects()


def _takes_parameters(obj) -> bool:
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return False
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    return any(name not in ("self", "cls") for name in signature.parameters)


@pytest.mark.parametrize("name", [name for name, _ in PUBLIC])
def test_public_docstring_has_parameters_and_examples(name):
    validate = pytest.importorskip("numpydoc.validate", reason="numpydoc is not installed").validate
    obj = dict(PUBLIC)[name]
    result = validate(name)
    codes = {code: message for code, message in result["errors"]}
    assert "GL08" not in codes, f"{name} has no docstring"
    assert "EX01" not in codes, f"{name}: add a short Examples section"
    assert "PR02" not in codes, f"{name}: {codes.get('PR02')}"  # documents a parameter it does not have
    if _takes_parameters(obj):
        assert "PR01" not in codes or inspect.isclass(obj) and issubclass(obj, skprune.PrunedNet), (
            f"{name}: {codes.get('PR01')}"
        )
        assert re.search(r"^\s*Parameters\n\s*-{3,}", obj.__doc__, re.MULTILINE), (
            f"{name} takes parameters but its docstring has no Parameters section"
        )


def _public_object_ids():
    return [name for name, obj in PUBLIC if obj.__doc__ and ">>>" in obj.__doc__]


@pytest.mark.parametrize("name", _public_object_ids())
def test_docstring_examples_run(name):
    """The Examples of every public docstring run and print what they show (doctest)."""
    import doctest

    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obj = dict(PUBLIC)[name]
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    output = []
    try:
        for test in finder.find(obj, name, globs={}):
            runner.run(test, out=output.append)
    finally:
        plt.close("all")
    assert runner.failures == 0, "".join(output)


# ------------------------------------------------------------- built website
def _doc_link_classes():
    """Public classes whose HTML repr links to skprune's documentation.

    Abstract ones (``PrunerProtocol``) have no instances; their pages are checked with the public objects.
    """
    return [
        obj
        for _, obj in PUBLIC
        if inspect.isclass(obj) and hasattr(obj, "_get_doc_link") and not inspect.isabstract(obj)
    ]


def _repr_instances():
    """An instance of every public estimator, pruner and schedule class, some nested in others."""
    from skprune import (
        ChannelPruning,
        CombinedPruning,
        InputPruning,
        Iterative,
        MagnitudePruning,
        NeuronPruning,
        OneShot,
        Polynomial,
        PrunedNetClassifier,
        PrunedNetCV,
        TaylorPruning,
    )

    special = {
        CombinedPruning: lambda: CombinedPruning(
            [("inputs", InputPruning(n_features=5)), ("weights", MagnitudePruning(schedule=OneShot()))]
        ),
        PrunedNetCV: lambda: PrunedNetCV(PrunedNetClassifier(pruner=NeuronPruning(schedule=Iterative()))),
    }
    instances = []
    for cls in _doc_link_classes():
        instances.append(special[cls]() if cls in special else cls())
    # nested: the estimator's own "?" and those of its pruner and schedule
    instances.append(PrunedNetClassifier(pruner=TaylorPruning(schedule=Polynomial())))
    instances.append(PrunedNetClassifier(pruner=ChannelPruning(schedule=OneShot())))
    return instances


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.hrefs.append(attrs[key])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def _page_of(url: str, html_dir: Path) -> Path:
    """The file of the built site that a hosted documentation URL points to."""
    root = DOCUMENTATION_URL.split("{version}")[0]
    assert url.startswith(root), url
    rest = url[len(root) :].split("/", 1)[1]  # drop the version
    return html_dir / urlsplit(rest).path


def _build(tmp_path: Path) -> Path:
    html_dir = tmp_path / "html"
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "html",
        "-d",
        str(tmp_path / "doctrees"),
        "-D",
        "plot_gallery=0",
        str(DOCS),
        str(html_dir),
    ]
    result = subprocess.run(
        command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=BUILD_TIMEOUT
    )
    assert result.returncode == 0, f"the docs build fails or warns:\n{result.stderr[-6000:]}"
    return html_dir


@pytest.mark.slow
def test_docs_build_and_every_link_resolves(tmp_path):
    """One test, so that the site is built once even under pytest-xdist."""
    for module in ("sphinx", "pydata_sphinx_theme", "sphinx_gallery", "numpydoc"):
        pytest.importorskip(module, reason=f'{module} is not installed: pip install -e ".[docs]"')
    pytest.importorskip("matplotlib", reason="the gallery needs matplotlib")
    html_dir = _build(tmp_path)

    # every internal link (href/src without a scheme) of every page has a target
    pages = sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.relative_to(html_dir).parts)
    parsed = {page: _parse(page) for page in pages}
    broken = []
    for page, links in parsed.items():
        for href in links.hrefs:
            parts = urlsplit(href)
            if parts.scheme or href.startswith(("//", "mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(html_dir)}: {href}")
            elif parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(html_dir)}: {href} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:50])

    # every public object of the API reference has its page
    generated = {p.stem for p in (html_dir / "api" / "generated").glob("*.html")}
    missing = [name for name, _ in PUBLIC if name not in generated]
    assert not missing, f"public objects without an API page: {missing}"

    # API pages: public names in signatures, every constructor parameter of an estimator documented
    for name in ("PrunedNetClassifier", "PrunedNetRegressor", "PrunedNet"):
        page = (html_dir / "api" / "generated" / f"skprune.{name}.html").read_text(encoding="utf-8")
        signature = page[page.index('<dt class="sig'):]
        signature = signature[: signature.index("</dt>")]
        assert "&lt;class" not in signature and "skprune._" not in signature, f"{name}: {signature[:400]}"
        assert "skprune.MLP" in re.sub(r"<[^>]+>", "", signature)
        params = [p for p in inspect.signature(getattr(skprune, name)).parameters if p != "kwargs"]
        undocumented = [p for p in params if f"<strong>{p}</strong>" not in page]
        assert not undocumented, f"{name}'s API page does not document {undocumented}"
    # the guide pages that used to be outside the site are pages of it, and mention what they cover
    deploy = (html_dir / "deploy.html").read_text(encoding="utf-8")
    assert "OnnxPredictor" in deploy and "onnxruntime" in deploy.lower()
    for page in ("choosing", "speed", "integrity", "benchmarks", "notebooks/07_noisy_data"):
        assert (html_dir / f"{page}.html").exists(), f"{page} is not on the site"

    # every documentation URL skprune generates for its classes has a page
    for cls in _doc_link_classes():
        url = cls.__new__(cls)._get_doc_link()
        assert url, f"{cls.__name__} has no documentation link"
        assert _page_of(url, html_dir).exists(), f"{cls.__name__}'s link {url} has no page"

    # ... and so does every "?" of the HTML repr of every public estimator, pruner and schedule
    linked = set()
    for instance in _repr_instances():
        html = instance._repr_html_()
        urls = set(re.findall(r'href="(https://skprune\.readthedocs\.io/[^"]+)"', html))
        assert urls, f"the HTML repr of {type(instance).__name__} has no link to the documentation"
        for url in urls:
            name = type(instance).__name__
            assert _page_of(url, html_dir).exists(), f"'?' link {url} of {name} has no page"
        linked |= urls
    assert len(linked) >= len(_doc_link_classes())
