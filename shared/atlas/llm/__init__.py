"""The LLM provider chain: providers, streaming, the one retry policy, token estimates, prices and
the daily budget. It knows nothing of tasks or designs: callers hand it messages and a parser."""
