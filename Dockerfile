# Tensor Playground: `docker build -t tensor-playground .` then
# `docker run -p 8000:8000 tensor-playground`. See README "Docker" for GPUs and settings.
#
# BASE must provide python3 (3.11 or newer) with the venv module, and apt (Debian or Ubuntu).
# The default is the official slim image; a GPU build changes PIP_EXTRA_INDEX_URL to a CUDA
# wheel index and may swap in a CUDA base (README "GPU").
ARG BASE=python:3.11-slim

# The runtime dependency list lives in pyproject.toml. Extracting it in its own stage means the
# big pip layer below is rebuilt only when that list changes, not on any pyproject edit.
FROM ${BASE} AS requirements
WORKDIR /src
COPY pyproject.toml .
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt

FROM ${BASE}

# Graphviz's `dot` draws the autograd graph. Versions are not pinned on purpose: BASE can be a
# Debian or an Ubuntu (CUDA) image, and no single package version exists in both.
# hadolint ignore=DL3008
RUN apt-get -o Acquire::Retries=3 update \
 && apt-get -o Acquire::Retries=3 install -y --no-install-recommends graphviz \
 && rm -rf /var/lib/apt/lists/*

# Two users. "app" (uid 1000) runs the server by default. "sandbox" (uid/gid 64123, the default
# TP_SANDBOX_UID/GID) is the one snippets drop to, which only happens when the server runs as
# root (`docker run --user root ...`): a non-root server cannot change uid, so its children keep
# "app" and rely on the sandbox's other confinement layers. -l: no huge sparse lastlog entry.
RUN groupadd --gid 64123 sandbox \
 && useradd -l --uid 64123 --gid 64123 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin sandbox \
 && groupadd --gid 1000 app \
 && useradd -l --uid 1000 --gid 1000 --no-create-home --home-dir /app --shell /usr/sbin/nologin app

# pip reads these build args from the environment. The CPU wheel index gives torch==2.13.0+cpu
# (PyPI's plain torch wheel pulls in the CUDA libraries); a CUDA build passes a CUDA index.
# PIP_FIND_LINKS and PIP_CERT are unset normally; scripts/image-check.sh sets them to build
# offline from a local wheel behind the host's TLS proxy.
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_FIND_LINKS
ARG PIP_CERT
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

# Dependencies before code, so editing the app rebuilds only the small layers below. The venv
# and Python's own library stay root-owned and world-readable: the sandbox uid must import them.
COPY --from=requirements /src/requirements.txt /tmp/requirements.txt
RUN python3 -m venv "$VIRTUAL_ENV" \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Optional extra packages for snippets, none by default (README "Docker"), e.g.
# --build-arg EXTRA_PACKAGES=torchvision==0.28.0: pip takes it from the CPU index above, built
# for torch 2.13.0+cpu (PyPI's torchvision wheel wants CUDA torch). Split into words on purpose;
# the builder pins what it passes (DL3013 cannot see into a build arg).
ARG EXTRA_PACKAGES=""
# hadolint ignore=SC2086,DL3013
RUN if [ -n "$EXTRA_PACKAGES" ]; then pip install $EXTRA_PACKAGES; fi

WORKDIR /app
COPY app ./app
COPY static ./static
COPY templates ./templates
# Bytecode now: neither "app" nor the sandbox uid may write to /app at run time. a+rX: a
# checkout made under umask 077 would otherwise hide the code from both.
RUN python -m compileall -q app \
 && chmod -R a+rX /app

# Limits and worker counts (the README's settings table lists them all); override with -e.
ENV TP_HOST=0.0.0.0 \
    TP_PORT=8000 \
    TP_MAX_CONCURRENT_RUNS=4 \
    TP_SPARE_WORKERS=2 \
    TP_QUEUE_MAX=64 \
    TP_EXEC_TIMEOUT_S=5 \
    TP_MEMORY_BUDGET_MB=1024

# Numeric, so Kubernetes runAsNonRoot can verify it without reading /etc/passwd.
USER 1000:1000
EXPOSE 8000
# Healthy = the worker pool is ready: "ok" in the body (the route answers 200 during restarts too).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import json, os, urllib.request as u; r = u.urlopen('http://127.0.0.1:%s/api/health' % os.environ['TP_PORT'], timeout=4); raise SystemExit(0 if json.load(r)['ok'] else 1)"]
# exec: uvicorn becomes PID 1 and gets the stop signal (graceful pool shutdown).
CMD ["sh", "-c", "exec uvicorn app.main:app --host \"$TP_HOST\" --port \"$TP_PORT\""]
