# One image for every Loa process (worker, migrations, campaign launches).
FROM python:3.11-slim
# Bytecode compiled into the image: no process pays for compiling what it imports.
ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/loa UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev
ENV PATH=/opt/loa/bin:$PATH
ENTRYPOINT ["loa"]
