"""dd3d: point cloud dataset distillation (DD3D, Bo & Wang, ICML 2025) and its baselines."""

__version__ = "0.1.0"
