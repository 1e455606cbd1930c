"""The image boundary: a photo means the same pixels wherever it is loaded, and a PNG of the same
array is the same bytes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tools.image import (
    InputError,
    decode_png,
    encode_png,
    load_layer,
    load_photo,
    load_rgba,
    psnr,
    working_copy,
)


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored sideways with an orientation tag loads upright."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :10] = (255, 0, 0)  # red band on the left of the stored pixels
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    photo = load_photo(tmp_path / "phone.jpg")
    assert photo.shape == (40, 20, 3)  # upright: taller than wide
    assert photo[:10, :, 0].mean() > 0.8 and photo[-10:, :, 0].mean() < 0.2  # the band is now on top


@pytest.mark.parametrize("mode", ["L", "P", "LA", "RGBA", "I;16", "CMYK"])
def test_every_mode_loads_as_rgb_over_white(tmp_path, mode):
    rgb = np.full((8, 8, 3), 64, np.uint8)
    if mode == "I;16":  # 16-bit grey is scaled to 8 bits, not clipped to white
        im = Image.fromarray(np.full((8, 8), 64 * 257, np.uint16))
    elif mode == "P":  # an adaptive palette (convert("P") would dither to the web palette)
        im = Image.fromarray(rgb).quantize(4)
    else:
        im = Image.fromarray(rgb).convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    im.save(path)
    photo = load_photo(path)
    assert photo.shape == (8, 8, 3) and photo.dtype == np.float32
    assert np.allclose(photo, 64 / 255, atol=0.02), (mode, photo[0, 0])


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 128  # half-transparent red
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert np.allclose(load_photo(tmp_path / "a.png")[0, 0], [1.0, 127 / 255, 127 / 255], atol=0.01)
    premultiplied = load_rgba(tmp_path / "a.png")
    assert np.allclose(premultiplied[0, 0], [128 / 255, 0, 0, 128 / 255], atol=0.01)


def test_png_bytes_are_deterministic_and_decode_back(tmp_path):
    a = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    assert encode_png(a) == encode_png(a.copy())
    assert np.array_equal(decode_png(encode_png(a)), (a * 255 + 0.5).astype(np.uint8))
    assert decode_png(encode_png(np.zeros((3, 3, 1), np.uint8))).shape == (3, 3)  # one channel: grey


def test_bad_input_is_one_line(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    for path, message in ((tmp_path / "none.png", "no such file"), (tmp_path, "is a folder"),
                          (tmp_path / "bad.png", "not an image format")):
        with pytest.raises(InputError, match=message) as exc:
            load_photo(path)
        assert "\n" not in str(exc.value)
    Image.new("RGB", (4, 4)).save(tmp_path / "img.png")
    Image.new("L", (5, 5)).save(tmp_path / "mask.png")
    with pytest.raises(InputError, match=r"mask .* is 5x5 but the image is 4x4"):
        load_layer(tmp_path / "img.png", tmp_path / "mask.png")


def test_working_copy_and_psnr():
    rgb = np.random.default_rng(1).random((300, 600, 3)).astype(np.float32)
    small, scale = working_copy(rgb, 200)
    assert small.shape == (100, 200, 3) and scale == pytest.approx(1 / 3)
    assert working_copy(rgb, 0)[0] is rgb and working_copy(rgb, 600)[1] == 1.0
    assert psnr(rgb, rgb) == 99.0  # the cap every report uses, never infinity
    assert psnr(np.zeros(4), np.full(4, 0.1)) == pytest.approx(20.0)
