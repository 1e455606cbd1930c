"""The tools the model calls (segment, pad_canvas, inpaint, vectorize), the renderer and SVG I/O."""
