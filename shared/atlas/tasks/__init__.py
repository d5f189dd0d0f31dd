"""A task's life: the Pub/Sub envelope, the pipeline, the Firestore store, dead letters, progress
while a design streams, what a task records, and the per-instance wiring of the worker."""
