"""The job platform: the registry of job kinds and how any job is launched, queued, resumed and cancelled.

Every background run is a row of one Job model; what differs between kinds of work is declared by
one registered `JobKind` each (webapp.jobs.kinds.<name>), so the apps that use jobs ask the
registry instead of testing kind strings.
"""
