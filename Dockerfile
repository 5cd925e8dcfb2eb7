# One image for every Loa process (worker, migrations, campaign launches).
# The build context is an allow-list (.dockerignore): the packages, examples/ for
# `loa demo`, pyproject.toml, uv.lock and README.md; never .git, .venv nor var/.
FROM python:3.11-slim
# Bytecode compiled into the image: no process pays for compiling what it imports.
ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/loa UV_COMPILE_BYTECODE=1 UV_NO_CACHE=1
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY campaigns/ campaigns/
COPY providers/ providers/
COPY ledger/ ledger/
COPY worker/ worker/
COPY scripts/ scripts/
COPY examples/ examples/
# The project itself (editable, at /app: owned by root, read-only to the processes), and
# its bytecode, which the processes could not write there themselves.
RUN uv sync --frozen --no-dev \
    && /opt/loa/bin/python -m compileall -q campaigns providers ledger worker scripts
# The processes run as loa (uid and gid 10001), never as root. They write only under
# LOA_VAR_DIR (the spool of provider ids, an embedded ledger, the demo's), which is
# theirs alone: mode 0700. A named volume mounted there starts with this owner and mode.
RUN groupadd --gid 10001 loa \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/loa \
       --shell /usr/sbin/nologin loa \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/loa
ENV PATH=/opt/loa/bin:$PATH LOA_VAR_DIR=/var/lib/loa
USER 10001:10001
ENTRYPOINT ["loa"]
