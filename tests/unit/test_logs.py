import json
import logging

from atlas.observability.logs import CloudLoggingFormatter, log_context, trace_fields

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_traceparent_becomes_the_cloud_logging_trace():
    fields = trace_fields("proj", {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
    assert fields == {
        "logging.googleapis.com/trace": f"projects/proj/traces/{TRACE}",
        "logging.googleapis.com/spanId": "00f067aa0ba902b7",
        "logging.googleapis.com/trace_sampled": True,
    }


def test_google_trace_header_and_message_attributes_are_fallbacks():
    fields = trace_fields("proj", {"X-Cloud-Trace-Context": f"{TRACE}/1;o=0"})
    assert (
        fields["logging.googleapis.com/trace"].endswith(TRACE)
        and fields["logging.googleapis.com/spanId"] == "0" * 15 + "1"
    )
    assert fields["logging.googleapis.com/trace_sampled"] is False
    from_attributes = trace_fields("proj", {}, {"googclient_traceparent": f"00-{TRACE}-00f067aa0ba902b7-00"})
    assert from_attributes["logging.googleapis.com/trace_sampled"] is False


def test_malformed_or_all_zero_trace_is_ignored():
    assert trace_fields("proj", {"traceparent": "garbage"}) == {}
    assert trace_fields("proj", {"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"}) == {}


def test_bound_context_reaches_every_line_and_a_call_can_add_labels():
    record = logging.LogRecord("atlas.x", logging.INFO, __file__, 1, "stage %s", ("retrieval",), None)
    record.labels = {"task_id": "t-1"}
    record.fields = {"duration_ms": 12.5}
    with log_context(labels={"execution_id": "e-1"}, fields={"logging.googleapis.com/trace": "projects/p/traces/x"}):
        line = json.loads(CloudLoggingFormatter().format(record))
    assert line["message"] == "stage retrieval" and line["severity"] == "INFO" and line["duration_ms"] == 12.5
    assert line["logging.googleapis.com/labels"] == {"execution_id": "e-1", "task_id": "t-1"}
    assert line["logging.googleapis.com/trace"] == "projects/p/traces/x"
    outside = json.loads(CloudLoggingFormatter().format(record))
    assert "logging.googleapis.com/trace" not in outside
