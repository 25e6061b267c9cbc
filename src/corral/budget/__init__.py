"""Pricing, the ledger of usage and cost, the budget guard and the rate-limit gate."""

from corral.budget.accounting import Account, Ledger
from corral.budget.guard import Breach, BudgetGuard
from corral.budget.pricing import PriceBook, Rates, load_price_file
from corral.budget.ratelimit import RateLimitGate
from corral.plan.limits import max_spend, max_tokens

__all__ = [
    "Account",
    "Breach",
    "BudgetGuard",
    "Ledger",
    "PriceBook",
    "RateLimitGate",
    "Rates",
    "load_price_file",
    "max_spend",
    "max_tokens",
]
