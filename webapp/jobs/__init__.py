"""The job platform: the Job model, the registry of job kinds, and how any job is launched, queued,
resumed, cancelled, watched and failed when its worker dies.

Every background run is a row of one Job model; what differs between kinds of work is declared by
one registered `JobKind` each, in the `kinds` package of the app that owns the work, so the apps
that use jobs ask the registry instead of testing kind strings. The platform imports none of them:
they import it, and hear of ended jobs through `webapp.jobs.signals.job_ended`.
"""
