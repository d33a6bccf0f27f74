"""Network building blocks written once and shared by every family."""

from gansim.nn.film import FiLMMLP
from gansim.nn.image_blocks import InstanceNorm, ResidualBlock, conv_block, conv_transpose_type, conv_type, norm_layer, pad_layer
from gansim.nn.keras_compat import KERAS_LEAKY_SLOPE, SameConv, SamePadding, keras_batch_norm
from gansim.nn.locally_connected import LocallyConnected
from gansim.nn.minibatch import MinibatchDiscrimination
from gansim.nn.mlp import ACTIVATIONS, MLP, activation_layer
from gansim.nn.progressive import EqualizedConv, EqualizedLinear, MinibatchStdDev, PixelNorm

__all__ = ["MLP", "FiLMMLP", "activation_layer", "ACTIVATIONS", "LocallyConnected", "MinibatchDiscrimination", "SamePadding", "SameConv", "keras_batch_norm", "KERAS_LEAKY_SLOPE",
           "EqualizedLinear", "EqualizedConv", "PixelNorm", "MinibatchStdDev",
           "InstanceNorm", "ResidualBlock", "conv_block", "conv_type", "conv_transpose_type", "norm_layer", "pad_layer"]
