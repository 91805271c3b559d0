"""The browsable implementation guide (issue 21): static HTML under ``docs/guide/``, made from
the FHIR conformance resources (``contracts/fhir/<ResourceType>-<id>.json``), the Markdown
mapping pages beside them and the golden FHIR messages of ``contracts/fixtures``.

``python -m sandbox.guide`` writes the site (``make guide``); ``--check`` says whether the
committed one is up to date (``make contracts`` runs the same check). Reading and writing
files is :mod:`sandbox.guide.load` and :mod:`sandbox.guide.__main__`; everything between is
pure: :func:`sandbox.guide.render.build` turns :class:`~sandbox.guide.model.GuideInputs` into
``{page path: text}``, and :func:`sandbox.guide.links.check_site` checks every link of it.
"""

from sandbox.guide.model import GuideError, GuideInputs
from sandbox.guide.render import build

__all__ = ["GuideError", "GuideInputs", "build"]
