"""The :class:`Proxy` base class and the ``PROXIES`` registry.

A proxy maps an architecture (through a :class:`~autost.proxies.ProxyContext`, which owns the
config, the batch and the one model built for scoring, or a copy of any spiking network with
:meth:`~autost.proxies.ProxyContext.from_model`) to one raw float. A proxy that reads
``ctx.config`` raises :class:`~autost.proxies.ConfigRequiredError` on a model given without
one (``autost_fitness``); the others run on any model. Every proxy declares

- ``sign``: ``+1`` if a higher raw value predicts a better architecture, ``-1`` if lower is
  better; the *oriented* score ``sign * raw`` is always higher-is-better;
- ``needs_data``: whether it reads a batch of the dataset;
- ``builds_model``: whether it builds (and runs) a model at all;
- ``cost``: what it costs, in words (analytic / shared forward pass / own forward+backward);
- ``shares``: the products of the context it reads (``"activity"``: the shared forward pass
  with per-layer rates; ``"kernels"``: the binary-code kernels accumulated in that same pass),
  so that :meth:`ProxyContext.prepare` runs the shared pass once for all of them.

Lifecycle: ``PROXIES`` holds one stateless instance per proxy; ``compute(ctx)`` may be called
with any context; results are plain floats and may be non-finite (``-inf`` for the log-determinant
of a singular kernel); the ensembles rank them explicitly (see :mod:`autost.proxies.ensemble`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

from autost.registry import Registry

SHARED_PRODUCTS = frozenset({"activity", "kernels"})


class Proxy(ABC):
    """A training-free score of an architecture; subclasses document formula, sign and cost."""

    name: ClassVar[str]
    sign: ClassVar[int]
    needs_data: ClassVar[bool] = False
    builds_model: ClassVar[bool] = True
    cost: ClassVar[str]
    shares: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def compute(self, ctx: Any) -> float:
        """The raw value for the context's architecture (may be non-finite). ``ctx`` is a
        :class:`~autost.proxies.context.ProxyContext` (typed in the subclasses: the context
        module imports this one, not the other way round)."""

    def oriented(self, raw: float) -> float:
        """``sign * raw``: higher is better for every proxy."""
        return self.sign * float(raw)

    def info(self) -> dict[str, Any]:
        """A JSON-ready description (for listings such as ``autost proxies``)."""
        doc = (type(self).__doc__ or "").strip().splitlines()
        return {
            "name": self.name,
            "sign": self.sign,
            "needs_data": self.needs_data,
            "builds_model": self.builds_model,
            "cost": self.cost,
            "summary": doc[0] if doc else "",
        }

    def __repr__(self) -> str:
        return f"<proxy {self.name} sign={self.sign:+d} needs_data={self.needs_data}>"


PROXIES: Registry[Proxy] = Registry("proxy")

P = TypeVar("P", bound=type[Proxy])


def register_proxy(cls: P) -> P:
    """Class decorator: register one instance of ``cls`` under ``cls.name``."""
    if cls.sign not in (1, -1):
        raise ValueError(f"proxy {cls.name!r}: sign must be +1 or -1, got {cls.sign!r}")
    if not cls.shares <= SHARED_PRODUCTS:
        raise ValueError(f"proxy {cls.name!r}: unknown shared products {set(cls.shares)}")
    PROXIES.register(cls.name)(cls())
    return cls


def get_proxy(name: str) -> Proxy:
    """The proxy registered as ``name``; :class:`UnknownNameError` lists close matches."""
    return PROXIES.get(name)


def list_proxies(pattern: str = "*") -> list[str]:
    """Names of the registered proxies matching a shell-style ``pattern``."""
    return PROXIES.names(pattern)
