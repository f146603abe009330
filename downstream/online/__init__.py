"""Online forecasting over any encoder: FSNet (fast adapters and associative memory) and its
baselines NoMem, OGD, ER and DER++ (Pham et al., ICLR 2023). Imports nothing outside
``downstream``: the encoder is a module passed in."""
from .adapter import FSNetConv1d, attach_fsnet, fsnet_layers
from .forecaster import VARIANTS, OnlineForecaster, Variant, variant
from .memory import READS, AssociativeMemory, should_trigger
from .protocol import HORIZONS, LOOKBACK, check_horizon, evaluate_online, online_task, plot_curves
from .stream import Reservoir, StreamResult, Windows, run_stream, warm_up

__all__ = ["HORIZONS", "LOOKBACK", "READS", "VARIANTS", "AssociativeMemory", "FSNetConv1d",
           "OnlineForecaster", "Reservoir", "StreamResult", "Variant", "Windows", "attach_fsnet",
           "check_horizon", "evaluate_online", "fsnet_layers", "online_task", "plot_curves",
           "run_stream", "should_trigger", "variant", "warm_up"]
