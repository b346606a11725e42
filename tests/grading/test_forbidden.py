"""The forbidden mechanism: the AST check names every way solution.py reaches a forbidden name, and the
worker's stubs make a name reached at run time unusable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from seminar_lib.grading.forbidden import find_forbidden

RULES = ["sklearn.metrics", "seminar_lib.models.ease:EASE"]


@pytest.mark.parametrize("source, what", [
    ("import sklearn.metrics", "line 1: imports sklearn.metrics"),
    ("from sklearn.metrics import roc_auc_score", "imports sklearn.metrics"),
    ("from sklearn import metrics", "imports sklearn.metrics"),
    ("import sklearn as sk\nsk.metrics.roc_auc_score([1], [0])", "line 2: uses sklearn.metrics.roc_auc_score"),
    ("import importlib\nimportlib.import_module('sklearn.metrics.pairwise')", "imports sklearn.metrics.pairwise"),
    ("m = __import__('sklearn.metrics')", "imports sklearn.metrics"),
    ("from seminar_lib.models.ease import EASE", "imports seminar_lib.models.ease.EASE"),
    ("import seminar_lib.models.ease as e\ne.EASE(1)", "uses seminar_lib.models.ease.EASE"),
])
def test_every_literal_way_in_is_found(source, what):
    found = find_forbidden(source, RULES)
    assert found and any(what in f for f in found), found


@pytest.mark.parametrize("source", [
    "import sklearn\nimport numpy as np",
    "from seminar_lib.models.ease import ease_weights_if_it_existed",  # other names of the module are fine
    "import seminar_lib.models.ease",  # the module holding a forbidden attribute is not itself forbidden
    "def f(:",  # unparsable: the cases stage reports the syntax error
])
def test_allowed_or_unparsable_sources_pass(source):
    assert find_forbidden(source, RULES) == []


def test_stubs_and_guarded_imports_refuse_at_run_time_and_leave_the_library_working(tmp_path):
    solution = tmp_path / "solution.py"
    solution.write_text(textwrap.dedent("""
        import importlib
        def attempts():
            import seminar_lib.models.ease as ease
            from seminar_lib.models import ease as ease2
            return [lambda: importlib.import_module("seminar_lib." + "metrics").ndcg,
                    lambda: importlib.import_module("seminar_lib.metrics.ranking").ndcg,
                    lambda: ease.EASE(10),
                    lambda: ease2.EASE,
                    lambda: __import__("seminar_lib.models.ease", fromlist=["EASE"]).EASE]
    """))
    code = textwrap.dedent(f"""
        import seminar_lib.metrics, seminar_lib.models.ease  # imported before the stubs (as a harness might)
        from seminar_lib.grading.cases import load_module
        from seminar_lib.grading.forbidden import ForbiddenError, guarded_builtins, install_stubs
        rules = ["seminar_lib.metrics", "seminar_lib.models.ease:EASE"]
        install_stubs(rules)
        module = load_module(__import__("pathlib").Path({str(solution)!r}), "solution", guarded_builtins(rules))
        out = []
        for attempt in module.attempts():
            try:
                attempt()
                out.append("reached")
            except ForbiddenError:
                out.append("refused")
        print(out, seminar_lib.models.ease.EASE.__name__)  # the library's own view is intact
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['refused', 'refused', 'refused', 'refused', 'refused'] EASE"
