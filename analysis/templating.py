"""Rendering of the HTML reports: the Jinja2 environment over ``analysis/templates/`` (autoescaped),
and embedding of Matplotlib figures as base64 PNG so a report is one self-contained file."""

from __future__ import annotations

import base64
import io
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from critmin.analysis import labels

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        commodity=labels.commodity,
        stage=labels.stage,
        check=labels.check,
        region=labels.region,
        country=labels.country,
        month=labels.month,
        share=labels.share,
        money_bn=labels.money_bn,
    )
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def figure(width: float, height: float) -> Figure:
    """A Matplotlib figure drawn by Agg, made without pyplot: nothing global to close, and a run
    that draws only these never imports pyplot (about 0.2 s)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    if "matplotlib.pyplot" in sys.modules:  # a figure made by pyplot is released by it
        sys.modules["matplotlib.pyplot"].close(fig)
    return buf.getvalue()


def img(data: bytes, alt: str) -> Markup:
    """An <img> with the PNG embedded (``alt`` escaped)."""
    b64 = base64.b64encode(data).decode()
    return Markup('<img alt="{}" src="data:image/png;base64,{}">').format(alt, Markup(b64))
