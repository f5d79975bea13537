"""Routing data sets: queries, outcomes of real models, and their costs.

``load_math_vision`` works out of the box from the copy shipped in the
package. The other loaders read upstream files from ``data_home`` or the
folder named by the environment variable ``SKROUTER_DATA``.
"""

from ._base import get_data_home
from ._costs import load_model_prices
from ._math_vision import load_math_vision
from ._mathvista import load_mathvista
from ._mmr_csv import read_mmr_csv, to_mmr_csv
from ._routerbench import load_routerbench
from ._synthetic import make_routing_problem

__all__ = [
    "get_data_home",
    "load_math_vision",
    "load_mathvista",
    "load_model_prices",
    "load_routerbench",
    "make_routing_problem",
    "read_mmr_csv",
    "to_mmr_csv",
]
