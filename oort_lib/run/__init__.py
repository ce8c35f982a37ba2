"""One run: the plan (what to do and why), the sync (workers, outcomes), its limits."""
