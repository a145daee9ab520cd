"""mailcanary_canary_auth_results_total: what the receiving side's Authentication-Results
said, counted per method and result; series appear when first seen."""

from __future__ import annotations

from mailcanary.daemon.exposition import render_chunks
from mailcanary.daemon.metrics import MetricsState
from mailcanary.result import ProbeResult

NAME = "mailcanary_canary_auth_results_total"


def result(auth: object, **extra: object) -> ProbeResult:
    return ProbeResult("roundtrip", "a2b", True, "ok", "ok", None, "", "", 0.1, {},
                       extra={"placement": "inbox", "auth_results": auth, **extra})


def lines(state: MetricsState) -> list[str]:
    return [line for line in "".join(render_chunks(state)).splitlines()
            if line.startswith(NAME)]


def test_counted_per_method_and_result() -> None:
    state = MetricsState()
    state.ensure("roundtrip", "a2b", ("lost",), delivery=True)
    assert lines(state) == []  # nothing seen yet: no series
    state.record(result({"spf": "pass", "dkim": "pass", "dmarc": "none"}))
    state.record(result({"spf": "pass", "dkim": "fail", "dmarc": "none"}))
    state.record(result({"spf": "pass", "dkim": "fail", "dmarc": "none"}, replayed=True))
    state.record(result(None))  # a lost canary: nothing to count
    lbl = 'probe="roundtrip",target="a2b"'
    assert lines(state) == [
        f'{NAME}{{{lbl},method="dkim",result="fail"}} 1',
        f'{NAME}{{{lbl},method="dkim",result="pass"}} 1',
        f'{NAME}{{{lbl},method="dmarc",result="none"}} 2',
        f'{NAME}{{{lbl},method="spf",result="pass"}} 2',
    ]


def test_a_stray_result_word_is_no_new_series() -> None:
    """A receiving server may write any word: label values stay a fixed set."""
    state = MetricsState()
    state.ensure("inbound", "signup", ("lost",))
    state.record(result({"spf": "Pass-Or-Something-Long", "dkim": "pass", "arc": "pass"}))
    assert f'{NAME}{{probe="roundtrip",target="a2b",method="spf",result="other"}} 1' not in \
        lines(state)  # another target
    state.ensure("roundtrip", "a2b", ("lost",), delivery=True)
    state.record(result({"spf": "Pass-Or-Something-Long", "dkim": "pass", "arc": "pass"}))
    assert any('method="spf",result="other"' in line for line in lines(state))
    assert not any('method="arc"' in line for line in lines(state))
