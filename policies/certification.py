"""Origin certification: only supply with a traceable qualifying origin may enter a market.

Covered buyers (``buyers``: countries or blocs) may buy ``commodity`` only from sellers whose
stock came, at ``stage``, from ``qualifying`` origins (at least ``min_share`` of it), counted
where the stage happened (``control: location``, the default) or by the country owning the
plant that did it (``control: owner``: a Chinese-owned plant abroad does not qualify as
non-Chinese supply). The market splits: certified supply earns a premium, and a separate price series appears. Other
instruments (price floor, offtake) use :func:`qualifies` to make eligibility depend on origin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Policy, register
from critmin.policies.select import CONTROLS, buyer_slots, stage_index
from critmin.sim.spec import Spec

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


def qualifies(
    model: ModelView,
    slots: np.ndarray,
    stage: int,
    origins: np.ndarray,
    min_share: float,
    control: str = "location",
) -> np.ndarray:
    """Whether each slot's stock has at least ``min_share`` of qualifying origin at ``stage``, by
    location or by owner (``control``)."""
    share = model.origins.stage_share(model.state.mix[slots], stage, by=control)[:, origins].sum(axis=1)
    return share >= min_share - 1e-12


class OriginRule:
    """An optional ``certified_origin: {stage, countries, min_share}`` block of an instrument."""

    def __init__(self, spec: Spec, key: str, model: ModelView, commodity: int) -> None:
        self.active = key in spec
        if self.active:
            sub = Spec(spec.raw(key), f"{spec.where}.{key}")
            self.stage = stage_index(model, sub, "stage", commodity)
            self.origins = sub.countries("countries", model.net)
            self.min_share = sub.share("min_share", default=1.0)
            self.control = sub.text("control", default="location", choices=CONTROLS)
            sub.done()

    def check(self, model: ModelView, slots: np.ndarray) -> np.ndarray:
        if not self.active:
            return np.ones(slots.size, bool)
        return qualifies(model, slots, self.stage, self.origins, self.min_share, self.control)


@register
class OriginCertification(Policy):
    """Covered buyers buy only certified-origin supply."""

    key = "origin_certification"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        commodity = spec.commodities("commodity", net)
        self.stage = stage_index(model, spec, "stage", int(commodity[0]))
        self.origins = spec.countries("qualifying", net)
        self.min_share = spec.share("min_share", default=1.0)
        self.control = spec.text("control", default="location", choices=CONTROLS)
        buyers = buyer_slots(model, commodity, spec.countries("buyers", net))
        self.edges = np.flatnonzero(np.isin(net.edge_buyer, buyers))

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        sellers = model.net.edge_seller[self.edges]
        ok = qualifies(model, sellers, self.stage, self.origins, self.min_share, self.control)
        return Effects(edge_caps=[(self.edges[~ok], 0.0)])
