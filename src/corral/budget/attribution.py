"""Who spent what: an attempt's cost split over the models it used.

The shares always add up to the attempt's cost: a model missing from the priced split is
unpriced when others were priced; a single model takes a cost reported for the whole
job; what no model can take goes to an `(unattributed)` share with no tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from corral.models import Cost, CostSource, Usage

UNATTRIBUTED = "(unattributed)"


@dataclass(frozen=True, slots=True)
class ModelShare:
    """One model's part of an attempt: its tokens and its share of the cost."""

    model: str
    usage: Usage
    usd: Decimal | None  # None: no price for it
    source: CostSource


def model_shares(
    by_model: Mapping[str, Usage], cost: Cost | None, priced: Mapping[str, Decimal]
) -> list[ModelShare]:
    """The attempt's cost by model (see the module docstring); `priced` is the part of
    the cost each model was priced at, where known."""
    usd = None if cost is None else cost.usd
    source = CostSource.UNPRICED if cost is None else cost.source
    single = len(by_model) == 1 and not priced
    shares: list[ModelShare] = []
    for model, usage in by_model.items():
        share: Decimal | None = None
        model_source = source
        if model in priced:
            share = priced[model]
            if source is CostSource.UNPRICED:  # this part was priced; others were not
                model_source = CostSource.ESTIMATED
        elif priced or usd is None:
            model_source = CostSource.UNPRICED
        elif single:
            share = usd
        shares.append(ModelShare(model, usage, share, model_source))
    rest = None if usd is None else usd - sum(priced.values(), Decimal(0))
    if rest and not single:
        shares.append(ModelShare(UNATTRIBUTED, Usage(), rest, source))
    return shares
