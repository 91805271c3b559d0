# One image for every carebridge service; the command picks the service. It holds the three
# services and the migrations only; the simulators are the `sandbox` stage's (compose profile
# `simulators`).
FROM python:3.11-slim AS production

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 carebridge
WORKDIR /app
# Dependencies from the runtime lock only, each file checked against its sha256 (make lock),
# then the project itself without dependencies, built by the locked setuptools.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY services ./services
COPY contracts ./contracts
RUN pip install --no-deps --no-build-isolation . && pip check && chown -R carebridge /app
USER carebridge
EXPOSE 8000 8001 8002
CMD ["python", "-m", "services.router"]

# The journal and subscriber simulators, for the compose profile `simulators` only.
FROM production AS sandbox
USER root
COPY sandbox ./sandbox
RUN chown -R carebridge /app/sandbox
USER carebridge
