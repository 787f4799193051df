"""Agent types (Mesa 3). Agents decide; the market moves material."""

from critmin.agents import buying, producer
from critmin.agents.government import Government
from critmin.agents.manufacturer import Manufacturer
from critmin.agents.producer import AGENT_CLASSES, Miner, Producer, Recycler, Refiner

__all__ = [
    "AGENT_CLASSES",
    "Government",
    "Manufacturer",
    "Miner",
    "Producer",
    "Recycler",
    "Refiner",
    "buying",
    "producer",
]
