"""The atlas command's contract with its caller: options with their environment fallbacks, and exit codes that
tell a usage mistake (change the command) from an outage (try again later)."""

from __future__ import annotations

import pytest
from google.api_core.exceptions import ServiceUnavailable

from atlas import cli
from atlas.cli import follow
from atlas.cli.app import _unavailable
from atlas.errors import BackupError, RetrievalUnavailableError
from atlas.tasks.document import TaskDocument


@pytest.fixture
def one_note(tmp_path):
    (tmp_path / "note.md").write_text("# Logging\n\nShip structured logs.\n")
    return str(tmp_path / "note.md")


def test_an_unreachable_retrieval_service_is_an_outage_not_a_usage_error(one_note, capsys):
    code = cli.main(["ingest", "--quiet", "--retrieval-url", "http://127.0.0.1:9", one_note])
    assert code == cli.EXIT_UNAVAILABLE == 4
    assert "a service did not answer, try again later" in capsys.readouterr().err


def test_a_bad_option_value_is_a_usage_error_naming_the_option_whether_typed_or_from_the_environment(
    one_note, monkeypatch, capsys
):
    assert cli.main(["ingest", "--retrieval-url", "ftp://x", one_note]) == cli.EXIT_USAGE
    assert "Invalid value for '--retrieval-url'" in capsys.readouterr().err
    monkeypatch.setenv("ATLAS_RETRIEVAL_URL", "retrieval.internal")  # the option's fallback, same check
    assert cli.main(["ingest", one_note]) == cli.EXIT_USAGE
    assert "must start with http:// or https://" in capsys.readouterr().err


def test_an_option_given_on_the_command_line_wins_over_its_variable(one_note, monkeypatch, capsys):
    monkeypatch.setenv("ATLAS_RETRIEVAL_URL", "not a url")
    assert cli.main(["ingest", "--quiet", "--retrieval-url", "http://127.0.0.1:9", one_note]) == cli.EXIT_UNAVAILABLE


def test_missing_configuration_is_a_usage_error_that_says_where_the_variables_are(monkeypatch, capsys):
    monkeypatch.delenv("ATLAS_PROJECT", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    assert cli.main(["list"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "ATLAS_PROJECT or GOOGLE_CLOUD_PROJECT" in err and ".env.example" in err


def test_unknown_commands_and_options_are_usage_errors_and_help_is_not(capsys):
    assert cli.main(["frobnicate"]) == cli.EXIT_USAGE
    assert cli.main(["list", "--colour"]) == cli.EXIT_USAGE
    assert cli.main(["show", "--help"]) == cli.EXIT_OK
    assert "[env var: ATLAS_MERMAID_JS]" in " ".join(capsys.readouterr().out.split())


def test_following_a_task_goes_on_through_queued_and_running_and_stops_at_the_first_terminal_status(monkeypatch):
    statuses = iter(["queued", "running", "running", "degraded", "failed"])

    class Store:
        def get(self, task_id):
            return TaskDocument.parse({"task_id": task_id, "status": next(statuses)})

    monkeypatch.setattr(follow, "POLL_INTERVAL_S", 0)
    document = follow.follow_task(Store(), "t1", timeout_s=30, live=False)
    assert document.status == "degraded" and next(statuses) == "failed"


def test_what_counts_as_an_outage():
    assert _unavailable(ServiceUnavailable("firestore is down"))
    assert _unavailable(RetrievalUnavailableError("retrieval timed out"))
    assert _unavailable(TimeoutError("publish did not finish"))
    wrapped = BackupError("could not export")
    wrapped.__cause__ = ConnectionRefusedError("refused")
    assert _unavailable(wrapped)
    assert not _unavailable(BackupError("the folder is not empty")) and not _unavailable(ValueError("bug"))
