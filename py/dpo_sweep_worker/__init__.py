"""dpo-sweep's Python worker: SFT, DPO, beta-DPO and risk-based dynamic-beta DPO on TRL.

Importing this package must stay cheap: no torch, no TRL, no CUDA initialisation here. The heavy
modules are imported by the functions that need them.
"""

__version__ = "0.1.0"
