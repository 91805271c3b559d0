# One image for every carebridge service; the command picks the service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 carebridge
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY services ./services
COPY contracts ./contracts
RUN pip install . && chown -R carebridge /app
USER carebridge
EXPOSE 8000 8001 8002
CMD ["python", "-m", "services.router"]
