"""Sphinx configuration of the skrouter documentation (builds offline)."""

import os

import skrouter

project = "skrouter"
author = "skrouter developers"
release = skrouter.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
# Document the methods that routers inherit from their base class, but not
# scikit-learn's own machinery (get_params, set_output, metadata routing).
autodoc_default_options = {
    "members": True,
    "inherited-members": "BaseEstimator,TransformerMixin,_SetOutputMixin,_MetadataRequester",
}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# The gallery runs every example; SKROUTER_EXAMPLES_QUICK=1 (set below unless
# the caller sets it) keeps each example to seconds with small data.
os.environ.setdefault("SKROUTER_EXAMPLES_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "plot_gallery": os.environ.get("SKROUTER_DOCS_RUN_EXAMPLES", "1") == "1",
}

templates_path = []
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []
# MathJax would load from a CDN when a reader opens a page; the build itself
# needs no network.
