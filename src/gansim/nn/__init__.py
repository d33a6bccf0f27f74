"""Network building blocks written once and shared by every family."""

from gansim.nn.mlp import MLP, activation_layer, ACTIVATIONS

__all__ = ["MLP", "activation_layer", "ACTIVATIONS"]
