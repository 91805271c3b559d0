"""docker-compose.yml as loaded, and the deploy directory."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


SERVICES = COMPOSE["services"]


DEPLOY = ROOT / "deploy"
