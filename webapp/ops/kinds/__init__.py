"""One module per job kind; each registers its `JobKind` (webapp.jobs.registry), found when the apps are ready."""
