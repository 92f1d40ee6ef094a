"""One module per job kind; each registers its `JobKind` (webapp.jobs.registry). Adding a module here adds a kind."""
