"""The networks of lucid's field, each exact to one named reference (see each docstring):
braindecode 1.8.1's ``EEGNet``, ``ShallowFBCSPNet`` and ``Deep4Net`` (same state-dict keys, so
braindecode checkpoints load), the Keras EEGNet-8,2 of Lawhern et al. (``eegnet_keras``) and
Bayar & Stamm's ``MISLnet``; ``load_torch_state_dict`` brings PyTorch checkpoints in."""

from lucid.models.eegnet import EEGNet, eegnet_keras
from lucid.models.fbcsp import Deep4Net, ShallowFBCSPNet
from lucid.models.loading import load_torch_state_dict
from lucid.models.mislnet import MISLnet

__all__ = ["Deep4Net", "EEGNet", "MISLnet", "ShallowFBCSPNet", "eegnet_keras",
           "load_torch_state_dict"]
