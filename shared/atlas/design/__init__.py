"""What a task asks the LLM for: the design schema, the prompts, packing sources into the context
budget, the writer that asks the chain, and the retrieval-only brief when no design can be written."""
