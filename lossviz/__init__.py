"""lossviz: see and compare loss functions. A torch library under an interactive Streamlit explorer."""

from lossviz import losses
from lossviz.device import default_device

__all__ = ["default_device", "losses"]
__version__ = "0.1.0"
