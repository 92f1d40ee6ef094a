# syntax=docker/dockerfile:1
# VisionLab: one image runs the web server, the Celery workers and the management commands.
#
#   docker build -t visionlab:cpu .                         web, CPU and inference workers
#   docker build --build-arg EXTRAS=gpu -t visionlab:gpu .  GPU training workers (CUDA from PyPI)
#
# docker-compose.yml builds both; docs/scale-out.md explains how to run them across machines.
FROM python:3.11-slim-bookworm

# The code runs from /app, not from site-packages: settings find templates/ and static/ next
# to the code (BASE_DIR), and gunicorn and `celery -A jobs` import it through PYTHONPATH.
# DATA_DIR holds everything VisionLab writes (uploads, datasets, artifacts); STATIC_ROOT is
# filled at build time, outside the /data volume that would hide it. gunicorn reads
# WEB_CONCURRENCY as its default number of worker processes.
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles \
    WEB_CONCURRENCY=2

# curl for the container health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*

# A fixed UID, so files on shared storage (NFS at /data) have the same owner on every host.
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" visionlab \
    && useradd --system --uid "${APP_UID}" --gid visionlab --create-home --home-dir /home/visionlab \
       --shell /usr/sbin/nologin visionlab \
    && mkdir -p /data \
    && chown visionlab:visionlab /data

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall
# TensorFlow. The list is read from [project] dependencies plus the chosen extras; the
# project itself is not pip-installed (see PYTHONPATH above). Declared here, EXTRAS leaves
# the layers above shared between the cpu and gpu images.
ARG EXTRAS=cpu
COPY pyproject.toml constraints.txt ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import sys, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + [r for e in sys.argv[1].split(',') if e for r in p['optional-dependencies'][e]]))" "${EXTRAS}" \
       > /tmp/requirements.txt \
    && cat /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .

# Static files with a throwaway key and data dir (settings create DATA_DIR on import); the
# build fails if the manifest did not land in STATIC_ROOT, since whitenoise's manifest
# storage would then answer 500 on every page.
RUN SECRET_KEY=build-only-not-a-secret DATA_DIR=/tmp/build-data \
       python manage.py collectstatic --noinput -v0 \
    && test -f "${STATIC_ROOT}/staticfiles.json" \
    && rm -rf /tmp/build-data \
    && python -m compileall -q webapp jobs

USER visionlab
VOLUME ["/data"]
EXPOSE 8000

# The web server, as `make run` starts it (webapp/ops/stack.py). Workers override the command.
# --worker-tmp-dir /dev/shm: gunicorn's heartbeat files off the container's overlay filesystem.
CMD ["gunicorn", "webapp.wsgi:application", "--bind", "0.0.0.0:8000", \
     "--worker-class", "gthread", "--threads", "4", "--timeout", "120", "--graceful-timeout", "10", \
     "--access-logfile", "-", "--worker-tmp-dir", "/dev/shm", "--no-control-socket"]
