"""Vectorization: the differentiable renderer and (later) Adaptive Layered Vectorization."""

from .render import RenderResult, render, render_with_stats, tune_cpu_allocator, unpremultiply

__all__ = ["RenderResult", "render", "render_with_stats", "tune_cpu_allocator", "unpremultiply"]
