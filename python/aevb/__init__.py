"""Auto-Encoding Variational Bayes (Kingma & Welling, 2013) with a fused C++/Eigen core."""

from aevb._estimator import AEVB
from aevb._model_file import load_model, save_model

__version__ = "0.1.0"
__all__ = ["AEVB", "__version__", "load_model", "save_model"]
