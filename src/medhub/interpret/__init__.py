"""Interpretation of medhub classifiers: class activation maps and Grad-CAM heatmaps."""

from .cam import class_activation_map, grad_cam, jet_colormap, overlay_heatmap

__all__ = ["class_activation_map", "grad_cam", "jet_colormap", "overlay_heatmap"]
