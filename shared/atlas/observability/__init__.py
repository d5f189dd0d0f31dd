"""Logs in Cloud Logging's JSON, the instance's metric running totals and their writer to
Cloud Monitoring. It depends on the core alone, so both functions can ship it."""
