"""Interpretation of medhub classifiers: class activation maps and Grad-CAM heatmaps."""

from .cam import cams_from_features, class_activation_map, grad_cam, jet_colormap, overlay_heatmap

__all__ = ["cams_from_features", "class_activation_map", "grad_cam", "jet_colormap", "overlay_heatmap"]
