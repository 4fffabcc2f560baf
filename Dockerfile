# stylegap application image: the web site (gunicorn), the Celery workers and beat.
#
# Build:  docker build -t stylegap .
# GPU:    docker build --build-arg TORCH_SPEC=torch==2.11.0 -t stylegap-gpu .
#
# TORCH_SPEC (default empty) is handed to `pip install` as is when set. The GPU worker
# (queue `gpu`, local model generation) needs torch with CUDA; the default Linux x86_64
# wheels on PyPI are CUDA builds, so a plain `torch==X.Y.Z` is enough. To pin a CUDA
# flavour, pass the index too, e.g.
#   --build-arg TORCH_SPEC="torch==2.11.0 --index-url https://download.pytorch.org/whl/cu128"
# The web, CPU worker and beat images leave it empty and stay small.
# The CUDA driver itself comes from the host through the NVIDIA container toolkit.

FROM python:3.11-slim

ARG TORCH_SPEC=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=webapp.settings \
    STYLEGAP_VAR_DIR=/data/var \
    MEDIA_ROOT=/data/media \
    STATIC_ROOT=/app/staticfiles

# Unprivileged runtime user. /data/var and /data/media belong to it so that named
# volumes mounted there start out writable (Docker copies ownership into an empty volume).
RUN groupadd --system --gid 10001 stylegap \
    && useradd --system --uid 10001 --gid stylegap --create-home --home-dir /home/stylegap \
        --shell /usr/sbin/nologin stylegap \
    && mkdir -p /app /data/var /data/media \
    && chown stylegap:stylegap /data/var /data/media

# bubblewrap sandboxes model-written code (HumanEval); it needs user namespaces, which the
# container runtime must allow (Docker's default seccomp profile does on current kernels).
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# torch first (when asked for): it is by far the biggest layer and changes least often.
# Unquoted on purpose so that TORCH_SPEC may carry pip options such as --index-url.
RUN if [ -n "$TORCH_SPEC" ]; then pip install --no-cache-dir $TORCH_SPEC; fi

COPY requirements.txt /app/requirements.txt
RUN pip install --no-cache-dir -r /app/requirements.txt

# Code and collected static files stay owned by root: the app user can read, not change them.
COPY . /app

# The secret key and the var dir exist for this step only: nothing is baked into the
# image's ENV and /data/var stays empty (settings would otherwise create broker folders).
RUN env SECRET_KEY=build-only STYLEGAP_VAR_DIR=/tmp/build-var \
        python manage.py collectstatic --noinput \
    && rm -rf /tmp/build-var

USER stylegap

EXPOSE 8000

# Shell form through `sh -c` so WEB_CONCURRENCY is read when the container starts;
# `exec` makes gunicorn PID 1 so it receives SIGTERM from `docker stop`.
# Extra gunicorn options (for example --timeout) can be passed with GUNICORN_CMD_ARGS.
CMD ["sh", "-c", "exec gunicorn webapp.wsgi:application --bind 0.0.0.0:8000 --workers ${WEB_CONCURRENCY:-3} --access-logfile - --forwarded-allow-ips='*'"]
