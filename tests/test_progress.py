from __future__ import annotations

from seminar_lib.progress import bars_disabled, track


def test_tqdm_disable_hides_bars_even_where_tqdm_notebook_would_ignore_it(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert bars_disabled() and track(range(3)).disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not bars_disabled()
    monkeypatch.delenv("TQDM_DISABLE")
    assert not bars_disabled()
    assert list(track(range(3), desc="x")) == [0, 1, 2]
