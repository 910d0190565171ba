"""The suite's own rules, checked by running small test files under them in a fresh process: a log
record at WARNING or above fails a test unless the test says it expects it."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
CONFTEST = "from tests.conftest import _WarningRecords, no_unexpected_warnings, pytest_configure  # noqa: F401\n"


def _run(pytester, monkeypatch, source: str):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(source)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")


def _errored(result) -> list[str]:
    """The tests the summary lists as errors (the check runs at teardown)."""
    return sorted(line.split("::")[1].split()[0] for line in result.stdout.lines if line.startswith("ERROR ") and "::" in line)


def test_a_warning_or_an_error_fails_the_test_that_did_not_expect_it(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, """
        import logging

        def test_warns():
            logging.getLogger("x").warning("the disk is nearly full")

        def test_errs():
            logging.getLogger("x").error("boom")

        def test_informs():
            logging.getLogger("x").info("just so you know")
    """)
    assert result.ret == 1
    assert _errored(result) == ["test_errs", "test_warns"]
    text = result.stdout.str()
    assert "unexpected log records: WARNING x: the disk is nearly full" in text
    assert "unexpected log records: ERROR x: boom" in text


def test_an_expected_warning_passes_and_only_that_one(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, """
        import logging, pytest

        @pytest.mark.expect_log(r"nearly full")
        def test_expected():
            logging.getLogger("x").warning("the disk is nearly full")

        @pytest.mark.expect_log(r"nearly full")
        def test_another_one_still_fails():
            logging.getLogger("x").warning("the index is corrupt")
    """)
    assert _errored(result) == ["test_another_one_still_fails"]
    assert "unexpected log records: WARNING x: the index is corrupt" in result.stdout.str()
    assert "unexpected log records: WARNING x: the disk is nearly full" not in result.stdout.str()
